/**
 * `storeHandler(store, options)`: serves any Tollgate store over HTTP as `(Request) => Response`.
 * Every request must be signed (see protocol.ts); the handler checks, in order: method and
 * operation, signature header and timestamp, body size, signature, timestamp again (the body may have
 * taken a while) and nonce, JSON and shape; then it runs the one store call and signs the answer.
 * Errors never carry a store's internals.
 */
import {
  type CounterSpec,
  callHook,
  checkClock,
  type Store,
  type StoreCommit,
  type StoreReserve,
} from '@tollgate/core'
import { memoryNonces, NonceCacheFullError, type NonceStore } from './nonces.js'
import {
  answerMessage,
  hmacKey,
  isOperation,
  type Operation,
  parseRequestSignature,
  requestMessage,
  type Secret,
  SIGNATURE_HEADER,
  sign,
  verify,
} from './protocol.js'
import { checks } from './validate.js'

/** Options of {@link storeHandler}. */
export interface StoreHandlerOptions {
  /**
   * Shared secret(s), at least 32 bytes each. A request signed with any of them is accepted, so a
   * secret can be rotated: add the new one here, move the clients, then drop the old one. Answers
   * are signed with the secret that verified the request.
   * @example process.env.TOLLGATE_STORE_SECRET
   * @example [process.env.TOLLGATE_STORE_SECRET_NEXT, process.env.TOLLGATE_STORE_SECRET]
   */
  secret: Secret | readonly Secret[]
  /**
   * Accepted distance between a request's timestamp and this server's clock, both ways, in ms.
   * Older (or future) requests are refused with 401: when the headers arrive, and again once the
   * body is read, as the nonce is claimed. Nonces are remembered until their timestamp is this far
   * behind, so a copy of a request is refused by its nonce or by its time.
   * @default 60_000
   * @example 30_000
   */
  maxSkewMs?: number
  /**
   * Largest request body accepted, in bytes; larger ones are refused with 413 before they are read
   * (the answer names this limit, and `httpStore` throws a `store_error` naming both sizes).
   * @default 1_048_576 (1 MiB)
   * @example 256 * 1024
   */
  maxBodyBytes?: number
  /**
   * Where seen nonces are remembered, so that a captured request cannot be replayed. The default
   * covers this process; with several store servers behind a load balancer, share one.
   * @default an in-memory cache of at most 1,000,000 live nonces (refuses with 503 when full)
   * @example redisNonceStore({ client }) // from '@tollgate/web/redis'
   */
  nonces?: NonceStore
  /**
   * Wall clock for timestamps and nonce expiry (not the store's clock: time for counters always
   * comes from the store).
   * @default Date.now
   * @example { now: () => fakeClock.now() }
   */
  clock?: { now(): number }
  /**
   * Called with every error the store throws (answered 500 without details, or with an estimated
   * time when only the store's `now()` failed after a call that ran) and every failure of the nonce
   * store (answered 503). Errors it throws are ignored.
   * @default none
   * @example (error) => logger.error({ err: error }, 'tollgate store failed')
   */
  onError?: (error: unknown, operation: Operation | null) => void
}

/** The handler: a web `Request` in, a `Response` out. Never rejects. */
export type StoreHandler = (request: Request) => Promise<Response>

type HmacKey = Awaited<ReturnType<typeof hmacKey>>

/** The body of each operation, once checked. */
interface Bodies {
  reserve: StoreReserve
  commit: StoreCommit
  read: { counters: CounterSpec[] }
  adjust: { counter: CounterSpec; amount: number }
  setOverride: { key: string; cap: number | null; scope?: string }
  block: { marker: string; code: string | null }
  blocked: { markers: string[] }
  lookup: { id: string }
  now: Record<string, never>
}

/** How each operation calls the store with its (checked) body. */
const calls: { [O in Operation]: (store: Store, body: Bodies[O]) => unknown } = {
  reserve: (store, body) => store.reserve(body),
  commit: (store, body) => store.commit(body),
  read: (store, body) => store.read(body.counters),
  adjust: (store, body) => store.adjust(body.counter, body.amount),
  setOverride: (store, body) => store.setOverride(body.key, body.cap, body.scope),
  block: (store, body) => store.block(body.marker, body.code),
  blocked: (store, body) => store.blocked(body.markers),
  lookup: (store, body) => store.lookup(body.id),
  now: (store) => store.now(),
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

const refuse = (
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  fields: Record<string, unknown> = {},
) =>
  Response.json(
    { error: { code, message, ...fields } },
    { status, headers: { 'cache-control': 'no-store', ...headers } },
  )

/** The body, or `null` when it is longer than `max` bytes (reading stops there). */
async function readBody(request: Request, max: number): Promise<Uint8Array | null> {
  const declared = request.headers.get('content-length')
  if (declared !== null && !(Number(declared) <= max)) return null
  if (!request.body) return new Uint8Array()
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => {})
      return null
    }
    chunks.push(value)
  }
  const body = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    body.set(chunk, at)
    at += chunk.byteLength
  }
  return body
}

/**
 * Serves `store` over HTTP for {@link httpStore} clients: one signed `POST <base>/<operation>` per
 * store call. Mount it under any path (the operation is the last path segment); on Node, wrap it
 * with `toNodeListener` from `@tollgate/http/node`.
 *
 * @example
 * import { createServer } from 'node:http'
 * import { storeHandler } from '@tollgate/http'
 * import { toNodeListener } from '@tollgate/http/node'
 * import { redisStore } from '@tollgate/redis'
 *
 * const handler = storeHandler(redisStore({ client }), { secret: process.env.TOLLGATE_STORE_SECRET! })
 * createServer(toNodeListener(handler)).listen(8787)
 */
export function storeHandler(store: Store, options: StoreHandlerOptions): StoreHandler {
  if (typeof options !== 'object' || options === null) throw new TypeError('storeHandler needs { secret }')
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new TypeError('storeHandler: onError must be a function')
  if (options.nonces !== undefined && typeof options.nonces?.claim !== 'function')
    throw new TypeError('storeHandler: nonces must be a nonce store (with claim())')
  const secrets = (Array.isArray(options.secret) ? options.secret : [options.secret]) as Secret[]
  if (secrets.length === 0) throw new TypeError('storeHandler: give at least one secret')
  const keys: Promise<HmacKey>[] = secrets.map((secret) => hmacKey(secret, 'storeHandler'))
  const maxSkewMs = options.maxSkewMs ?? 60_000
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576
  if (typeof maxSkewMs !== 'number' || !(maxSkewMs > 0) || !Number.isFinite(maxSkewMs))
    throw new TypeError('storeHandler: maxSkewMs is a positive number of ms')
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)
    throw new TypeError('storeHandler: maxBodyBytes is a positive integer')
  checkClock('storeHandler', options.clock)
  const now = options.clock ? () => options.clock!.now() : () => Date.now()
  const nonces = options.nonces ?? memoryNonces(1_000_000, now)
  const report = (error: unknown, operation: Operation | null) => {
    callHook(options.onError, error, operation) // the hook's own failure changes nothing
  }

  /**
   * The store's time minus this server's clock, from the last store time an answer carried. When the
   * store's `now()` fails after a call that already ran (a commit, an adjust), the answer carries
   * this server's clock plus it instead of a 500 that would say the call failed.
   */
  let offset: number | undefined
  /** The store's time after `operation` ran: its `now()`, or the estimate above when that fails. */
  const timeAfter = async (operation: Operation): Promise<number> => {
    try {
      const time = await store.now()
      if (!Number.isFinite(time)) throw new TypeError(`The store answered a time of ${time}.`)
      return time
    } catch (error) {
      if (offset === undefined) throw error
      report(error, operation)
      return now() + offset
    }
  }

  const outsideWindow = () =>
    refuse(401, 'unauthorized', 'The request timestamp is outside the accepted window.')

  /** The key whose signature matches, or `null`. */
  const verifying = async (mac: string, message: Uint8Array): Promise<HmacKey | null> => {
    for (const key of keys) if (await verify(await key, mac, message)) return key
    return null
  }

  return async (request) => {
    if (request.method !== 'POST') return refuse(405, 'method_not_allowed', 'Use POST.', { allow: 'POST' })
    const path = new URL(request.url).pathname
    const operation = path.slice(path.lastIndexOf('/') + 1)
    if (!isOperation(operation)) return refuse(404, 'not_found', 'No such store operation.')
    const signature = parseRequestSignature(request.headers.get(SIGNATURE_HEADER))
    if (!signature) return refuse(401, 'unauthorized', 'Missing or malformed request signature.')
    if (Math.abs(now() - signature.timestamp) > maxSkewMs) return outsideWindow()

    let body: Uint8Array | null
    try {
      body = await readBody(request, maxBodyBytes)
    } catch {
      return refuse(400, 'bad_request', 'The request body could not be read.')
    }
    if (body === null)
      return refuse(413, 'payload_too_large', `The body is over ${maxBodyBytes} bytes.`, {}, { maxBodyBytes })
    const key = await verifying(
      signature.mac,
      requestMessage(path, signature.timestamp, signature.nonce, body),
    )
    if (!key) return refuse(401, 'unauthorized', 'Bad request signature.')
    // The window holds when the nonce is claimed, not only when the headers came: a body sent slowly
    // would otherwise arrive after the first use's nonce was forgotten, and replay it.
    const claimedAt = now()
    if (Math.abs(claimedAt - signature.timestamp) > maxSkewMs) return outsideWindow()
    try {
      // kept until no copy can pass the check above: past timestamp + maxSkewMs
      const ttl = signature.timestamp + maxSkewMs - claimedAt + 1
      if (!(await nonces.claim(signature.nonce, ttl)))
        return refuse(401, 'unauthorized', 'This request was already received (a replay).')
    } catch (error) {
      report(error, operation)
      const full = error instanceof NonceCacheFullError
      return refuse(503, 'unavailable', full ? 'Too many requests in flight.' : 'Replay check failed.')
    }

    let input: unknown
    try {
      input = JSON.parse(decoder.decode(body))
    } catch {
      return refuse(400, 'bad_request', 'The body is not JSON (UTF-8).')
    }
    const problem = checks[operation](input, '')
    if (problem) return refuse(400, 'bad_request', `Invalid ${operation} input: ${problem}.`)

    let text: string
    let time: number
    try {
      const call = calls[operation] as (store: Store, body: unknown) => unknown
      const result = await call(store, input)
      // the time the store answered with where it gave one (a reserve's `now`): no second call that
      // could fail after a hold was placed
      const given = operation === 'now' ? result : (result as { now?: unknown } | null)?.now
      time = typeof given === 'number' ? given : await timeAfter(operation)
      // the answer's `t=` is String(time), which the client reads back for every finite number
      if (!Number.isFinite(time)) throw new TypeError(`The store answered a time of ${time}.`)
      offset = time - now()
      text = JSON.stringify({ result: result ?? null })
    } catch (error) {
      // a reserve under an id the store knows as closed (see the store contract): nothing landed,
      // so the client has nothing to take back (a 4xx, where a 5xx would make it abandon the id)
      if (operation === 'reserve' && (error as { code?: unknown } | null)?.code === 'reservation_closed')
        return refuse(
          409,
          'reservation_closed',
          'This reservation id was used before and is closed; nothing was held.',
        )
      report(error, operation)
      return refuse(500, 'store_error', 'The store failed.')
    }
    const bytes = encoder.encode(text)
    const t = String(time) // the exact text signed and sent
    const mac = await sign(key, answerMessage(signature.nonce, 200, t, bytes))
    return new Response(bytes, {
      status: 200,
      headers: {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        [SIGNATURE_HEADER]: `t=${t},v1=${mac}`,
      },
    })
  }
}
