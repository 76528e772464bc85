import { once } from 'node:events'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import { type AddressInfo, connect } from 'node:net'
import { fakeClock } from '@tollgate/core'
import { checkRateLimitHeaders } from '@tollgate/core/testing'
import {
  apiKeyIdentity,
  type Identify,
  memoryKeyRegistry,
  type SettleEvent,
  signedIdentity,
  signIdentity,
  sseMeter,
  unauthenticated,
} from '@tollgate/web'
import express5 from 'express'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { charMeter, type TestGate, testGate, used } from '../../web/src/test/fixtures.js'
import { tollgate } from './index.js'

const require = createRequire(import.meta.url)
/** Express 4 through the `express4` npm alias (untyped: it has the same API as 5 for these tests). */
const express4 = require('express4') as typeof express5

/** The same tests run against Express 5 (`express`) and Express 4 (`express4`, an npm alias). */
const versions = [
  ['Express 5', express5, 'express', /^5\./],
  ['Express 4', express4, 'express4', /^4\./],
] as const

const keys = memoryKeyRegistry()
const grant = { subject: { tenant: 't1', user: 'u1' } }
const subject = grant.subject
let key: string
let keyId: string
let server: Server
/** Servers started by a test (beyond the shared one), closed after it. */
const extra: Server[] = []
let base: string
let state: TestGate
let events: SettleEvent[]
let waiters: ((e: SettleEvent) => void)[]
let signals: AbortSignal[]
/** Calls the `/doc` route made (each one a paid model call). */
let modelCalls: number
const settled = () => new Promise<SettleEvent>((resolve) => waiters.push(resolve))
const tokens = () => used(state.gate, subject, 'user-daily', 'tokens')

/** Waits for `condition`, turn by turn of the event loop (network events, no timer). */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100_000 && !condition(); turn++) await new Promise((r) => setImmediate(r))
  if (!condition()) throw new Error('the condition never held')
}

const sse = (data: object) => `data: ${JSON.stringify(data)}\n\n`

function app(express: typeof express5, identify: Identify = apiKeyIdentity(keys)) {
  const app = express()
  app.use(express.json())
  app.use(
    tollgate({
      gate: state.gate,
      identify,
      model: (req) => req.body?.model ?? req.query.model, // GET routes name it in the query
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
    // `bare`: no usage event (a proxy that drops it): output is counted from the streamed text
    res.end(req.query.bare ? undefined : sse({ usage: { inputTokens: 80, outputTokens: 2 } }))
  })
  // a GET route that calls the model; Express runs it for HEAD too, and sends no body then
  app.get('/doc', (req, res) => {
    modelCalls++
    res.json({ model: req.tollgate!.model })
  })
  app.get('/missing', (_req, res) => {
    res.status(404).json({ error: 'no such document' })
  })
  app.post('/boom', () => {
    throw new Error('route failed')
  })
  // calls the model and reports when the test says the call returned (`slow.answer()`)
  app.post('/slow', async (req, res) => {
    const hold = req.tollgate!
    signals.push(hold.signal)
    slow.started()
    await slow.returned
    hold.report({ inputTokens: 90, outputTokens: 10 })
    res.json({ model: hold.model })
  })
  return app
}

/** The `/slow` route's call: `started` resolves when the route runs, `answer()` lets it return. */
let slow: { started: () => void; running: Promise<void>; returned: Promise<void>; answer: () => void }
function slowCall() {
  let started = () => {}
  let answer = () => {}
  const running = new Promise<void>((resolve) => {
    started = resolve
  })
  const returned = new Promise<void>((resolve) => {
    answer = resolve
  })
  slow = { started, running, returned, answer }
}

const post = (
  path: string,
  init: { key?: string | null; headers?: Record<string, string>; signal?: AbortSignal; base?: string } = {},
) =>
  fetch(`${init.base ?? base}${path}`, {
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

/**
 * Sends `POST path` with these header lines as they are (fetch joins a repeated header into one
 * line; a client or proxy may send it twice) and answers the status and body.
 */
async function rawPost(url: string, path: string, lines: [string, string][]) {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  let answer = ''
  socket.on('data', (chunk) => {
    answer += chunk
  })
  const head = lines.map(([name, value]) => `${name}: ${value}\r\n`).join('')
  // written, not ended: a client that half-closes is gone for Node, which answers nothing
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: localhost\r\n${head}content-length: 0\r\nconnection: close\r\n\r\n`,
  )
  await once(socket, 'close')
  const [, status] = /^HTTP\/1\.1 (\d{3}) /.exec(answer) ?? []
  return { status: Number(status), body: answer.slice(answer.indexOf('\r\n\r\n') + 4) }
}

/** Listen on port 0 (closed after the test); the base URL. */
async function listen(handler: ReturnType<typeof app>): Promise<string> {
  const s = handler.listen(0, '127.0.0.1')
  extra.push(s)
  await once(s, 'listening')
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

for (const [name, express, pkg, major] of versions) {
  describe(`@tollgate/express over real HTTP (${name})`, () => {
    beforeEach(async () => {
      state = testGate()
      events = []
      waiters = []
      signals = []
      modelCalls = 0
      slowCall()
      server = app(express).listen(0, '127.0.0.1')
      await once(server, 'listening')
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })
    afterEach(async () => {
      for (const s of [server, ...extra.splice(0)]) {
        s.closeAllConnections()
        s.close()
        await once(s, 'close')
      }
    })

    it('runs against the intended major version', () => {
      expect(require(`${pkg}/package.json`).version).toMatch(major)
      expect(require(pkg)).toBe(express)
    })

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
      expect(state.records).toMatchObject([{ event: 'settle', estimated: false }])
    })

    it('flags as estimated a settle whose output was counted from the stream, or kept at the estimate', async () => {
      // the core settle record said `estimated: false`: audit's spend_estimated missed it
      let done = settled()
      const response = await post('/stream?bare=1')
      expect(await response.text()).toContain('world')
      expect(await done).toMatchObject({ reason: 'complete', usage: { outputTokens: 11, estimated: true } })
      expect(state.records.at(-1)).toMatchObject({ event: 'settle', estimated: true })
      expect(await tokens()).toBe(111) // counted, never zero
      done = settled()
      await (await post('/chat')).json() // usage the route reported
      await done
      expect(state.records.at(-1)).toMatchObject({ event: 'settle', estimated: false })
      done = settled()
      await (
        await fetch(`${base}/doc?model=gpt-4o-mini`, { headers: { authorization: `Bearer ${key}` } })
      ).json()
      await done // nothing reported or measured: the estimate
      expect(state.records.at(-1)).toMatchObject({ event: 'settle', estimated: true })
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
      expect(state.records).toMatchObject([{ event: 'settle', estimated: true }])
      expect(await tokens()).toBe(111)
      expect(signals[0]!.aborted).toBe(true)
    })

    it('a client that leaves before any byte: the hold is settled with what the route reports after', async () => {
      // released at the disconnect, the call the route was still making went unbilled
      const controller = new AbortController()
      const done = settled()
      const response = post('/slow', { signal: controller.signal }).catch(() => undefined)
      await slow.running
      controller.abort()
      await response
      await until(() => signals[0]!.aborted) // the route is told at once
      expect(events).toEqual([]) // and the hold waits for it
      slow.answer()
      expect(await done).toMatchObject({
        outcome: 'settled',
        reason: 'aborted',
        usage: { inputTokens: 90, outputTokens: 10 },
      })
      expect(await tokens()).toBe(100)
    })

    it('a client gone while identity decides: the route is not called and the hold is returned', async () => {
      // no 'close' comes after admission for a socket already closed: the hold waited for its TTL
      let identified = () => {}
      const deciding = new Promise<void>((resolve) => {
        identified = resolve
      })
      const identify: Identify = async (request) => {
        const answer = await apiKeyIdentity(keys)(request)
        sockets.at(-1)!.destroy() // the client goes away while the gate decides
        await deciding
        return answer
      }
      const sockets: import('node:net').Socket[] = []
      const handler = app(express, identify)
      const url = await listen(handler)
      extra.at(-1)!.on('connection', (socket) => sockets.push(socket))
      const done = settled()
      const response = post('/slow', { base: url }).catch(() => undefined)
      await until(() => sockets.at(-1)?.destroyed === true)
      identified()
      await response
      expect(await done).toMatchObject({ outcome: 'released', reason: 'aborted' })
      expect(await tokens()).toBe(0)
      expect(signals).toEqual([]) // the route never ran
    })

    it('a HEAD request to a GET route settles at the estimate: the route ran (it was released, so limits never applied)', async () => {
      const head = (path: string) =>
        fetch(`${base}${path}?model=gpt-4o-mini`, {
          method: 'HEAD',
          headers: { authorization: `Bearer ${key}` },
        })
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) {
        const done = settled()
        const response = await head('/doc')
        statuses.push(response.status)
        expect(await response.text()).toBe('')
        if (response.status === 200) expect(await done).toMatchObject({ outcome: 'settled', usage: {} })
      }
      expect(statuses).toEqual([200, 200, 200, 429]) // 3 requests a minute
      expect(modelCalls).toBe(3)
      expect(await tokens()).toBe(900) // the estimate (100 + 200) each, never zero
      expect(state.records).toMatchObject(Array(3).fill({ event: 'settle', estimated: true }))
      state.clock.advance('2m') // the rolling minute has passed
      const done = settled()
      expect((await head('/missing')).status).toBe(404)
      expect(await done).toMatchObject({ outcome: 'released' }) // an error status: nothing billed
      expect(await tokens()).toBe(900)
    })

    it('a client that leaves before any byte, whose route never ends: settled at the estimate after 30 s (fake timers)', async () => {
      // the route may still be calling the model: the hold waits for it, but not forever
      const controller = new AbortController()
      const response = post('/slow', { signal: controller.signal }).catch(() => undefined)
      await slow.running
      vi.useFakeTimers({ toFake: ['setTimeout'] })
      try {
        controller.abort()
        await response
        await until(() => signals[0]!.aborted)
        await vi.advanceTimersByTimeAsync(29_999)
        for (let turn = 0; turn < 100; turn++) await new Promise((r) => setImmediate(r))
        expect(events).toEqual([]) // still waiting for the route
        await vi.advanceTimersByTimeAsync(1)
        await until(() => events.length === 1)
      } finally {
        vi.useRealTimers()
      }
      expect(events[0]).toMatchObject({ outcome: 'settled', reason: 'aborted', usage: { estimated: true } })
      expect(await tokens()).toBe(300) // the estimate: the call may have run, never zero
      slow.answer() // the route ends late: the hold is closed already, nothing changes
      for (let turn = 0; turn < 100; turn++) await new Promise((r) => setImmediate(r))
      expect(state.records).toHaveLength(1)
      expect(await tokens()).toBe(300)
    })

    it('a HEAD request answered 400 is released, as any error status', async () => {
      const handler = app(express)
      handler.get('/invalid', (_req, res) => {
        res.status(400).json({ error: 'bad query' })
      })
      const url = await listen(handler)
      const done = settled()
      const response = await fetch(`${url}/invalid?model=gpt-4o-mini`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${key}` },
      })
      expect(response.status).toBe(400)
      expect(await done).toMatchObject({ outcome: 'released' })
      expect(await tokens()).toBe(0)
    })

    it('counts what a route writes with an encoding as the bytes sent (latin1 strings, as a byte-relaying proxy writes)', async () => {
      // the chunk was counted as UTF-8 whatever its encoding: mis-decoded text, wrong output tokens
      const handler = app(express)
      const relayed = (text: string) => Buffer.from(text).toString('latin1')
      handler.post('/relay', (_req, res) => {
        res.setHeader('content-type', 'text/event-stream')
        res.write(relayed(sse({ delta: 'héllo' })), 'latin1')
        res.end(relayed(sse({ delta: ' wörld' })), 'latin1')
      })
      const url = await listen(handler)
      const done = settled()
      const response = await post('/relay', { base: url })
      expect(await response.text()).toBe(sse({ delta: 'héllo' }) + sse({ delta: ' wörld' }))
      expect(await done).toMatchObject({
        reason: 'complete',
        usage: { outputTokens: 11, estimated: true },
        sent: Buffer.byteLength(sse({ delta: 'héllo' }) + sse({ delta: ' wörld' })),
      })
      expect(await tokens()).toBe(111)
    })

    it('identity sees the URL as sent, also when the middleware is mounted under a path (as Hono and Next do)', async () => {
      // req.url is relative to the mount path: an identity (or usage query) read from the URL saw `/chat`
      const seen: string[] = []
      const mounted = express()
      mounted.use(
        '/v1',
        app(express, (request) => {
          seen.push(request.url)
          return unauthenticated('recorded')
        }),
      )
      const url = await listen(mounted as ReturnType<typeof app>)
      expect((await post('/v1/chat?model=gpt-4o-mini', { base: url })).status).toBe(401)
      const sent = new URL(seen[0]!)
      expect(sent.pathname + sent.search).toBe('/v1/chat?model=gpt-4o-mini')
    })

    it('an error while admitting (a meter factory that throws) goes to the Express error handler, not an unhandled rejection', async () => {
      // without it the request was never answered: the client hung, and the process saw an unhandled rejection
      const errors: unknown[] = []
      const handler = express()
      handler.use(express.json())
      handler.use(
        tollgate({
          gate: state.gate,
          identify: apiKeyIdentity(keys),
          model: 'gpt-4o-mini',
          meter: () => {
            throw new Error('no meter for this route')
          },
        }),
      )
      handler.post('/chat', (_req, res) => {
        modelCalls++
        res.json({ ok: true })
      })
      handler.use(
        (error: Error, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
          errors.push(error)
          res.status(500).json({ error: { message: error.message, type: 'server_error' } })
        },
      )
      const url = await listen(handler as ReturnType<typeof app>)
      const response = await post('/chat', { base: url })
      expect(response.status).toBe(500)
      expect(await response.json()).toMatchObject({ error: { message: 'no meter for this route' } })
      expect(errors).toHaveLength(1)
      expect(modelCalls).toBe(0) // the route never ran
    })

    it('releases the hold when the route throws (500)', async () => {
      const done = settled()
      const response = await post('/boom')
      expect(response.status).toBe(500)
      expect(await done).toMatchObject({ outcome: 'released' })
      expect(await tokens()).toBe(0)
    })

    it('answers 400 to a request target Node accepts but no URL can hold (it threw, and became a 500)', async () => {
      const port = (server.address() as AddressInfo).port
      const socket = connect(port, '127.0.0.1')
      let answer = ''
      socket.on('data', (chunk) => {
        answer += chunk
      })
      socket.end(
        `POST http://localhost:99999/chat HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${key}\r\nconnection: close\r\n\r\n`,
      )
      await once(socket, 'close')
      expect(answer).toMatch(/^HTTP\/1\.1 400 /)
      expect(answer).toContain('"code":"invalid_request"')
      expect(events).toEqual([]) // nothing was held
    })

    it('identity sees a repeated header joined as fetch does (Hono, Next): two Authorization headers are a 401', async () => {
      // Node's req.headers keeps only the first `authorization`: Express admitted with the first key,
      // where Hono and Next see `Bearer k1, Bearer k2`, which apiKeyIdentity refuses
      const other = await keys.issue({ subject: { tenant: 't1', user: 'u2' } })
      for (const second of [other.key, key]) {
        const answer = await rawPost(base, '/chat?model=gpt-4o-mini', [
          ['authorization', `Bearer ${key}`],
          ['Authorization', `Bearer ${second}`],
        ])
        expect(answer.status).toBe(401)
        expect(JSON.parse(answer.body)).toMatchObject({
          error: { type: 'authentication_error', code: 'unauthenticated' },
        })
      }
      expect(events).toEqual([]) // nothing held
      // every header identity may read is the one value a web Request has for these lines
      const lines: [string, string][] = [
        ['authorization', 'Bearer a'],
        ['authorization', 'Bearer b'],
        ['x-user-id', 'd1'],
        ['X-User-Id', 'd2'],
        ['from', 'one@example.com'],
        ['from', 'two@example.com'],
        ['cookie', 'a=1'],
        ['cookie', 'b=2'],
        ['x-single', 'only'],
      ]
      const seen: Headers[] = []
      const url = await listen(
        app(express, (request) => {
          seen.push(request.headers)
          return unauthenticated('recorded')
        }),
      )
      expect((await rawPost(url, '/chat?model=gpt-4o-mini', lines)).status).toBe(401)
      const fetched = new Headers(lines)
      for (const name of ['authorization', 'x-user-id', 'from', 'cookie', 'x-single'])
        expect([name, seen[0]!.get(name)]).toEqual([name, fetched.get(name)])
      // a header an earlier middleware set (a session turned into a key) is still the one used
      const session = express()
      session.use((req, _res, next) => {
        req.headers.authorization = `Bearer ${key}`
        next()
      })
      session.use(app(express))
      const sessionUrl = await listen(session as ReturnType<typeof app>)
      const admitted = await rawPost(sessionUrl, '/chat?model=gpt-4o-mini', [
        ['authorization', 'Bearer tg_unknownunknownunknownunknown'],
        ['authorization', 'Bearer tg_otherotherotherotherother'],
      ])
      expect(admitted.status).toBe(200)
    })

    it('refuses a revoked key with 403 at once', async () => {
      const other = await keys.issue(grant)
      expect((await post('/chat', { key: other.key })).status).toBe(200)
      await keys.revoke(other.keyId)
      const response = await post('/chat', { key: other.key })
      expect(response.status).toBe(403)
      expect(await response.json()).toMatchObject({
        error: { code: 'key_revoked', type: 'permission_error' },
      })
      expect(keyId).not.toBe(other.keyId)
    })

    it('refuses an expired key (401 key_expired) and a rotated key after its grace period (401 key_rotated)', async () => {
      const clock = fakeClock()
      const timed = memoryKeyRegistry({ clock })
      // one user per key: the test policy allows 3 requests a minute per user
      const expiring = await timed.issue(
        { subject: { tenant: 't1', user: 'u2' } },
        { expiresAt: clock.now() + 1000 },
      )
      const old = await timed.issue({ subject: { tenant: 't1', user: 'u3' } })
      const fresh = await timed.rotate(old.keyId, { graceMs: 2000 })
      const at = await listen(app(express, apiKeyIdentity(timed)))
      for (const k of [expiring.key, old.key])
        expect((await post('/chat', { key: k, base: at })).status).toBe(200)
      clock.advance(1000)
      const expired = await post('/chat', { key: expiring.key, base: at })
      expect(expired.status).toBe(401)
      expect(expired.headers.get('x-should-retry')).toBe('false')
      expect(await expired.json()).toMatchObject({
        error: { code: 'key_expired', type: 'authentication_error' },
      })
      expect((await post('/chat', { key: old.key, base: at })).status).toBe(200) // still in its grace period
      clock.advance(1000)
      const rotated = await post('/chat', { key: old.key, base: at })
      expect(rotated.status).toBe(401)
      expect(await rotated.json()).toMatchObject({ error: { code: 'key_rotated' } })
      expect((await post('/chat', { key: fresh.key, base: at })).status).toBe(200)
    })

    it('refuses a replayed HMAC-signed identity header and a stale one', async () => {
      const clock = fakeClock()
      const secret = 'a-shared-secret-of-at-least-32-bytes!!'
      const at = await listen(app(express, signedIdentity({ hmac: { secret }, clock })))
      const headers = await signIdentity({ subject }, { secret, now: clock.now() })
      expect((await post('/chat', { key: null, headers, base: at })).status).toBe(200)
      const replay = await post('/chat', { key: null, headers, base: at })
      expect(replay.status).toBe(401)
      expect(await replay.json()).toMatchObject({
        error: { code: 'unauthenticated', message: 'This identity signature was already used (a replay).' },
      })
      const stale = await signIdentity({ subject }, { secret, now: clock.now() })
      clock.advance('61s')
      expect((await post('/chat', { key: null, headers: stale, base: at })).status).toBe(401)
    })
  })
}

describe('options', () => {
  it('a gate or identify that cannot work is refused when it is made, not on every request', () => {
    for (const options of [
      { gate: undefined, identify: () => null },
      { gate: { reserve: () => null }, identify: 'key' },
    ])
      expect(() => tollgate(options as never)).toThrow(/^tollgate: (gate|identify) must be/)
  })
})
