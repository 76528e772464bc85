/**
 * `httpStore({ url, secret })`: the store contract over HTTP, with `fetch` and Web Crypto only, so
 * it runs on Node, Next.js Edge, Vercel Edge, Cloudflare Workers, Deno and Bun. Every store call
 * is one signed `POST` to a `storeHandler`; every answer is signed too and carries the store's time.
 */
import type { RemoteStore, StoreReserveResult } from '@tollgate/core'
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
   * applies each rule's failure mode. Keep it below the gate's `timeoutMs`.
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

/** The server's `{ error: { code, message } }`, or nothing recognisable. */
function serverError(bytes: Uint8Array): { code?: string; message?: string } {
  try {
    const { error } = JSON.parse(decoder.decode(bytes)) as { error?: { code?: unknown; message?: unknown } }
    return {
      ...(typeof error?.code === 'string' ? { code: error.code.slice(0, 64) } : {}),
      ...(typeof error?.message === 'string' ? { message: error.message.slice(0, 500) } : {}),
    }
  } catch {
    return {}
  }
}

/**
 * A store that talks to a `storeHandler` over HTTP. Errors reject with {@link HttpStoreError} (or a
 * `TypeError` for input JSON cannot carry, such as `NaN`); the gate answers them with each rule's
 * failure mode. A reserve that timed out is released in the background, in case it landed.
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
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError('httpStore: timeoutMs is a positive number of ms')
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
      const { code, message } = serverError(answer)
      throw new HttpStoreError(
        'status',
        `The store server answered ${response.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : '.'}`,
        { status: response.status, ...(code ? { serverCode: code } : {}) },
      )
    }
    const signature = parseAnswerSignature(response.headers.get(SIGNATURE_HEADER))
    if (
      !signature ||
      !(await verify(await key, signature.mac, answerMessage(n, 200, signature.time, answer)))
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
    try {
      return (await Promise.race([exchange(operation, text, controller.signal), expired])) as T
    } finally {
      clearTimeout(timer)
    }
  }

  const done = () => undefined

  return {
    url: root,
    async reserve(input) {
      try {
        return await call<StoreReserveResult>('reserve', input)
      } catch (error) {
        // the hold may have landed after we gave up: return it (a release of an unknown id is harmless)
        if (HttpStoreError.isInstance(error) && (error.code === 'timeout' || error.code === 'network'))
          call('commit', { id: input.id, amounts: null }).catch(done)
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
