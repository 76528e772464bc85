/**
 * `httpStore({ url, secret })`: the store contract over HTTP, with `fetch` and Web Crypto only, so
 * it runs on Node, Next.js Edge, Vercel Edge, Cloudflare Workers, Deno and Bun. Every store call
 * is one signed `POST` to a `storeHandler`; every answer is signed too and carries the store's time.
 */
import { type RemoteStore, type StoreReserveResult, TollgateError } from '@tollgate/core'
import { abandoner } from './abandon.js'
import { HttpStoreError } from './errors.js'
import {
  answerMessage,
  encodeJson,
  hmacKey,
  nonce,
  type Operation,
  parseAnswerSignature,
  requestMessage,
  type Secret,
  SIGNATURE_HEADER,
  sign,
  verify,
} from './protocol.js'

/** Options of {@link httpStore}. */
export interface HttpStoreOptions {
  /**
   * Base URL of the store server; each operation is `POST <url>/<operation>`. Use `https:` across
   * any network you do not control. Proxies in between must not rewrite the path: it is signed.
   * @example 'https://tollgate-store.internal/store'
   */
  url: string | URL
  /**
   * The shared secret the store server accepts, at least 32 bytes.
   * @example process.env.TOLLGATE_STORE_SECRET
   */
  secret: Secret
  /**
   * The `fetch` to use: a runtime's own, or one with a connection pool or tracing.
   * @default globalThis.fetch
   * @example (input, init) => fetch(input, { ...init, dispatcher: agent })
   */
  fetch?: (input: string, init: RequestInit) => Promise<Response>
  /**
   * Most time one store call may take, signing and reading the answer included; after it the
   * request is aborted and the call rejects with an {@link HttpStoreError} (`timeout`), so the gate
   * applies each rule's failure mode. Keep it below the gate's `timeoutMs`. A positive number of ms,
   * at most 2147483647 (the longest timer delay; a longer one would fire at once).
   * @default 1_000
   * @example 300
   */
  timeoutMs?: number
  /**
   * How long the store time learned from the last answer is trusted by `now()`: within it, `now()`
   * answers the local clock plus the learned offset without a request; past it, `now()` asks the
   * server. `0` asks every time (tests that move a fake clock on the server).
   * @default 60_000
   * @example 0
   */
  clockMaxAgeMs?: number
}

/** The HTTP store: every operation but `now()` answers with a promise. */
export interface HttpStore extends RemoteStore {
  /** The base URL. */
  readonly url: string
  /**
   * The store's time: the local clock plus the offset learned from the last answer while it is
   * fresh (`clockMaxAgeMs`), else one request (shared by concurrent calls). When that request fails it answers the local
   * estimate rather than throwing: the gate reads the time outside its failure handling, and the
   * store call that follows fails and applies the failure modes.
   */
  now(): number | Promise<number>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const describe = (error: unknown) => {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } })?.cause
  const detail = cause?.code ?? cause?.message ?? (error as Error)?.message
  return typeof detail === 'string' ? detail : String(error)
}

/** The longest delay `setTimeout` keeps (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMEOUT_MS = 2_147_483_647

/** The server's `{ error: { code, message, maxBodyBytes? } }`, or nothing recognisable. */
function serverError(bytes: Uint8Array): { code?: string; message?: string; maxBodyBytes?: number } {
  try {
    const { error } = JSON.parse(decoder.decode(bytes)) as {
      error?: { code?: unknown; message?: unknown; maxBodyBytes?: unknown }
    }
    return {
      ...(typeof error?.code === 'string' ? { code: error.code.slice(0, 64) } : {}),
      ...(typeof error?.message === 'string' ? { message: error.message.slice(0, 500) } : {}),
      ...(Number.isSafeInteger(error?.maxBodyBytes) ? { maxBodyBytes: error?.maxBodyBytes as number } : {}),
    }
  } catch {
    return {}
  }
}

/**
 * Whether a reserve that failed with `error` may still have been applied by the store, so that its
 * hold must be released: anything but an input refused before sending, a connection refused (nothing
 * was sent) or a 4xx answer (the server, or a proxy before it, refused the request). A timeout, a
 * connection lost after sending, a 5xx (from the store server or a gateway that gave up waiting for
 * it), and an answer that fails its signature or the protocol all may follow a hold that landed.
 */
function mayHaveLanded(error: unknown): boolean {
  if (!HttpStoreError.isInstance(error)) return false // refused before sending (input, a 413)
  if (error.code === 'status')
    return !(error.status !== undefined && error.status >= 400 && error.status < 500)
  if (error.code === 'network') return describe(error.cause) !== 'ECONNREFUSED'
  return true
}

/**
 * A store that talks to a `storeHandler` over HTTP. Errors reject with {@link HttpStoreError} (or a
 * `TypeError` for input JSON cannot carry, such as `NaN`); the gate answers them with each rule's
 * failure mode. A request body the server refuses as too large (413) rejects with a `TollgateError`
 * `store_error` instead, which the gate passes to its caller: that input can never be carried. A
 * reserve that failed after it may have landed (timeout, lost connection, 5xx, a bad answer) is
 * abandoned in the background (`commit` with `abandon: true`): released if it landed, and its id
 * remembered so that the reserve, should it land later, holds nothing. An abandon that fails (the
 * server still away) is sent again after `timeoutMs / 2`, then twice as long each time, or as soon as
 * the server answers another call: 5 attempts in all, at most 10,000 waiting, on unref'd timers.
 *
 * @example
 * import { createTollgate } from '@tollgate/core'
 * import { httpStore } from '@tollgate/http'
 *
 * export const runtime = 'edge'
 * const store = httpStore({ url: process.env.TOLLGATE_STORE_URL!, secret: process.env.TOLLGATE_STORE_SECRET!, timeoutMs: 300 })
 * const gate = createTollgate({ policy, store, timeoutMs: 500 })
 */
export function httpStore(options: HttpStoreOptions): HttpStore {
  if (typeof options !== 'object' || options === null) throw new TypeError('httpStore needs { url, secret }')
  if (typeof options.url !== 'string' && !(options.url instanceof URL))
    throw new TypeError('httpStore: url must be a URL (a string or a URL object)')
  if (options.fetch !== undefined && typeof options.fetch !== 'function')
    throw new TypeError('httpStore: fetch must be a function (a fetch of your own)')
  const base = new URL(String(options.url))
  if (base.protocol !== 'https:' && base.protocol !== 'http:')
    throw new TypeError(`httpStore: url must be http: or https:, got ${base.protocol}`)
  base.search = ''
  base.hash = ''
  const root = base.href.replace(/\/+$/, '')
  const key = hmacKey(options.secret, 'httpStore')
  const timeoutMs = options.timeoutMs ?? 1_000
  const clockMaxAgeMs = options.clockMaxAgeMs ?? 60_000
  // setTimeout fires at once for a delay past 2^31 - 1 ms: every call would time out
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS)
    throw new TypeError(`httpStore: timeoutMs is a positive number of ms, at most ${MAX_TIMEOUT_MS}`)
  if (typeof clockMaxAgeMs !== 'number' || !(clockMaxAgeMs >= 0))
    throw new TypeError('httpStore: clockMaxAgeMs is a number of ms >= 0')
  const fetcher = options.fetch ?? ((input: string, init: RequestInit) => globalThis.fetch(input, init))

  /** Store time minus local time, from the last signed answer; when it was learned (local time). */
  let offset = 0
  let learnedAt: number | undefined
  /** The `now` request in flight: concurrent calls on a cold store share it. */
  let asking: Promise<number> | undefined

  async function exchange(operation: Operation, text: string, signal: AbortSignal): Promise<unknown> {
    const endpoint = `${root}/${operation}`
    const path = new URL(endpoint).pathname
    const body = encoder.encode(text)
    const timestamp = Date.now()
    const n = nonce()
    const mac = await sign(await key, requestMessage(path, timestamp, n, body))
    let response: Response
    let answer: Uint8Array
    try {
      response = await fetcher(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: `t=${timestamp},n=${n},v1=${mac}`,
        },
        body,
        signal,
      })
      answer = new Uint8Array(await response.arrayBuffer()) // read in full: the connection goes back to the pool
    } catch (cause) {
      throw new HttpStoreError('network', `The store server could not be reached (${describe(cause)}).`, {
        cause,
      })
    }
    if (response.status !== 200) {
      const { code, message, maxBodyBytes } = serverError(answer)
      const error = new HttpStoreError(
        'status',
        `The store server answered ${response.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : '.'}`,
        { status: response.status, ...(code ? { serverCode: code } : {}) },
      )
      // Too large for the store server (or a proxy before it): no outage, this input cannot be carried.
      // A store_error reaches the caller; failure modes would let it through (or refuse it) forever.
      if (response.status === 413) {
        const limit =
          maxBodyBytes === undefined
            ? 'over what the store server (or a proxy in front of it) accepts'
            : `over the store server's limit of ${maxBodyBytes} bytes (its maxBodyBytes)`
        throw new TollgateError(
          'store_error',
          `The ${operation} request to the HTTP store is ${body.byteLength} bytes, ${limit}: it cannot be ` +
            'sent (long ids or keys make large bodies).',
          { cause: error },
        )
      }
      throw error
    }
    const signature = parseAnswerSignature(response.headers.get(SIGNATURE_HEADER))
    if (
      !signature ||
      !(await verify(await key, signature.mac, answerMessage(n, 200, signature.text, answer)))
    )
      throw new HttpStoreError('signature', 'The answer is not signed by the store server.')
    let parsed: { result?: unknown }
    try {
      parsed = JSON.parse(decoder.decode(answer)) as { result?: unknown }
    } catch (cause) {
      throw new HttpStoreError('protocol', 'The store server answered with something other than JSON.', {
        cause,
      })
    }
    if (typeof parsed !== 'object' || parsed === null || !('result' in parsed))
      throw new HttpStoreError('protocol', 'The store server answered without a result.')
    learnedAt = Date.now()
    offset = signature.time - learnedAt
    return parsed.result
  }

  /** One store call within `timeoutMs`: aborted, and rejected with `timeout`, when it takes longer. */
  async function call<T>(operation: Operation, input: object): Promise<T> {
    const text = encodeJson(input)
    const controller = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort()
        reject(new HttpStoreError('timeout', `The store server did not answer within ${timeoutMs} ms.`))
      }, timeoutMs)
    })
    let result: T
    try {
      result = (await Promise.race([exchange(operation, text, controller.signal), expired])) as T
    } finally {
      clearTimeout(timer)
    }
    abandons.answered() // the server answers: abandons waiting for it go out now
    return result
  }

  /**
   * Abandons of reserves that may have landed without an answer. The first is sent at once; one
   * that fails is sent again after timeoutMs / 2, then twice as long each time (± 25 %), or as soon
   * as the server answers another call: 5 attempts in all, 10,000 abandons waiting at most.
   */
  const abandons = abandoner({
    send: (id) => call('commit', { id, amounts: null, abandon: true }),
    firstDelayMs: timeoutMs / 2,
  })

  const done = () => undefined

  return {
    url: root,
    async reserve(input) {
      try {
        return await call<StoreReserveResult>('reserve', input)
      } catch (error) {
        // the hold may have landed though no valid answer came back (a timeout, a gateway's 5xx, an
        // answer that fails its check), or may still land (a reserve still on its way to the store):
        // abandon it. The store returns the hold if it is there, and remembers the id as released
        // either way, so that a reserve arriving after this holds nothing. Idempotent: one that fails
        // (the server still away) is sent again later. A store server of an older version ignores
        // `abandon`: a plain release, which a later reserve outlives.
        if (mayHaveLanded(error)) abandons.abandon(input.id)
        throw error
      }
    },
    commit: (input) => call('commit', input),
    read: (counters) => call('read', { counters }),
    adjust: (counter, amount) => call('adjust', { counter, amount }),
    setOverride: (key, cap, scope) =>
      call('setOverride', scope === undefined ? { key, cap } : { key, cap, scope }).then(done),
    block: (marker, code) => call('block', { marker, code }).then(done),
    blocked: (markers) => call('blocked', { markers }),
    lookup: (id) => call('lookup', { id }),
    now() {
      const local = Date.now()
      if (learnedAt !== undefined && local - learnedAt < clockMaxAgeMs) return local + offset
      asking ??= call<number>('now', {})
        .catch(() => {
          learnedAt = Date.now() // do not pay a timeout on every call while the server is away
          return learnedAt + offset
        })
        .finally(() => {
          asking = undefined
        })
      return asking
    },
  }
}
