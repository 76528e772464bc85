import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { checkRateLimitHeaders } from '@tollgate/core/testing'
import { apiKeyIdentity, memoryKeyRegistry, type SettleEvent, sseMeter } from '@tollgate/web'
import express from 'express'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { charMeter, type TestGate, testGate, used } from '../../web/src/test/fixtures.js'
import { tollgate } from './index.js'

const keys = memoryKeyRegistry()
const grant = { subject: { tenant: 't1', user: 'u1' } }
const subject = grant.subject
let key: string
let keyId: string
let server: Server
let base: string
let state: TestGate
let events: SettleEvent[]
let waiters: ((e: SettleEvent) => void)[]
let signals: AbortSignal[]
const settled = () => new Promise<SettleEvent>((resolve) => waiters.push(resolve))
const tokens = () => used(state.gate, subject, 'user-daily', 'tokens')

const sse = (data: object) => `data: ${JSON.stringify(data)}\n\n`

function app() {
  const app = express()
  app.use(express.json())
  app.use(
    tollgate({
      gate: state.gate,
      identify: apiKeyIdentity(keys),
      model: (req) => req.body?.model,
      estimate: (req) => ({ inputTokens: 100, maxOutputTokens: req.body?.max_tokens ?? 200 }),
      meter: () => sseMeter(charMeter()),
      onSettle: (e) => {
        events.push(e)
        for (const w of waiters.splice(0)) w(e)
      },
    }),
  )
  app.post('/chat', (req, res) => {
    req.tollgate!.report({ inputTokens: 90, outputTokens: 10 })
    res.json({ model: req.tollgate!.model })
  })
  app.post('/stream', (req, res) => {
    signals.push(req.tollgate!.signal)
    res.setHeader('content-type', 'text/event-stream')
    res.write(sse({ delta: 'hello' }))
    res.write(sse({ delta: ' world' }))
    if (req.query.hold) return // stays open until the client goes away
    res.end(sse({ usage: { inputTokens: 80, outputTokens: 2 } }))
  })
  app.post('/boom', () => {
    throw new Error('route failed')
  })
  return app
}

const post = (
  path: string,
  init: { key?: string | null; headers?: Record<string, string>; signal?: AbortSignal } = {},
) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(init.key === null ? {} : { authorization: `Bearer ${init.key ?? key}` }),
      ...init.headers,
    },
    body: JSON.stringify({ model: 'gpt-4o-mini' }),
    signal: init.signal,
  })

beforeAll(async () => {
  ;({ key, keyId } = await keys.issue(grant))
})
beforeEach(async () => {
  state = testGate()
  events = []
  waiters = []
  signals = []
  server = app().listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterEach(async () => {
  server.closeAllConnections()
  server.close()
  await once(server, 'close')
})

describe('@tollgate/express over real HTTP', () => {
  it('refuses a missing key, forged identity headers and an unknown key with 401', async () => {
    for (const init of [
      { key: null },
      { key: null, headers: { 'x-user-id': 'admin', 'x-tenant-id': 't1' } },
      { key: 'tg_unknownunknownunknownunknown' },
    ]) {
      const response = await post('/chat', init)
      expect(response.status).toBe(401)
      expect(response.headers.get('x-should-retry')).toBe('false')
      expect(await response.json()).toMatchObject({
        error: { type: 'authentication_error', code: 'unauthenticated' },
      })
    }
    expect(await tokens()).toBe(0)
  })

  it('admits, sends valid rate-limit headers, and settles the reported usage when the response finishes', async () => {
    const done = settled()
    const response = await post('/chat')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ model: 'gpt-4o-mini' })
    checkRateLimitHeaders(Object.fromEntries(response.headers))
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('2')
    expect(await done).toMatchObject({
      outcome: 'settled',
      reason: 'complete',
      usage: { inputTokens: 90, outputTokens: 10 },
    })
    expect(await tokens()).toBe(100)
  })

  it('answers 429 with retry-after once the rate limit is used up', async () => {
    for (let i = 0; i < 3; i++) expect((await post('/chat')).status).toBe(200)
    const response = await post('/chat')
    expect(response.status).toBe(429)
    expect(Number(response.headers.get('retry-after-ms'))).toBeGreaterThan(0)
    expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    expect(response.headers.get('x-should-retry')).toBe('true')
    checkRateLimitHeaders(Object.fromEntries(response.headers))
    expect(await response.json()).toMatchObject({
      error: { code: 'rate_limited', rule: 'user-rpm', partition: { user: 'u1' } },
    })
  })

  it('settles a streamed (SSE) response from the usage it carried', async () => {
    const done = settled()
    const response = await post('/stream')
    expect(response.headers.get('content-type')).toBe('text/event-stream')
    expect(response.headers.get('ratelimit-policy')).not.toBeNull()
    expect(await response.text()).toContain('hello')
    expect(await done).toMatchObject({ reason: 'complete', usage: { inputTokens: 80, outputTokens: 2 } })
    expect(await tokens()).toBe(82)
  })

  it('a client that disconnects mid-stream: the hold is settled from what was sent', async () => {
    const controller = new AbortController()
    const done = settled()
    const response = await post('/stream?hold=1', { signal: controller.signal })
    const reader = response.body!.getReader()
    let text = ''
    while (!text.includes('world')) text += new TextDecoder().decode((await reader.read()).value)
    expect(await tokens()).toBe(300) // still held
    controller.abort()
    // input keeps its estimate (100); output is what was streamed: 'hello' + ' world' = 11
    expect(await done).toMatchObject({ outcome: 'settled', reason: 'aborted', usage: { outputTokens: 11 } })
    expect(await tokens()).toBe(111)
    expect(signals[0]!.aborted).toBe(true)
  })

  it('releases the hold when the route throws (500)', async () => {
    const done = settled()
    const response = await post('/boom')
    expect(response.status).toBe(500)
    expect(await done).toMatchObject({ outcome: 'released' })
    expect(await tokens()).toBe(0)
  })

  it('refuses a revoked key with 403 at once', async () => {
    const other = await keys.issue(grant)
    expect((await post('/chat', { key: other.key })).status).toBe(200)
    await keys.revoke(other.keyId)
    const response = await post('/chat', { key: other.key })
    expect(response.status).toBe(403)
    expect(await response.json()).toMatchObject({ error: { code: 'key_revoked', type: 'permission_error' } })
    expect(keyId).not.toBe(other.keyId)
  })
})
