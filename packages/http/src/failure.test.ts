/**
 * Failure behaviour over real sockets: a store server that is down, one that accepts connections
 * and never answers, and one that answers a reserve too late. Every call ends within the store's
 * timeout, the gate applies each rule's failure mode (rate limits open, budgets closed), and a hold
 * that landed after its reserve gave up is returned. Tests wait real time only for the timeouts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  type CounterSpec,
  createTollgate,
  memoryStore,
  type PolicyInput,
  type Store,
  type StoreCommit,
} from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { httpStore } from './client.js'
import { HttpStoreError } from './errors.js'
import { storeHandler } from './handler.js'
import { toNodeListener } from './node.js'
import { SIGNATURE_HEADER } from './protocol.js'
import { SECRET, startServer } from './test/server.js'

const TIMEOUT = 200
/** A call that fails at once, not after a timeout: well under a second even on a busy machine. */
const AT_ONCE = 1_000

const models = { m: { price: { input: 1, output: 1 } } }
/** A rate limit (fails open by default) and a budget (fails closed by default). */
const rate: PolicyInput = {
  models,
  rules: [{ id: 'rpm', per: 'user', limits: { requests: 5 }, window: 'minute' }],
}
const budget: PolicyInput = {
  models,
  rules: [{ id: 'budget', per: 'user', limits: { cost: 1 }, window: 'month' }],
}
const ask = { subject: { user: 'u1' }, model: 'm', estimate: { inputTokens: 10, maxOutputTokens: 0 } }

const spec: CounterSpec = {
  key: 'k',
  metric: 'tokens',
  amount: 5,
  cap: 10,
  enforce: true,
  window: { kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] },
  expiry: 'keep',
}

const servers: Server[] = []
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections()
    await new Promise((resolve) => s.close(resolve))
  }
})

async function listen(listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(listener)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Every store call, so that each one is seen to reject. */
const everyCall = (store: ReturnType<typeof httpStore>) => [
  store.reserve({ id: 'r', counters: [spec], ttlMs: 1_000, blocks: [], meta: { model: 'm' } }),
  store.commit({ id: 'r', amounts: null }),
  store.read([spec]),
  store.adjust(spec, 1),
  store.lookup('r'),
  store.setOverride('k', 1),
  store.block('m', 'blocked'),
  store.blocked(['m']),
]

describe('a store server that is down', () => {
  it('every call rejects at once; now() falls back to the local clock; the gate applies failure modes', async () => {
    const running = await startServer()
    // a long timeout: every call must fail long before it, however busy the machine
    const store = httpStore({ url: running.mount(memoryStore()), secret: SECRET, timeoutMs: 10 * AT_ONCE })
    await store.read([spec]) // a live connection in the pool, then the server goes away
    await running.close()

    const started = Date.now()
    const results = await Promise.allSettled(everyCall(store))
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect(HttpStoreError.isInstance((r as PromiseRejectedResult).reason)).toBe(true)
      expect((r as PromiseRejectedResult).reason.code).toBe('network')
    }
    expect(Date.now() - started).toBeLessThan(AT_ONCE)
    expect(Math.abs((await store.now()) - Date.now())).toBeLessThan(1_000)

    const errors: unknown[] = []
    const open = createTollgate({
      policy: rate,
      store,
      timeoutMs: 1_000,
      onStoreError: (e) => errors.push(e),
    })
    const closed = createTollgate({ policy: budget, store, timeoutMs: 1_000 })
    const [a, b] = await Promise.all([open.reserve(ask), closed.reserve(ask)])
    expect(a).toMatchObject({ allowed: true, flags: ['store_degraded'] })
    expect(b).toMatchObject({ allowed: false, code: 'store_unavailable', status: 503, retryable: true })
    expect(errors).toHaveLength(1)
    expect(String((errors[0] as Error).message)).toMatch(/store server could not be reached/)
    expect(Date.now() - started).toBeLessThan(AT_ONCE)
  })

  it('a reserve refused at connect (ECONNREFUSED: nothing was sent) is not abandoned', async () => {
    const gone = await startServer()
    const url = gone.mount(memoryStore())
    await gone.close() // nothing listens on the port: every connection is refused
    const sent: string[] = []
    const store = httpStore({
      url,
      secret: SECRET,
      timeoutMs: 10 * AT_ONCE,
      fetch: (input, init) => {
        sent.push(new URL(input).pathname.split('/').pop()!)
        return fetch(input, init)
      },
    })
    const error = await store
      .reserve({ id: 'r', counters: [spec], ttlMs: 1_000, blocks: [], meta: { model: 'm' } })
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'network', message: expect.stringMatching(/\(ECONNREFUSED\)/) })
    // a call made after the refusal fails the same way; an abandon would have gone out before it
    await expect(store.lookup('r')).rejects.toMatchObject({ code: 'network' })
    expect(sent).toEqual(['reserve', 'lookup'])
  })
})

describe('a store server that never answers', () => {
  it('every call is aborted within timeoutMs, and gate decisions follow the failure modes', async () => {
    const url = await listen(() => {}) // accepts, reads, never answers
    // long enough that the slack a busy machine needs still tells one timeout from two
    const timeoutMs = 1_000
    const slack = 600
    const store = httpStore({ url, secret: SECRET, timeoutMs })
    let started = Date.now()
    const results = await Promise.allSettled(everyCall(store))
    const elapsed = Date.now() - started
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'timeout' })
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 5)
    expect(elapsed).toBeLessThan(timeoutMs + slack)

    // cold: now() waits one timeout before its local fallback, then the reserve waits one more
    const open = createTollgate({ policy: rate, store, timeoutMs: 5_000 })
    const closed = createTollgate({ policy: budget, store, timeoutMs: 5_000 })
    started = Date.now()
    expect(await open.reserve(ask)).toMatchObject({ allowed: true, flags: ['store_degraded'] })
    expect(Date.now() - started).toBeLessThan(2 * timeoutMs + slack)
    // warm: the fallback time is reused, so a decision costs one timeout
    started = Date.now()
    expect(await closed.reserve(ask)).toMatchObject({ allowed: false, code: 'store_unavailable' })
    expect(Date.now() - started).toBeLessThan(timeoutMs + slack)
  })

  it('a call that times out aborts its request: the server sees the connection go, none is left open', async () => {
    const closed: string[] = []
    const url = await listen((req, res) => {
      res.on('close', () => closed.push(req.url!)) // never answered: only an abort closes it
    })
    const store = httpStore({ url, secret: SECRET, timeoutMs: TIMEOUT })
    await expect(store.lookup('x')).rejects.toMatchObject({ code: 'timeout' })
    await vi.waitFor(() => expect(closed).toEqual(['/lookup']), { timeout: AT_ONCE, interval: 5 })
  })
})

describe('a store whose clock fails', () => {
  it('a reserve that held answers with the time it gave: served, not a 500 the client would abandon', async () => {
    const clock = fakeClock()
    const memory = memoryStore({ clock })
    const errors: unknown[] = []
    const clockless: Store = {
      ...memory,
      now() {
        throw new Error('TIME failed')
      },
    }
    const url = await listen(
      toNodeListener(storeHandler(clockless, { secret: SECRET, onError: (e) => errors.push(e) })),
    )
    const store = httpStore({ url, secret: SECRET, timeoutMs: 10 * AT_ONCE })
    const input = { id: 'held', counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: 'm' } }
    expect(await store.reserve(input)).toMatchObject({ status: 'ok', now: clock.now() })
    expect(errors).toEqual([])
    // a call whose answer carries no time asks the store's clock after it ran: that fails, and the
    // answer carries the time estimated from the reserve's instead of a 500 for a call that ran
    expect(await store.lookup('held')).toMatchObject({ state: 'held' })
    expect(errors).toEqual([new Error('TIME failed')])
    expect(Math.abs((await store.now()) - clock.now())).toBeLessThan(60_000)
    // the hold stays: nothing was abandoned
    expect(await memory.lookup('held')).toMatchObject({ state: 'held' })
    expect((await memory.read([spec]))[0]).toMatchObject({ used: 5, held: 5 })
  })
})

describe('a reserve answered too late', () => {
  it('is released by the client once it gave up, so the late hold does not stay charged', async () => {
    const memory = memoryStore({ clock: fakeClock() })
    const handler = storeHandler(memory, { secret: SECRET })
    let stall: Promise<void> | undefined
    let unstall = () => {}
    const url = await listen(
      toNodeListener(async (request) => {
        const response = await handler(request) // the store applies the call at once…
        if (request.url.endsWith('/reserve')) {
          stall = new Promise<void>((resolve) => {
            unstall = resolve
          })
          await stall // …but the answer is held back past the client's timeout
        }
        return response
      }),
    )
    const store = httpStore({ url, secret: SECRET, timeoutMs: TIMEOUT })
    await expect(
      store.reserve({ id: 'late', counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: 'm' } }),
    ).rejects.toMatchObject({ code: 'timeout' })
    // the release goes out in the background; wait for the store to see it
    for (let i = 0; i < 100 && (await memory.lookup('late'))?.state !== 'released'; i++)
      await new Promise((resolve) => setTimeout(resolve, 10))
    expect(await memory.lookup('late')).toMatchObject({ state: 'released' })
    expect((await memory.read([spec]))[0]).toMatchObject({ used: 0, held: 0 })
    unstall()
  })
})

describe('a reserve still on its way to the store when the client gives up', () => {
  /** A concurrency lease: one call at a time. A stray hold refuses every next call with a 429. */
  const lease: CounterSpec = {
    key: 'calls',
    metric: 'concurrency',
    amount: 1,
    cap: 1,
    enforce: true,
    window: { kind: 'lease', ttlMs: 600_000 },
    expiry: 'keep',
  }
  const reserveOf = (id: string) => ({
    id,
    counters: [lease],
    ttlMs: 600_000,
    blocks: [],
    meta: { model: 'm' },
  })

  /**
   * A store server whose reserves reach the store only when `arrive()` is called (a slow hop, a
   * queue in front of it), long after the client gave up; `landed` resolves once the store ran it.
   */
  async function slowReserves(store: Store) {
    const handler = storeHandler(store, { secret: SECRET })
    let arrive = () => {}
    const arrival = new Promise<void>((resolve) => {
      arrive = resolve
    })
    let landed!: Promise<Response>
    const url = await listen(
      toNodeListener(async (request) => {
        if (!request.url.endsWith('/reserve')) return handler(request)
        // the request in full, then held back: the client's abort cannot stop it any more
        const copy = new Request(request.url, {
          method: 'POST',
          headers: request.headers,
          body: await request.arrayBuffer(),
        })
        landed = arrival.then(() => handler(copy))
        return landed
      }),
    )
    return { url, arrive, landed: () => landed }
  }

  it('is abandoned: the reserve that lands after the abandon holds nothing, and the lease stays free', async () => {
    const memory = memoryStore({ clock: fakeClock() })
    const commits: StoreCommit[] = []
    const server = await slowReserves({
      ...memory,
      commit(input) {
        commits.push(input)
        return memory.commit(input)
      },
    })
    const store = httpStore({ url: server.url, secret: SECRET, timeoutMs: TIMEOUT })
    await expect(store.reserve(reserveOf('slow'))).rejects.toMatchObject({ code: 'timeout' })
    // the abandon goes out in the background and reaches the store first
    await vi.waitFor(() => expect(commits).toHaveLength(1), { timeout: AT_ONCE, interval: 5 })
    expect(commits).toEqual([{ id: 'slow', amounts: null, abandon: true }])
    server.arrive()
    expect((await server.landed()).status).toBe(409) // the store refused the closed id; nobody listens
    expect((await memory.read([lease]))[0]).toMatchObject({ used: 0, held: 0 })
    expect(await memory.lookup('slow')).toMatchObject({ state: 'released' })
    // the user's next call gets the lease
    expect(await memory.reserve(reserveOf('next'))).toMatchObject({ status: 'ok' })
  })

  it('a store server of an older version (abandon ignored) gets a plain release: a landed hold is returned', async () => {
    const memory = memoryStore({ clock: fakeClock() })
    const commits: StoreCommit[] = []
    // as an older server does: the commit's body without the field it does not know
    const older: Store = {
      ...memory,
      commit({ id, amounts }) {
        commits.push({ id, amounts })
        return memory.commit({ id, amounts })
      },
    }
    const handler = storeHandler(older, { secret: SECRET })
    const url = await listen(
      toNodeListener(async (request) => {
        const response = await handler(request)
        return request.url.endsWith('/reserve') ? new Response('Bad Gateway', { status: 502 }) : response
      }),
    )
    const store = httpStore({ url, secret: SECRET, timeoutMs: 10 * AT_ONCE })
    await expect(store.reserve(reserveOf('old'))).rejects.toMatchObject({ code: 'status', status: 502 })
    await vi.waitFor(async () => expect(await memory.lookup('old')).toMatchObject({ state: 'released' }), {
      timeout: AT_ONCE,
      interval: 5,
    })
    expect(commits).toEqual([{ id: 'old', amounts: null }])
    expect((await memory.read([lease]))[0]).toMatchObject({ used: 0, held: 0 })
  })
})

describe('a reserve that landed but got no valid answer back', () => {
  const signed = (response: Response) => response.headers.get(SIGNATURE_HEADER) ?? ''
  /** What a proxy (or a broken path) puts in place of the store server's answer to the reserve. */
  const answers: Record<string, (response: Response) => Response | Promise<Response>> = {
    'a gateway 504': () => new Response('<html>504 Gateway Time-out</html>', { status: 504 }),
    'a gateway 502': () => new Response('Bad Gateway', { status: 502 }),
    'a 500 store_error': () =>
      Response.json({ error: { code: 'store_error', message: 'The store failed.' } }, { status: 500 }),
    'an answer whose signature fails': async (response) =>
      new Response(await response.arrayBuffer(), {
        status: 200,
        headers: { [SIGNATURE_HEADER]: signed(response).replace(/v1=[0-9a-f]{4}/, 'v1=0000') },
      }),
    'an answer whose t= is malformed': async (response) =>
      new Response(await response.arrayBuffer(), {
        status: 200,
        headers: { [SIGNATURE_HEADER]: signed(response).replace(/^t=[^,]*/, 't=soon') },
      }),
  }

  for (const [what, replace] of Object.entries(answers)) {
    it(`is released after ${what}`, async () => {
      const memory = memoryStore({ clock: fakeClock() })
      const handler = storeHandler(memory, { secret: SECRET })
      const url = await listen(
        toNodeListener(async (request) => {
          const response = await handler(request) // the store applies the call…
          return request.url.endsWith('/reserve') ? replace(response) : response // …the answer is lost
        }),
      )
      const store = httpStore({ url, secret: SECRET, timeoutMs: 10 * AT_ONCE })
      const id = `landed-${what}`
      const error = await store
        .reserve({ id, counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: 'm' } })
        .catch((e: unknown) => e)
      expect(HttpStoreError.isInstance(error)).toBe(true)
      // the release goes out in the background
      await vi.waitFor(async () => expect(await memory.lookup(id)).toMatchObject({ state: 'released' }), {
        timeout: AT_ONCE,
        interval: 5,
      })
      expect((await memory.read([spec]))[0]).toMatchObject({ used: 0, held: 0 })
    })
  }

  it('a reserve the server refused (4xx) is not released: it cannot have landed', async () => {
    const memory = memoryStore({ clock: fakeClock() })
    const commits: unknown[] = []
    const url = await listen(
      toNodeListener(
        storeHandler(
          {
            ...memory,
            commit(input) {
              commits.push(input)
              return memory.commit(input)
            },
          },
          { secret: SECRET },
        ),
      ),
    )
    const store = httpStore({ url, secret: SECRET })
    const bad = { id: 'bad', counters: [{ ...spec, amount: -1 }], ttlMs: 1, blocks: [], meta: { model: 'm' } }
    await expect(store.reserve(bad)).rejects.toMatchObject({ code: 'status', status: 400 })
    // a call sent after the refusal is served; a release would have been sent before it
    await store.commit({ id: 'other', amounts: null })
    expect(commits).toEqual([{ id: 'other', amounts: null }])
  })
})

describe('an abandon that fails (the store server still away)', () => {
  /** A concurrency lease: one call at a time. A stray hold refuses every next call with a 429. */
  const lease: CounterSpec = {
    key: 'calls',
    metric: 'concurrency',
    amount: 1,
    cap: 1,
    enforce: true,
    window: { kind: 'lease', ttlMs: 600_000 },
    expiry: 'keep',
  }
  const reserveOf = (id: string) => ({
    id,
    counters: [lease],
    ttlMs: 600_000,
    blocks: [],
    meta: { model: 'm' },
  })
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  /**
   * A store server whose reserves land but lose their answer (a gateway's 504), and whose first
   * `failures` commits never reach the store: `fail` answers them instead (a gateway's 502, a
   * dropped connection), as while the store server is still away. `sent` counts the commits that
   * arrived, `commits` those the store ran.
   */
  async function flaky(failures: number, fail: (req: IncomingMessage, res: ServerResponse) => void) {
    const memory = memoryStore({ clock: fakeClock() })
    const commits: StoreCommit[] = []
    const handler = storeHandler(
      {
        ...memory,
        commit(input) {
          commits.push(input)
          return memory.commit(input)
        },
      },
      { secret: SECRET },
    )
    const serve = toNodeListener(async (request) => {
      const response = await handler(request) // the store applies the call…
      return request.url.endsWith('/reserve') ? new Response('Gateway Time-out', { status: 504 }) : response
    })
    const sent: string[] = []
    const url = await listen((req, res) => {
      if (req.url?.endsWith('/commit')) {
        sent.push(req.url)
        if (sent.length <= failures) return fail(req, res)
      }
      return serve(req, res)
    })
    return { memory, url, sent, commits }
  }
  const badGateway = (_: IncomingMessage, res: ServerResponse) => res.writeHead(502).end('Bad Gateway')
  const dropped = (req: IncomingMessage) => req.socket.destroy()

  /**
   * A client that counts the abandons it sends (`attempts`), warmed up (its key made, a connection
   * open) so that its first call is not slow on a busy machine.
   */
  async function client(url: string, timeoutMs: number) {
    const attempts: string[] = []
    const store = httpStore({
      url,
      secret: SECRET,
      timeoutMs,
      fetch: (input, init) => {
        if (input.endsWith('/commit')) attempts.push(input)
        return fetch(input, init)
      },
    })
    await store.read([lease]).catch(() => {})
    return { store, attempts }
  }
  /** A reserve that lands but whose answer is lost: the client abandons it. */
  async function lose(store: ReturnType<typeof httpStore>, id: string) {
    const error = await store.reserve(reserveOf(id)).catch((e: unknown) => e)
    // the gateway's 504 (a timeout, on a machine too busy to answer within timeoutMs, is abandoned too)
    expect(HttpStoreError.isInstance(error)).toBe(true)
  }
  const abandonOf = (id: string) => ({ id, amounts: null, abandon: true })
  /** What reached the store: the abandon of `id`, once (more if an answer was late: it is idempotent). */
  const onlyAbandons = (commits: StoreCommit[], id: string) =>
    expect(commits).toEqual(commits.map(() => abandonOf(id)))

  it('is tried again after a gateway 502: the hold is returned and the lease is free', async () => {
    const server = await flaky(2, badGateway)
    const { store, attempts } = await client(server.url, 300)
    await lose(store, 'away')
    await vi.waitFor(
      async () => expect(await server.memory.lookup('away')).toMatchObject({ state: 'released' }),
      { timeout: 3 * AT_ONCE, interval: 5 },
    )
    expect(attempts.length).toBeGreaterThanOrEqual(3) // two failed, the third reached the store
    expect(server.commits).toContainEqual(abandonOf('away'))
    onlyAbandons(server.commits, 'away')
    expect((await server.memory.read([lease]))[0]).toMatchObject({ used: 0, held: 0 })
    expect(await server.memory.reserve(reserveOf('next'))).toMatchObject({ status: 'ok' })
  })

  it('is tried again after its connection dropped', async () => {
    const server = await flaky(1, dropped)
    const { store, attempts } = await client(server.url, 300)
    await lose(store, 'dropped')
    await vi.waitFor(
      async () => expect(await server.memory.lookup('dropped')).toMatchObject({ state: 'released' }),
      { timeout: 3 * AT_ONCE, interval: 5 },
    )
    expect(attempts.length).toBeGreaterThanOrEqual(2)
    onlyAbandons(server.commits, 'dropped')
    expect((await server.memory.read([lease]))[0]).toMatchObject({ used: 0, held: 0 })
  })

  it('is tried 5 times at most, spread out, then left to the TTL', async () => {
    const server = await flaky(Number.POSITIVE_INFINITY, badGateway)
    // retries wait about timeoutMs / 2, then twice as long each time: 7.5 × timeoutMs (± 25 %) in all
    const timeoutMs = 60
    const { store, attempts } = await client(server.url, timeoutMs)
    const started = Date.now()
    await lose(store, 'gone')
    await vi.waitFor(() => expect(attempts).toHaveLength(5), { timeout: 3 * AT_ONCE, interval: 5 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(0.75 * 7.5 * timeoutMs - 5) // not all at once
    await sleep(10 * timeoutMs) // longer than a sixth wait would be: nothing more goes out
    expect(attempts).toHaveLength(5)
    expect(server.commits).toEqual([])
    expect((await server.memory.lookup('gone'))?.state).not.toBe('released')
  })

  it('is sent at once when the server answers another call, not after its wait', async () => {
    const server = await flaky(1, badGateway)
    const { store, attempts } = await client(server.url, 10 * AT_ONCE) // the first retry would wait 5 s
    await lose(store, 'back')
    await vi.waitFor(() => expect(server.sent).toHaveLength(1), { timeout: AT_ONCE, interval: 5 })
    await sleep(20)
    expect(attempts).toHaveLength(1) // waiting
    // the server answers: the abandon waiting for it goes out with no more wait
    await store.read([lease])
    await vi.waitFor(
      async () => expect(await server.memory.lookup('back')).toMatchObject({ state: 'released' }),
      { timeout: AT_ONCE, interval: 5 },
    )
    expect(attempts).toHaveLength(2)
    expect(server.commits).toEqual([abandonOf('back')])
  })

  it('is not tried again when the server refused it (4xx): the same request would be refused again', async () => {
    const server = await flaky(1, (_, res) => res.writeHead(400).end('{"error":{"code":"bad_request"}}'))
    const timeoutMs = 300
    const { store, attempts } = await client(server.url, timeoutMs)
    await lose(store, 'refused')
    await vi.waitFor(() => expect(server.sent).toHaveLength(1), { timeout: AT_ONCE, interval: 5 })
    await sleep(2 * timeoutMs) // four times the first wait
    expect(attempts).toHaveLength(1)
    expect(server.sent).toHaveLength(1)
  })
})
