import { readFileSync } from 'node:fs'
import { createTollgate, type ReserveRequest } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'

const policy = readFileSync(new URL('./s5-units-retries.yaml', import.meta.url), 'utf8')
let actions = 0
const ask = (
  extra: Partial<ReserveRequest>,
  attempt = 'primary',
  action = `act-${++actions}`,
): ReserveRequest => ({
  subject: { workspace: 'studio', action },
  attributes: { attempt },
  ...extra,
})

describe('S5: units that are not tokens, retries and fallbacks', () => {
  it('caps images by quality: drafts and finals count apart', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    const final = {
      model: 'gpt-image-1',
      feature: 'image',
      estimate: { inputTokens: 50, maxOutputTokens: 0, units: { image_final: 4 } },
    }
    for (let i = 0; i < 5; i++) expect((await gate.reserve(ask(final))).allowed).toBe(true)
    const sixth = await gate.reserve(ask(final))
    expect(sixth).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      rule: 'image-finals',
      retryable: false,
    })
    const draft = { ...final, estimate: { inputTokens: 50, maxOutputTokens: 0, units: { image_draft: 10 } } }
    expect((await gate.reserve(ask(draft))).allowed).toBe(true)
  })

  it('video: job count, total seconds and jobs in flight per workspace', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    const job = (seconds: number) =>
      ask({
        model: 'sora-2',
        feature: 'video',
        estimate: { maxOutputTokens: 0, units: { video_seconds: seconds } },
      })
    const a = await gate.reserve(job(200))
    const b = await gate.reserve(job(200))
    expect(await gate.reserve(job(10))).toMatchObject({
      allowed: false,
      code: 'concurrency_limited',
      rule: 'video-inflight',
      retryable: true,
    })
    await gate.settle(a.id, { units: { video_seconds: 180 } })
    await gate.settle(b.id, { units: { video_seconds: 200 } })
    const c = await gate.reserve(job(200))
    expect(c.allowed).toBe(true)
    await gate.settle(c.id, { units: { video_seconds: 200 } })
    // 580 seconds used: a 30-second job would pass 600
    expect(await gate.reserve(job(30))).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      rule: 'video-jobs',
    })
    expect((await gate.reserve(job(20))).allowed).toBe(true)
  })

  it('one primary and one fallback attempt per user action; the fallback has its own spend cap', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    const primary = ask(
      { model: 'gpt-4o', estimate: { inputTokens: 1000, maxOutputTokens: 500 } },
      'primary',
      'act-x',
    )
    expect((await gate.reserve(primary)).allowed).toBe(true)
    const retry = await gate.reserve(primary)
    expect(retry).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      rule: 'one-attempt-each',
      retryable: false,
    })
    if (!retry.allowed) expect(retry.headers['x-should-retry']).toBe('false')
    const fallback = ask(
      { model: 'gpt-4o-mini', estimate: { inputTokens: 1000, maxOutputTokens: 500 } },
      'fallback',
      'act-x',
    )
    expect((await gate.reserve(fallback)).allowed).toBe(true)
    expect((await gate.reserve(fallback)).allowed).toBe(false)
    // the fallback model's own cap: $5 a day
    const big = { model: 'gpt-4o-mini', estimate: { inputTokens: 10_000_000, maxOutputTokens: 2_000_000 } } // $1.50 + $1.20
    expect((await gate.reserve(ask(big, 'fallback'))).allowed).toBe(true)
    const over = await gate.reserve(ask(big, 'fallback'))
    expect(over).toMatchObject({
      allowed: false,
      code: 'budget_exceeded',
      status: 402,
      rule: 'fallback-spend',
      retryable: false,
    })
  })
})
