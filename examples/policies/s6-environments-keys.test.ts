import { readFileSync } from 'node:fs'
import { createTollgate } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'

const policy = readFileSync(new URL('./s6-environments-keys.yaml', import.meta.url), 'utf8')
const ask = (key: string, environment: string, model: string, tokens = 1000) => ({
  subject: { tenant: 'acme', key },
  attributes: { environment },
  model,
  estimate: { inputTokens: tokens / 2, maxOutputTokens: tokens / 2 },
})

describe('S6: environments and keys', () => {
  it('development and staging keys use low-cost models and small caps; production uses approved routes', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    expect(await gate.reserve(ask('key_dev', 'development', 'gpt-4o-mini'))).toMatchObject({ allowed: true })
    expect(await gate.reserve(ask('key_dev', 'development', 'gpt-4o'))).toMatchObject({
      allowed: false,
      code: 'model_not_allowed',
      status: 403,
    })
    expect(await gate.reserve(ask('key_stg', 'staging', 'gpt-4o-mini', 4000))).toMatchObject({
      allowed: false,
      code: 'request_too_large',
    })
    expect(await gate.reserve(ask('key_prod', 'production', 'gpt-4o', 4000))).toMatchObject({
      allowed: true,
      model: 'gpt-4o',
    })
    expect(await gate.reserve(ask('key_prod', 'production', 'o1'))).toMatchObject({
      allowed: false,
      code: 'model_not_allowed',
    })
  })

  it('a leaked key is refused at once, without touching the tenant’s other keys', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    expect((await gate.reserve(ask('key_leaked', 'production', 'gpt-4o'))).allowed).toBe(true)
    await gate.block('key', 'key_leaked', 'key_revoked')
    const refused = await gate.reserve(ask('key_leaked', 'production', 'gpt-4o'))
    expect(refused).toMatchObject({ allowed: false, code: 'key_revoked', status: 403, retryable: false })
    expect((await gate.reserve(ask('key_other', 'production', 'gpt-4o'))).allowed).toBe(true)
    await gate.unblock('key', 'key_leaked')
    expect((await gate.reserve(ask('key_leaked', 'production', 'gpt-4o'))).allowed).toBe(true)
  })
})
