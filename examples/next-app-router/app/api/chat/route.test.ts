import { NextRequest } from 'next/server.js'
import { describe, expect, it, vi } from 'vitest'
import { gate, keys } from '../../../lib/tollgate.js'
import { POST } from './route.js'

// the app's gate, on a fake clock: time in these tests never moves by itself
vi.mock('../../../lib/tollgate.js', async (importOriginal) => {
  const app = await importOriginal<typeof import('../../../lib/tollgate.js')>()
  const { createTollgate } = await import('@tollgate/core')
  const { fakeClock } = await import('@tollgate/core/testing')
  return { ...app, gate: createTollgate({ policy: app.policy, clock: fakeClock() }) }
})

const context = { params: Promise.resolve({}) }
const chat = (key: string | null, body: object) =>
  POST(
    new NextRequest('http://localhost/api/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    }),
    context,
  )
const projectTokens = async (project: string) =>
  (await gate.usage({ subject: { project, key: 'any' } })).find((s) => s.rule === 'project-daily-tokens')!

describe('examples/next-app-router: POST /api/chat', () => {
  it('answers a key of the project, with rate-limit headers, and settles what the call used', async () => {
    const { key } = await keys.issue({ subject: { tenant: 'acme', project: 'p-answer' }, plan: 'pro' })
    const response = await chat(key, { prompt: 'hello world', model: 'gpt-4o' })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ model: 'gpt-4o', reply: '(gpt-4o) You said: hello world' })
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('29')
    expect(response.headers.get('ratelimit-policy')).toContain('"key-rpm.requests";q=30;w=60')
    expect(await projectTokens('p-answer')).toMatchObject({
      used: 9 + 5,
      held: 0,
      resetAt: Date.parse('2026-01-06T00:00:00Z'), // the fake clock's next midnight
    })
  })

  it('refuses a premium model on the free plan (403), a missing key (401) and a revoked key (403)', async () => {
    const { key, keyId } = await keys.issue({ subject: { tenant: 'acme', project: 'p-free' }, plan: 'free' })
    const premium = await chat(key, { prompt: 'hi', model: 'gpt-4o' })
    expect(premium.status).toBe(403)
    expect(await premium.json()).toMatchObject({
      error: { code: 'model_not_allowed', type: 'permission_error' },
    })
    expect((await chat(key, { prompt: 'hi' })).status).toBe(200)
    expect((await chat(null, { prompt: 'hi' })).status).toBe(401)
    await keys.revoke(keyId)
    expect(await (await chat(key, { prompt: 'hi' })).json()).toMatchObject({ error: { code: 'key_revoked' } })
  })

  it("refuses a request that would pass the project's daily tokens with 429 and x-should-retry: false", async () => {
    const { key } = await keys.issue({ subject: { tenant: 'acme', project: 'p-big' }, plan: 'pro' })
    const response = await chat(key, { prompt: 'x', max_tokens: 60_000 })
    expect(response.status).toBe(429)
    expect(response.headers.get('x-should-retry')).toBe('false')
    expect(await response.json()).toMatchObject({
      error: { code: 'quota_exceeded', rule: 'project-daily-tokens' },
    })
  })
})
