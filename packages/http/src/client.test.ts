/**
 * `httpStore` against a real server: one request per store call, answers that are verified (a
 * forged, tampered or replayed answer is refused), input JSON cannot carry refused before sending,
 * and the store time learned from answers.
 */
import {
  type CounterSpec,
  createTollgate,
  memoryStore,
  type PolicyInput,
  TollgateError,
} from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpStore } from './client.js'
import { HttpStoreError } from './errors.js'
import { SECRET, startServer, type TestServer } from './test/server.js'

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
const reserveInput = (id: string) => ({
  id,
  counters: [spec],
  ttlMs: 60_000,
  blocks: [],
  meta: { model: 'm' },
})

/** A fetch that counts requests and lets a test rewrite answers. */
function countingFetch(rewrite?: (response: Response, n: number) => Promise<Response> | Response) {
  const calls: string[] = []
  const fetcher = async (input: string, init: RequestInit) => {
    calls.push(new URL(input).pathname.split('/').pop()!)
    const response = await fetch(input, init)
    return rewrite ? rewrite(response, calls.length) : response
  }
  return { calls, fetcher }
}

describe('httpStore', () => {
  it('makes exactly one request per store call, to <url>/<operation>', async () => {
    const clock = fakeClock()
    const url = server.mount(memoryStore({ clock }))
    const { calls, fetcher } = countingFetch()
    const store = httpStore({ url: `${url}/`, secret: SECRET, fetch: fetcher })
    expect(await store.now()).toBe(clock.now()) // cold: asks the server
    expect(await store.reserve(reserveInput('a'))).toMatchObject({ status: 'ok', now: clock.now() })
    expect(await store.read([spec])).toMatchObject([{ used: 5, held: 5 }])
    expect(await store.adjust(spec, 2)).toMatchObject({ used: 7 })
    await store.setOverride('k', 20)
    await store.block('user=u1', 'key_revoked')
    expect(await store.blocked(['user=u0', 'user=u1'])).toEqual({ marker: 'user=u1', code: 'key_revoked' })
    expect(await store.lookup('a')).toMatchObject({ id: 'a', state: 'held' })
    expect(await store.commit({ id: 'a', amounts: { tokens: 1 } })).toMatchObject({ status: 'settled' })
    expect(await store.lookup('missing')).toBeNull()
    expect(calls).toEqual([
      'now',
      'reserve',
      'read',
      'adjust',
      'setOverride',
      'block',
      'blocked',
      'lookup',
      'commit',
      'lookup',
    ])
  })

  it('now() answers from the offset learned from the last answer while it is fresh, without a request', async () => {
    const clock = fakeClock('2030-01-01T00:00:00Z')
    const { calls, fetcher } = countingFetch()
    const store = httpStore({ url: server.mount(memoryStore({ clock })), secret: SECRET, fetch: fetcher })
    await store.read([spec])
    const before = Date.now()
    const now = store.now()
    expect(typeof now).toBe('number') // synchronous: no round trip
    expect(now as number).toBeGreaterThanOrEqual(clock.now())
    expect(now as number).toBeLessThan(clock.now() + (Date.now() - before) + 1_000)
    expect(calls).toEqual(['read'])
  })

  it('refuses numbers JSON cannot carry before sending anything', async () => {
    const url = server.mount(memoryStore({ clock: fakeClock() }))
    const { calls, fetcher } = countingFetch()
    const store = httpStore({ url, secret: SECRET, fetch: fetcher })
    await store.setOverride('k', 3)
    // NaN would arrive as null, which clears an override: it must never be sent
    await expect(store.setOverride('k', Number.NaN)).rejects.toThrow(TypeError)
    await expect(store.adjust(spec, Number.POSITIVE_INFINITY)).rejects.toThrow(/finite/)
    expect(calls).toEqual(['setOverride'])
    expect(await store.read([spec])).toMatchObject([{ cap: 3 }])
  })

  it('a wrong secret, or input the server refuses, rejects with the status and the server’s code', async () => {
    const url = server.mount(memoryStore({ clock: fakeClock() }))
    const store = httpStore({ url, secret: 'not-the-secret-0123456789abcdefghijklmnop' })
    const error = await store.read([spec]).catch((e: unknown) => e)
    expect(HttpStoreError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ code: 'status', status: 401, serverCode: 'unauthorized' })
    const good = httpStore({ url, secret: SECRET })
    await expect(good.read([{ ...spec, window: { kind: 'nope' } } as never])).rejects.toMatchObject({
      code: 'status',
      status: 400,
      message: expect.stringMatching(/counters\[0\]\.window\.kind/),
    })
  })

  it('refuses an answer that is forged, tampered with, or replayed from another request', async () => {
    const url = server.mount(memoryStore({ clock: fakeClock() }))
    let first: { body: ArrayBuffer; headers: Headers } | undefined
    const replaying = countingFetch(async (response) => {
      if (!first) {
        first = { body: await response.clone().arrayBuffer(), headers: response.headers }
        return response
      }
      return new Response(first.body, { status: 200, headers: first.headers })
    })
    const replayed = httpStore({ url, secret: SECRET, fetch: replaying.fetcher })
    await replayed.read([spec])
    await expect(replayed.read([spec])).rejects.toMatchObject({ code: 'signature' })

    const tampering = countingFetch(async (response) => {
      const text = (await response.text()).replace('"used":0', '"used":1')
      return new Response(text, { status: 200, headers: response.headers })
    })
    await expect(
      httpStore({ url, secret: SECRET, fetch: tampering.fetcher }).read([spec]),
    ).rejects.toMatchObject({
      code: 'signature',
    })
    const unsigned = countingFetch(() => Response.json({ result: { status: 'ok', now: 0, counters: [] } }))
    await expect(
      httpStore({ url, secret: SECRET, fetch: unsigned.fetcher }).reserve(reserveInput('x')),
    ).rejects.toMatchObject({ code: 'signature' })
  })

  it('during a secret rotation, clients on the old and the new secret are served and verify their answers', async () => {
    const next = 'next-secret-0123456789abcdefghijklmnopqrstuvwxyz'
    const clock = fakeClock()
    const memory = memoryStore({ clock })
    const url = server.mount(memory, { secret: [next, SECRET] }) // the new one first, the old one kept
    for (const [i, secret] of [SECRET, next].entries()) {
      const store = httpStore({ url, secret, clockMaxAgeMs: 0 })
      expect(await store.blocked(['user=u1'])).toBeNull()
      expect(await store.reserve(reserveInput(`rotating-${i}`))).toMatchObject({ status: 'ok' })
      expect(await store.now()).toBe(clock.now())
    }
    expect((await memory.read([spec]))[0]).toMatchObject({ used: 10 })
  })

  it('reads every finite store time the server signs: fractions past 9 decimals, exponent forms', async () => {
    const clock = fakeClock(0)
    for (let i = 0; i < 3; i++) clock.advance(0.1) // 0.30000000000000004
    const memory = memoryStore({ clock })
    const store = httpStore({ url: server.mount(memory), secret: SECRET, clockMaxAgeMs: 0 })
    expect(await store.reserve(reserveInput('fraction'))).toMatchObject({ status: 'ok', now: 0.1 + 0.2 })
    expect(await memory.lookup('fraction')).toMatchObject({ state: 'held' })

    let time = 0
    const odd = httpStore({
      url: server.mount({ ...memoryStore(), now: () => time }),
      secret: SECRET,
      clockMaxAgeMs: 0,
    })
    for (const t of [0.1 + 0.2, 1e21, 1.5e-7, -1.5e-7, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 1e300]) {
      time = t
      // lookup answers with the store's now() in its signature header
      await expect(odd.lookup('none'), String(t)).resolves.toBeNull()
      expect(await odd.now()).toBe(t) // asked: not the local fallback of a failed request
      await expect(odd.read([spec])).resolves.toHaveLength(1)
    }
  })

  it('refuses a timeoutMs past the longest timer delay (every call timed out at once)', async () => {
    for (const timeoutMs of [2_147_483_648, 86_400_000 * 30, Number.MAX_SAFE_INTEGER])
      expect(() => httpStore({ url: 'http://x', secret: SECRET, timeoutMs })).toThrow(
        new TypeError('httpStore: timeoutMs is a positive number of ms, at most 2147483647'),
      )
    const store = httpStore({ url: server.mount(memoryStore()), secret: SECRET, timeoutMs: 2_147_483_647 })
    expect(await store.lookup('x')).toBeNull() // the longest delay a timer keeps works
  })

  it('checks its options', () => {
    expect(() => httpStore({ url: 'ftp://x', secret: SECRET })).toThrow(/http: or https:/)
    expect(() => httpStore({ url: 'not a url', secret: SECRET })).toThrow()
    expect(() => httpStore({ url: 'http://x', secret: 'short' })).toThrow(/32 bytes/)
    expect(() => httpStore({ url: 'http://x', secret: SECRET, timeoutMs: 0 })).toThrow(/timeoutMs/)
    expect(() => httpStore({ url: 'http://x', secret: SECRET, clockMaxAgeMs: -1 })).toThrow(/clockMaxAgeMs/)
    // these threw bare TypeErrors (reading 'url' of undefined, a value String() cannot convert),
    // or failed every call ("fetcher is not a function")
    const none = Object.create(null)
    expect(() => httpStore(undefined as never)).toThrow(/httpStore needs \{ url, secret \}/)
    expect(() => httpStore({ url: none, secret: SECRET })).toThrow(/url must be a URL/)
    expect(() => httpStore({ url: 'http://x', secret: SECRET, clockMaxAgeMs: none })).toThrow(/clockMaxAgeMs/)
    expect(() => httpStore({ url: 'http://x', secret: SECRET, fetch: {} as never })).toThrow(
      /fetch must be a function/,
    )
    expect(httpStore({ url: new URL('http://x/store'), secret: SECRET }).url).toBe('http://x/store')
    expect(httpStore({ url: 'https://x.test/store/?a=1#b', secret: SECRET }).url).toBe('https://x.test/store')
  })
})

describe('a request body over the store server’s maxBodyBytes', () => {
  const policy: PolicyInput = {
    models: { m: { price: { input: 1, output: 1 } } },
    rules: [{ id: 'rpm', per: 'user', limits: { requests: 2 }, window: 'minute' }], // fails open
  }
  const ask = (user: string) => ({
    subject: { user },
    model: 'm',
    estimate: { inputTokens: 10, maxOutputTokens: 10 },
  })

  it('is a store_error the caller sees, naming both sizes: the gate admits nothing', async () => {
    const backend = memoryStore({ clock: fakeClock() })
    const reserves: string[] = []
    const watched = {
      ...backend,
      reserve(input: Parameters<typeof backend.reserve>[0]) {
        reserves.push(input.id)
        return backend.reserve(input)
      },
    }
    const { calls, fetcher } = countingFetch()
    const errors: unknown[] = []
    const gate = createTollgate({
      policy,
      store: httpStore({
        url: server.mount(watched, { maxBodyBytes: 2_048 }),
        secret: SECRET,
        fetch: fetcher,
      }),
      onStoreError: (error) => errors.push(error),
    })
    const long = 'u'.repeat(3_000) // an id the engine takes, in a body the server does not
    for (let i = 0; i < 3; i++) {
      const error = await gate.reserve(ask(long)).catch((e: unknown) => e)
      expect(TollgateError.isInstance(error)).toBe(true)
      expect(error).toMatchObject({
        code: 'store_error',
        message: expect.stringMatching(
          /^The reserve request to the HTTP store is \d{4,} bytes, over the store server's limit of 2048 bytes \(its maxBodyBytes\)/,
        ),
      })
      expect(HttpStoreError.isInstance((error as Error).cause)).toBe(true)
      expect((error as Error).cause).toMatchObject({
        code: 'status',
        status: 413,
        serverCode: 'payload_too_large',
      })
    }
    expect(reserves).toEqual([]) // nothing reached the store, nothing was admitted
    expect(errors).toHaveLength(3) // the hook still hears of it
    expect(calls.filter((c) => c === 'commit')).toEqual([]) // a refused body is not released
    // a short id on the same gate is decided as usual
    expect(await gate.reserve(ask('u1'))).toMatchObject({ allowed: true, flags: [] })
    expect(reserves).toHaveLength(1)
  })

  it('a 413 from a proxy in front of the store server is a store_error too', async () => {
    const proxied = countingFetch(
      () => new Response('<html>413 Request Entity Too Large</html>', { status: 413 }),
    )
    const store = httpStore({ url: server.mount(memoryStore()), secret: SECRET, fetch: proxied.fetcher })
    await expect(store.lookup('x')).rejects.toMatchObject({
      code: 'store_error',
      message: expect.stringMatching(
        /is \d+ bytes, over what the store server \(or a proxy in front of it\) accepts/,
      ),
    })
  })
})
