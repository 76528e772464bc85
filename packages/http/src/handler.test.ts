/**
 * `storeHandler` over a real `node:http` server: authentication (signature, timestamp window,
 * replays, secret rotation), body limits, input checks, and errors that never show internals.
 * Every refused request is checked to have changed nothing in the store.
 */
import { request as nodeRequest } from 'node:http'
import { type CounterSpec, memoryStore, type Store } from '@tollgate/core'
import { fakeClock, unhandledRejections } from '@tollgate/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpStore } from './client.js'
import { storeHandler } from './handler.js'
import { memoryNonces } from './nonces.js'
import { answerMessage, hmacKey, parseAnswerSignature, SIGNATURE_HEADER, verify } from './protocol.js'
import { SECRET, startServer, type TestServer } from './test/server.js'
import { post, signatureFor } from './test/signed.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

const spec: CounterSpec = {
  key: 'k',
  metric: 'tokens',
  amount: 5,
  cap: 10,
  enforce: true,
  window: { kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] },
  expiry: 'keep',
}
const reserveBody = (id = 'r1') =>
  JSON.stringify({ id, counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: 'm' } })
const used = async (store: Store) => (await store.read([spec]))[0]!.used
const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string; message: string } }).error

function fresh(options: Parameters<TestServer['mount']>[1] = {}) {
  const store = memoryStore({ clock: fakeClock() })
  return { store, url: server.mount(store, options) }
}

describe('a signed request', () => {
  it('is served: 200, the result, and a signed answer carrying the store time', async () => {
    const { store, url } = fresh()
    const response = await post(`${url}/reserve`, reserveBody())
    expect(response.status).toBe(200)
    expect(response.headers.get(SIGNATURE_HEADER)).toMatch(/^t=1767571200000,v1=[0-9a-f]{64}$/)
    expect(await response.json()).toMatchObject({ result: { status: 'ok', counters: [{ used: 5 }] } })
    expect(await used(store)).toBe(5)
  })
})

describe('authentication', () => {
  it('refuses a missing, malformed or wrong signature with 401, and changes nothing', async () => {
    const { store, url } = fresh()
    const target = `${url}/reserve`
    const bare = await fetch(target, { method: 'POST', body: reserveBody() })
    expect(bare.status).toBe(401)
    const malformed = await fetch(target, {
      method: 'POST',
      headers: { [SIGNATURE_HEADER]: 't=1,n=short,v1=abc' },
      body: reserveBody(),
    })
    expect(malformed.status).toBe(401)
    const wrongSecret = await post(target, reserveBody(), {
      secret: 'another-secret-0123456789abcdefghijklmn',
    })
    expect(wrongSecret.status).toBe(401)
    expect(await errorOf(wrongSecret)).toEqual({ code: 'unauthorized', message: 'Bad request signature.' })
    expect(await used(store)).toBe(0)
  })

  it('refuses a body or path other than the signed one', async () => {
    const { store, url } = fresh()
    const tampered = await post(`${url}/reserve`, reserveBody(), {
      signedBody: new TextEncoder().encode(reserveBody().replace('"amount":5', '"amount":1')),
    })
    expect(tampered.status).toBe(401)
    // a signature made for `read` does not open `reserve`
    const moved = await post(`${url}/reserve`, reserveBody(), { path: `${new URL(url).pathname}/read` })
    expect(moved.status).toBe(401)
    expect(await used(store)).toBe(0)
  })

  it('refuses timestamps outside ±maxSkewMs of the server clock, both ways', async () => {
    const { store, url } = fresh()
    const now = Date.now()
    for (const timestamp of [now - 61_000, now + 61_000, 0]) {
      const response = await post(`${url}/reserve`, reserveBody(), { timestamp })
      expect(response.status).toBe(401)
      expect((await errorOf(response)).message).toMatch(/outside the accepted window/)
    }
    expect(await used(store)).toBe(0)
    expect((await post(`${url}/reserve`, reserveBody(), { timestamp: now - 50_000 })).status).toBe(200)
    expect(await used(store)).toBe(5)
  })

  it('accepts each request once: a replay is refused, also once its nonce is forgotten', async () => {
    const wall = fakeClock(Date.now())
    const { store, url } = fresh({ clock: wall, maxSkewMs: 30_000 })
    const target = `${url}/reserve`
    const body = new TextEncoder().encode(reserveBody())
    const headers = { [SIGNATURE_HEADER]: await signatureFor(target, body, { timestamp: wall.now() }) }
    const send = () => fetch(target, { method: 'POST', headers, body })
    expect((await send()).status).toBe(200)
    const replay = await send()
    expect(replay.status).toBe(401)
    expect((await errorOf(replay)).message).toMatch(/replay/)
    wall.advance(30_001) // the nonce may be forgotten now: the timestamp alone refuses the copy
    expect((await send()).status).toBe(401)
    expect(await used(store)).toBe(5)
  })

  it('remembers a nonce through the last ms its timestamp is accepted: a copy then is a replay', async () => {
    const wall = fakeClock(Date.now())
    const { store, url } = fresh({ clock: wall, maxSkewMs: 30_000 })
    const target = `${url}/adjust` // not idempotent: a copy that got through would count twice
    const body = new TextEncoder().encode(JSON.stringify({ counter: spec, amount: 1 }))
    // a client clock behind the server's, on time, and ahead: the window ends at timestamp + 30 s
    for (const [i, lag] of [-10_000, 0, 10_000].entries()) {
      const timestamp = wall.now() + lag
      const headers = { [SIGNATURE_HEADER]: await signatureFor(target, body, { timestamp }) }
      const send = () => fetch(target, { method: 'POST', headers, body })
      expect((await send()).status).toBe(200)
      wall.set(timestamp + 30_000) // the timestamp check still passes at this very ms…
      const copy = await send()
      expect(copy.status, `lag ${lag}`).toBe(401)
      expect((await errorOf(copy)).message).toMatch(/already received \(a replay\)/) // …the nonce refuses it
      expect(await used(store)).toBe(i + 1)
    }
  })

  it('refuses nonces shorter than 16 or longer than 128 characters, as malformed', async () => {
    const { store, url } = fresh()
    for (const nonce of ['a', 'a'.repeat(15), 'a'.repeat(129)]) {
      const response = await post(`${url}/reserve`, reserveBody(), { nonce })
      expect(response.status, `${nonce.length} characters`).toBe(401)
      expect((await errorOf(response)).message).toBe('Missing or malformed request signature.')
    }
    expect(await used(store)).toBe(0)
    expect((await post(`${url}/reserve`, reserveBody('16'), { nonce: 'b'.repeat(16) })).status).toBe(200)
    expect((await post(`${url}/reserve`, reserveBody('128'), { nonce: 'c'.repeat(128) })).status).toBe(200)
    expect(await used(store)).toBe(10)
  })

  it('with a shared nonce store, a request replayed to another store server is refused there too', async () => {
    const [one, two] = [await startServer(), await startServer()]
    try {
      const nonces = memoryNonces(1_000, () => Date.now())
      const store = memoryStore({ clock: fakeClock() })
      const first = `${one.mount(store, { nonces })}/reserve`
      const second = `${two.mount(store, { nonces })}/reserve` // a fresh server: the same path
      expect(new URL(second).pathname).toBe(new URL(first).pathname)
      const body = new TextEncoder().encode(reserveBody())
      const headers = { [SIGNATURE_HEADER]: await signatureFor(first, body) }
      expect((await fetch(first, { method: 'POST', headers, body })).status).toBe(200)
      const copy = await fetch(second, { method: 'POST', headers, body })
      expect(copy.status).toBe(401)
      expect((await errorOf(copy)).message).toMatch(/replay/)
      expect(await used(store)).toBe(5)
    } finally {
      await one.close()
      await two.close()
    }
  })

  it('refuses with 503 rather than forgetting a live nonce when the nonce cache is full', async () => {
    const { url } = fresh({ nonces: memoryNonces(2, () => Date.now()) })
    expect((await post(`${url}/now`, '{}')).status).toBe(200)
    expect((await post(`${url}/now`, '{}')).status).toBe(200)
    const third = await post(`${url}/now`, '{}')
    expect(third.status).toBe(503)
    expect(await errorOf(third)).toEqual({ code: 'unavailable', message: 'Too many requests in flight.' })
  })

  it('makes room in a full nonce cache by forgetting expired nonces kept behind a live one', async () => {
    const wall = fakeClock(Date.now())
    const { url } = fresh({ clock: wall, maxSkewMs: 30_000, nonces: memoryNonces(2, () => wall.now()) })
    const t = wall.now()
    // each nonce is kept until its own timestamp leaves the window, so the cache's oldest entry can
    // outlive a newer one: a client clock 30 s ahead (kept 60 s), then one 30 s behind (kept 1 ms)
    expect((await post(`${url}/now`, '{}', { timestamp: t + 30_000 })).status).toBe(200)
    expect((await post(`${url}/now`, '{}', { timestamp: t - 30_000 })).status).toBe(200)
    wall.advance(2) // the newer nonce has expired, the older one has not
    const third = await post(`${url}/now`, '{}', { timestamp: wall.now() })
    expect(third.status).toBe(200) // room made by forgetting the expired nonce
    // two live nonces again: the cache is full and still refuses rather than forgetting one
    expect((await post(`${url}/now`, '{}', { timestamp: wall.now() })).status).toBe(503)
  })

  it('accepts any of several secrets (rotation) and signs the answer with the one that matched', async () => {
    const next = 'next-secret-0123456789abcdefghijklmnopqrstuvwxyz'
    const { url } = fresh({ secret: [next, SECRET] })
    expect((await post(`${url}/now`, '{}')).status).toBe(200)
    expect((await post(`${url}/now`, '{}', { secret: next })).status).toBe(200)
    expect((await post(`${url}/now`, '{}', { secret: 'x'.repeat(40) })).status).toBe(401)
    // the answer's signature verifies with the secret the request was signed with, not another one:
    // a client still on the old secret must be able to check it
    const keys = { next: await hmacKey(next, 'test'), old: await hmacKey(SECRET, 'test') }
    for (const [name, secret, other] of [
      ['next', next, keys.old],
      ['old', SECRET, keys.next],
    ] as const) {
      const nonce = `rotation-${name}-nonce-0123456789`
      const response = await post(`${url}/now`, '{}', { secret, nonce })
      const body = new Uint8Array(await response.arrayBuffer())
      const signature = parseAnswerSignature(response.headers.get(SIGNATURE_HEADER))!
      const signed = answerMessage(nonce, 200, signature.text, body)
      expect(await verify(keys[name], signature.mac, signed), `signed with ${name}`).toBe(true)
      expect(await verify(other, signature.mac, signed), `not signed with the other`).toBe(false)
    }
    // end to end: clients on either secret are served, each verifying its answers
    for (const secret of [SECRET, next]) {
      const client = httpStore({ url, secret, clockMaxAgeMs: 0 })
      expect(await client.reserve(JSON.parse(reserveBody(`by-${secret.slice(0, 4)}`)))).toMatchObject({
        status: 'ok',
      })
      expect(await client.now()).toBe(1767571200000)
    }
  })

  it('refuses short secrets and bad options at construction', () => {
    const store = memoryStore()
    expect(() => storeHandler(store, { secret: 'short' })).toThrow(/at least 32 bytes/)
    expect(() => storeHandler(store, { secret: [] })).toThrow(/at least one secret/)
    expect(() => storeHandler(store, { secret: SECRET, maxBodyBytes: 0 })).toThrow(/maxBodyBytes/)
    expect(() => storeHandler(store, { secret: SECRET, maxSkewMs: Number.NaN })).toThrow(/maxSkewMs/)
    // these threw bare TypeErrors, or failed every request
    expect(() => storeHandler(store, undefined as never)).toThrow(/storeHandler needs \{ secret \}/)
    const none = Object.create(null)
    expect(() => storeHandler(store, { secret: SECRET, maxSkewMs: none })).toThrow(/maxSkewMs/)
    expect(() => storeHandler(store, { secret: SECRET, onError: 1 as never })).toThrow(/onError must be/)
    expect(() => storeHandler(store, { secret: SECRET, nonces: {} as never })).toThrow(/nonces must be/)
    // a clock that reads no time would pass any timestamp as fresh (|t - NaN| > skew is false)
    expect(() => storeHandler(store, { secret: SECRET, clock: { now: () => Number.NaN } })).toThrow(
      /storeHandler: clock.now\(\) must return milliseconds/,
    )
  })
})

describe('the body', () => {
  it('over maxBodyBytes is refused with 413, by its declared length', async () => {
    const { store, url } = fresh({ maxBodyBytes: 1_024 })
    const big = JSON.stringify({
      id: 'x'.repeat(2_000),
      counters: [spec],
      ttlMs: 1,
      blocks: [],
      meta: { model: 'm' },
    })
    const response = await post(`${url}/reserve`, big)
    expect(response.status).toBe(413)
    expect(await errorOf(response)).toMatchObject({ code: 'payload_too_large' })
    expect(await used(store)).toBe(0)
    expect((await post(`${url}/reserve`, reserveBody())).status).toBe(200)
  })

  it('of exactly maxBodyBytes is read and served: the limit is the largest body accepted', async () => {
    const { store, url } = fresh({ maxBodyBytes: 1_024 })
    const sized = (id: string, bytes: number) => reserveBody(id).padEnd(bytes, ' ') // JSON allows the spaces
    const exact = await post(`${url}/reserve`, sized('exact', 1_024))
    expect(exact.status).toBe(200)
    expect(await exact.json()).toMatchObject({ result: { status: 'ok' } })
    expect(await used(store)).toBe(5)
    const over = await post(`${url}/reserve`, sized('over', 1_025))
    expect(over.status).toBe(413)
    expect(await used(store)).toBe(5)
  })

  it('streamed without a length is cut off at maxBodyBytes with 413', async () => {
    const { url } = fresh({ maxBodyBytes: 1_024 })
    const target = new URL(`${url}/reserve`)
    const chunk = new Uint8Array(512).fill(0x20)
    const signature = await signatureFor(target.href, new Uint8Array(0))
    const status = await new Promise<number>((resolve, reject) => {
      const req = nodeRequest(
        target,
        { method: 'POST', headers: { [SIGNATURE_HEADER]: signature } },
        (res) => {
          res.resume()
          resolve(res.statusCode!)
        },
      )
      req.on('error', reject)
      let sent = 0
      const more = () => {
        while (sent < 64 && req.write(chunk)) sent++
        if (sent < 64) req.once('drain', more)
        else req.end()
      }
      more()
    })
    expect(status).toBe(413)
  })

  it('that is not JSON, not UTF-8 or not the operation’s shape is refused with 400 naming the field', async () => {
    const { store, url } = fresh()
    const cases: [string | Uint8Array, RegExp][] = [
      ['{"id":', /not JSON/],
      [new Uint8Array([0x7b, 0xff, 0x7d]), /not JSON \(UTF-8\)/],
      ['[]', /must be an object/],
      [
        JSON.stringify({ id: 1, counters: [], ttlMs: 1, blocks: [], meta: { model: 'm' } }),
        /id must be a string/,
      ],
      [reserveBody().replace('"amount":5', '"amount":-5'), /counters\[0\]\.amount must be a non-negative/],
      [
        reserveBody().replace('"kind":"fixed"', '"kind":"weird"'),
        /counters\[0\]\.window\.kind must be one of/,
      ],
      [reserveBody().replace('"meta":{"model":"m"}', '"meta":{}'), /meta\.model must be a string/],
      [
        reserveBody().replace(
          '{"kind":"fixed","bounds":[0,9007199254740991]}',
          '{"kind":"sliding","sizeMs":1e9,"slotMs":1}',
        ),
        /at most 10000 slots/,
      ],
    ]
    for (const [body, message] of cases) {
      const response = await post(`${url}/reserve`, body)
      expect(response.status, String(body)).toBe(400)
      const error = await errorOf(response)
      expect(error.code).toBe('bad_request')
      expect(error.message).toMatch(message)
    }
    const commit = await post(`${url}/commit`, JSON.stringify({ id: 'r', amounts: { tokens: 1.5 } }))
    expect((await errorOf(commit)).message).toMatch(/amounts\["tokens"\] must be a non-negative safe integer/)
    const override = await post(`${url}/setOverride`, JSON.stringify({ key: 'k' }))
    expect((await errorOf(override)).message).toMatch(/cap must be a finite number/)
    // an adjustment past what the engine ever makes (a credit of 1e9 currency units, in micro-units)
    // would soon take a counter out of the safe integers, where small charges stop counting
    for (const amount of [9e15, -9e15, 1e15 + 1]) {
      const adjust = await post(`${url}/adjust`, JSON.stringify({ counter: spec, amount }))
      expect(adjust.status).toBe(400)
      expect((await errorOf(adjust)).message).toMatch(/amount must be a whole number from -1e15 to 1e15/)
    }
    expect(await used(store)).toBe(0)
  })
})

describe('a commit with abandon', () => {
  const commit = (url: string, body: object) => post(`${url}/commit`, JSON.stringify(body))

  it('is checked: a boolean, and true only with amounts: null', async () => {
    const { store, url } = fresh()
    await post(`${url}/reserve`, reserveBody('held'))
    const wrong = await commit(url, { id: 'held', amounts: null, abandon: 'yes' })
    expect(wrong.status).toBe(400)
    expect((await errorOf(wrong)).message).toMatch(/abandon must be a boolean/)
    const settling = await commit(url, { id: 'held', amounts: { tokens: 1 }, abandon: true })
    expect(settling.status).toBe(400)
    expect((await errorOf(settling)).message).toMatch(/abandon must be true only with amounts: null/)
    expect(await used(store)).toBe(5)
    const ok = await commit(url, { id: 'held', amounts: { tokens: 1 }, abandon: false })
    expect(await ok.json()).toMatchObject({ result: { status: 'settled' } })
    expect(await used(store)).toBe(1)
  })

  it('reaches the store: an id abandoned before its reserve arrives holds nothing', async () => {
    const { store, url } = fresh()
    const abandoned = await commit(url, { id: 'lost', amounts: null, abandon: true })
    expect(await abandoned.json()).toMatchObject({ result: { status: 'unknown' } })
    // refused as a closed id: 409, so that a client knows nothing landed
    const late = await post(`${url}/reserve`, reserveBody('lost'))
    expect(late.status).toBe(409)
    expect((await errorOf(late)).code).toBe('reservation_closed')
    expect(await used(store)).toBe(0)
    // as an older client sends it (no abandon): a plain release, which the reserve outlives
    const released = await commit(url, { id: 'old', amounts: null })
    expect(await released.json()).toMatchObject({ result: { status: 'unknown' } })
    expect((await post(`${url}/reserve`, reserveBody('old'))).status).toBe(200)
    expect(await used(store)).toBe(5)
  })
})

describe('routing and errors', () => {
  it('answers 405 to other methods and 404 to unknown operations', async () => {
    const { url } = fresh()
    const get = await fetch(`${url}/now`)
    expect(get.status).toBe(405)
    expect(get.headers.get('allow')).toBe('POST')
    expect((await post(`${url}/flushall`, '{}')).status).toBe(404)
    expect((await post(`${url}/toString`, '{}')).status).toBe(404)
  })

  it('a store that throws is answered 500 without its message, and reported to onError', async () => {
    const reported: unknown[] = []
    const broken = {
      ...memoryStore(),
      reserve() {
        throw new Error('connect ECONNREFUSED redis://:hunter2@10.0.0.5:6379')
      },
    } as Store
    const url = server.mount(broken, { onError: (error) => reported.push(error) })
    const response = await post(`${url}/reserve`, reserveBody())
    expect(response.status).toBe(500)
    const text = await response.text()
    expect(text).not.toMatch(/hunter2|ECONNREFUSED|10\.0\.0\.5/)
    expect(JSON.parse(text)).toEqual({ error: { code: 'store_error', message: 'The store failed.' } })
    expect(reported).toHaveLength(1)
  })

  it("a call that ran is answered 200 when the store's time then fails, with the time estimated from the last one", async () => {
    const reported: unknown[] = []
    const wall = fakeClock(Date.now())
    const inner = memoryStore({ clock: fakeClock() })
    let down = false
    const flaky: Store = {
      ...inner,
      now: () => (down ? Promise.reject(new Error('the clock went away')) : inner.now()),
    }
    const url = server.mount(flaky, { clock: wall, onError: (error) => reported.push(error) })
    // no store time seen yet: nothing to estimate from, so a failed time is still a 500
    down = true
    const early = await post(`${url}/read`, JSON.stringify({ counters: [spec] }))
    expect(early.status).toBe(500)
    down = false
    const reserved = await post(`${url}/reserve`, reserveBody())
    expect(reserved.headers.get(SIGNATURE_HEADER)).toMatch(/^t=1767571200000,/)
    down = true
    wall.advance(1_000)
    const committed = await post(`${url}/commit`, JSON.stringify({ id: 'r1', amounts: { tokens: 3 } }))
    expect(committed.status).toBe(200)
    expect(committed.headers.get(SIGNATURE_HEADER)).toMatch(/^t=1767571201000,/)
    expect(await committed.json()).toMatchObject({ result: { status: 'settled' } })
    expect(await used(inner)).toBe(3)
    expect(reported).toHaveLength(2)
  })

  it('an async onError that rejects is dropped, not an unhandled rejection (that ended the process)', async () => {
    const unhandled = await unhandledRejections(async () => {
      const broken = {
        ...memoryStore(),
        reserve() {
          throw new Error('the store is down')
        },
      } as Store
      const url = server.mount(broken, {
        onError: async () => {
          throw new Error('the log sink is down')
        },
      })
      expect((await post(`${url}/reserve`, reserveBody())).status).toBe(500)
    })
    expect(unhandled).toEqual([])
  })
})
