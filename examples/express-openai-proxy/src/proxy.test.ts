/**
 * The proxy, driven by the official `openai` client against a fake upstream on a real port.
 * The gate's clock is a fake clock that moves only when the client sends a request, by the time
 * that really passed: the SDK's own retry wait is the only wait in these tests.
 */
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTollgate, definePolicy, type Tollgate } from '@tollgate/core'
import { type FakeClock, fakeClock } from '@tollgate/core/testing'
import { countTokens, estimateChatCompletion, withDefaultPrices } from '@tollgate/llm'
import { memoryKeyRegistry, type SettleEvent, type UsageReport } from '@tollgate/web'
import OpenAI from 'openai'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type FakeUpstream, startFakeUpstream, USAGE, WORDS } from './fake-upstream.js'
import { createProxy } from './proxy.js'

const policy = withDefaultPrices(
  definePolicy({
    rules: [
      // one request per 300 ms per key: a retry-after of at most 300 ms
      { id: 'key-burst', per: 'key', limits: { requests: 1 }, window: { bucket: '300ms' } },
      { id: 'tenant-daily-tokens', per: 'tenant', limits: { tokens: 100_000 }, window: 'day' },
      { id: 'tenant-monthly-budget', per: 'tenant', limits: { cost: 10 }, window: 'month' },
    ],
  }),
)
const messages = [{ role: 'user' as const, content: 'Say hello from upstream.' }]
const model = 'gpt-4o-mini'

let upstream: FakeUpstream
let server: Server
let base: string
let gate: Tollgate
let clock: FakeClock
let attempts: { at: number; status: number }[]
let waiters: ((e: SettleEvent) => void)[]
const keys = memoryKeyRegistry()
const settled = () => new Promise<SettleEvent>((resolve) => waiters.push(resolve))

/** An `openai` client on the proxy, with a new key for `tenant`, that records every attempt. */
async function client(tenant: string, maxRetries = 2) {
  const issued = await keys.issue({ subject: { tenant, user: 'dev' }, plan: 'starter' })
  const openai = new OpenAI({
    apiKey: issued.key,
    baseURL: `${base}/v1`,
    maxRetries,
    fetch: async (url, init) => {
      clock.set(Math.max(clock.now(), Date.now()))
      const response = await fetch(url, init)
      attempts.push({ at: Date.now(), status: response.status })
      return response
    },
  })
  return { openai, ...issued }
}
const tenantTokens = async (tenant: string) =>
  (await gate.usage({ subject: { tenant, user: 'dev', key: 'k' } })).find(
    (s) => s.rule === 'tenant-daily-tokens',
  )!.used

beforeAll(async () => {
  upstream = await startFakeUpstream()
})
afterAll(() => upstream.close())
beforeEach(async () => {
  clock = fakeClock(Date.now())
  gate = createTollgate({ policy, clock })
  attempts = []
  waiters = []
  upstream.requests.length = 0
  upstream.hold = false
  const app = createProxy({
    gate,
    keys,
    upstreamUrl: upstream.url,
    upstreamKey: 'sk-upstream',
    onSettle: (e) => {
      for (const w of waiters.splice(0)) w(e)
    },
  })
  server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterEach(async () => {
  server.closeAllConnections()
  server.close()
  await once(server, 'close')
})

describe('express-openai-proxy with the official openai client', () => {
  it('forwards a completion and settles the upstream usage; rate-limit headers reach the client', async () => {
    const { openai } = await client('t-json')
    const done = settled()
    const { data, response } = await openai.chat.completions.create({ model, messages }).withResponse()
    expect(data.choices[0]!.message.content).toBe(WORDS.join(''))
    expect(upstream.requests).toHaveLength(1)
    expect(upstream.requests[0]).toMatchObject({ model, messages })
    expect(response.headers.get('ratelimit-policy')).toContain('"key-burst.requests";q=1')
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    expect(await done).toMatchObject({ outcome: 'settled', usage: { inputTokens: 21, outputTokens: 3 } })
    expect(await tenantTokens('t-json')).toBe(USAGE.total_tokens)
  })

  it('streams, and settles from the usage chunk it asks the upstream for', async () => {
    const { openai } = await client('t-stream')
    const done = settled()
    const stream = await openai.chat.completions.create({ model, messages, stream: true })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe(WORDS.join(''))
    expect(upstream.requests[0]).toMatchObject({ stream: true, stream_options: { include_usage: true } })
    expect(await done).toMatchObject({ reason: 'complete', usage: { inputTokens: 21, outputTokens: 3 } })
    expect(await tenantTokens('t-stream')).toBe(USAGE.total_tokens)
  })

  it('a client that leaves mid-stream: the upstream call is stopped and the hold settled from what was sent', async () => {
    upstream.hold = true
    const { openai } = await client('t-abort')
    const done = settled()
    const upstreamClosed = upstream.closed()
    const stream = await openai.chat.completions.create({ model, messages, stream: true })
    let text = ''
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      if (text === WORDS.join('')) break // aborts the request
    }
    const event = await done
    const streamed = countTokens(WORDS.join('')).tokens
    expect(event).toMatchObject({ outcome: 'settled', reason: 'aborted', usage: { outputTokens: streamed } })
    await upstreamClosed
    const input = estimateChatCompletion({ model, messages }).inputTokens
    expect(await tenantTokens('t-abort')).toBe(input + streamed)
  })

  it('on a rate limit the client sees 429 with retry-after and its own retry waits for it', async () => {
    const { openai } = await client('t-rate')
    await openai.chat.completions.create({ model, messages })
    const second = await openai.chat.completions.create({ model, messages }).withResponse()
    expect(second.data.choices[0]!.message.content).toBe(WORDS.join(''))
    expect(attempts.map((a) => a.status)).toEqual([200, 429, 200])
    expect(upstream.requests).toHaveLength(2)
    // the 429 said to wait up to 300 ms (retry-after-ms), and the SDK waited before its retry
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(200)
  })

  it('sends retry-after and retry-after-ms on the 429 itself', async () => {
    const { openai } = await client('t-rate-raw', 0)
    await openai.chat.completions.create({ model, messages })
    const error = await openai.chat.completions.create({ model, messages }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const { headers, error: body } = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(headers.get('retry-after')).toBe('1')
    expect(Number(headers.get('retry-after-ms'))).toBeGreaterThan(0)
    expect(Number(headers.get('retry-after-ms'))).toBeLessThanOrEqual(300)
    expect(headers.get('x-should-retry')).toBe('true')
    expect(body).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error', rule: 'key-burst' })
  })

  it('on an exhausted budget (402) or daily quota (429, x-should-retry: false) the client does not retry', async () => {
    await gate.override({ rule: 'tenant-monthly-budget', subject: { tenant: 't-broke' } }, 0.000001)
    const broke = await client('t-broke')
    const budget = await broke.openai.chat.completions.create({ model, messages }).catch((e: unknown) => e)
    expect(budget).toMatchObject({ status: 402, code: 'budget_exceeded' })
    expect((budget as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false')
    expect(attempts).toHaveLength(1)

    await gate.override({ rule: 'tenant-daily-tokens', subject: { tenant: 't-quota' } }, 10)
    const quota = await client('t-quota')
    const used = await quota.openai.chat.completions.create({ model, messages }).catch((e: unknown) => e)
    expect(used).toMatchObject({ status: 429, code: 'quota_exceeded', type: 'insufficient_quota' })
    expect(attempts).toHaveLength(2)
    expect(upstream.requests).toHaveLength(0)
  })

  it('GET /v1/usage shows the key its own usage and what is left', async () => {
    const usage = (key: string | null, init: RequestInit = {}) =>
      fetch(`${base}/v1/usage`, { ...init, headers: key ? { authorization: `Bearer ${key}` } : {} })
    const { openai, key } = await client('t-usage')
    const done = settled()
    await openai.chat.completions.create({ model, messages })
    await done
    const response = await usage(key)
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const report = (await response.json()) as UsageReport
    expect(report.subject).toMatchObject({ tenant: 't-usage', user: 'dev' })
    expect(report.currency).toBe('USD')
    const rule = (id: string) => report.limits.find((l) => l.rule === id)!
    expect(rule('tenant-daily-tokens')).toMatchObject({
      used: USAGE.total_tokens,
      held: 0,
      remaining: 100_000 - USAGE.total_tokens,
    })
    expect(rule('tenant-monthly-budget').usedAmount).toBeGreaterThan(0)
    expect(rule('tenant-monthly-budget').limitAmount).toBe(10)

    const other = await client('t-usage-other')
    const theirs = (await (await usage(other.key)).json()) as UsageReport
    expect(theirs.subject).toMatchObject({ tenant: 't-usage-other' })
    expect(JSON.stringify(theirs)).not.toContain('t-usage"')
    expect(theirs.limits.find((l) => l.rule === 'tenant-daily-tokens')!.used).toBe(0)

    expect((await usage(null)).status).toBe(401)
    expect((await usage(key, { method: 'POST' })).status).toBe(405)
  })

  it('answers a body that is no JSON with an OpenAI-shaped 400, never an HTML page', async () => {
    const { key } = await client('t-json')
    const response = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{"model":',
    })
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toMatch(/application\/json/)
    const body = await response.json()
    expect(body).toMatchObject({ error: { type: 'invalid_request_error' } })
    expect(JSON.stringify(body)).not.toMatch(/at .*\.js/) // no stack trace
    expect(upstream.requests).toHaveLength(0)
  })

  it('refuses unknown (401) and revoked (403) keys without retrying or reaching the upstream', async () => {
    const stranger = new OpenAI({
      apiKey: 'sk-not-a-key-of-this-proxy',
      baseURL: `${base}/v1`,
      maxRetries: 2,
    })
    await expect(stranger.chat.completions.create({ model, messages })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    )
    const revoked = await client('t-revoked')
    await keys.revoke(revoked.keyId)
    const error = await revoked.openai.chat.completions.create({ model, messages }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError)
    expect(error).toMatchObject({ code: 'key_revoked' })
    expect(attempts).toHaveLength(1)
    expect(upstream.requests).toHaveLength(0)
  })
})
