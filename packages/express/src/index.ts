/**
 * @tollgate/express — Express middleware over `@tollgate/web`: identify, reserve, refuse or expose
 * the hold as `req.tollgate`, put rate-limit headers on every response, and settle when the
 * response finishes or the client disconnects (streamed responses included).
 *
 * @example
 * import { tollgate } from '@tollgate/express'
 * import { apiKeyIdentity } from '@tollgate/web'
 * app.post('/v1/chat/completions', express.json(), tollgate({ gate, identify: apiKeyIdentity(keys) }), route)
 */

import { type Tollgate, TollgateError } from '@tollgate/core'
import {
  checkTollgateOptions,
  errorResponse,
  handleRequest,
  type ResponseTap,
  type TollgateHandle,
  type TollgateOptions,
  type UsageHandlerOptions,
  usageHandler,
} from '@tollgate/web'
import type { Request as ExpressRequest, Response as ExpressResponse, RequestHandler } from 'express'

declare global {
  namespace Express {
    interface Request {
      /** The hold Tollgate placed for this request (set by the `tollgate` middleware). */
      tollgate?: TollgateHandle
    }
  }
}

/** Options of {@link tollgate}: value functions receive Express's `req` (after any body parser). */
export type ExpressTollgateOptions = TollgateOptions<ExpressRequest>

/**
 * Every value of each header of `req` as received, by lower-case name: what `req.headersDistinct`
 * holds, read from `req.rawHeaders` (empty for a request made by hand without them).
 */
function received(req: ExpressRequest): Map<string, string[]> {
  const values = new Map<string, string[]>()
  const raw: readonly string[] = Array.isArray(req.rawHeaders) ? req.rawHeaders : []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const list = values.get(name)
    if (list) list.push(raw[i + 1]!)
    else values.set(name, [raw[i + 1]!])
  }
  return values
}

/**
 * The value a web `Request` has for a header whose `req.headers` entry is `value` and whose values
 * as sent are `sent`: a header sent more than once is joined with `, ` as fetch does (Hono and Next
 * see that). Node's `req.headers` keeps only the first of
 * some (`authorization`, `proxy-authorization`, `from`, `user-agent`, …), so two `Authorization`
 * headers admitted the first key on Express, where the other adapters refuse `Bearer k1, Bearer k2`
 * (401). A value an earlier middleware set in `req.headers` is kept as it is.
 */
function headerValue(value: string | string[], sent: readonly string[] | undefined): string {
  if (Array.isArray(value)) return value.join(', ')
  return sent && sent.length > 1 && value === sent[0] ? sent.join(', ') : value
}

/**
 * A web `Request` with the headers, method and URL of `req` (no body: identity reads headers), or
 * `undefined` when its target is no URL: Node accepts some that WHATWG URLs refuse, such as
 * `GET http://host:99999/ HTTP/1.1`, and those are answered 400 (they threw, and became a 500).
 * fetch refuses CONNECT, TRACE and TRACK: they become `unsafe` (identity does not depend on the method).
 * Repeated headers are joined as fetch joins them ({@link headerValue}).
 */
function toWebRequest(req: ExpressRequest, unsafe = 'GET'): Request | undefined {
  const target = req.originalUrl || req.url
  if (!URL.canParse(target, 'http://localhost')) return undefined
  const headers = new Headers()
  const sent = received(req)
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, headerValue(value, sent.get(name)))
  }
  const url = new URL(target, 'http://localhost')
  return new Request(url, {
    method: /^(CONNECT|TRACE|TRACK)$/i.test(req.method) ? unsafe : req.method,
    headers,
  })
}

/** The 400 answer to a request whose target is no URL. */
const notAUrl = () =>
  errorResponse(new TollgateError('invalid_request', 'The request target is not a valid URL.'))

async function send(res: ExpressResponse, response: Response): Promise<void> {
  res.status(response.status)
  response.headers.forEach((value, name) => {
    res.setHeader(name, value)
  })
  res.end(Buffer.from(await response.arrayBuffer()))
}

type Chunk = string | Uint8Array
const bytes = (chunk: unknown, encoding: unknown): Chunk | null =>
  typeof chunk === 'string'
    ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
    : chunk instanceof Uint8Array
      ? chunk
      : null

/**
 * How long the hold of a request whose client went away before any byte of the response waits for
 * its route to finish (end the response, or close the hold) before it is settled at the estimate:
 * the route may still be calling the model, whose usage it reports when the call returns or stops
 * on `handle.signal`.
 */
const ABANDONED_ROUTE_MS = 30_000

/**
 * Count what `res` sends, and end the tap when the response finishes or its connection closes
 * first (the client went away). A stream cut off that way settles from what was sent. When nothing
 * was sent yet, the route is most likely still calling the model: `handle.signal` aborts at once,
 * but the hold waits for the route to end its response (and closes with what it reported by then)
 * or to close the hold itself, else {@link ABANDONED_ROUTE_MS} (then at the estimate). Closing it
 * at the disconnect released a call the route was still making: its usage, reported later, was
 * dropped. A `HEAD` request (Express runs the `GET` route for it, and `res.send`/`res.json` send no
 * body) answered below status 400 settles with what the route reported, else at the estimate, as
 * `finishResponse` does for Hono and Next: released because no byte was sent, it was never counted
 * (its limits never applied, while the route called the model every time).
 */
function watch(req: ExpressRequest, res: ExpressResponse, tap: ResponseTap): void {
  const write = res.write
  const end = res.end
  const head = req.method === 'HEAD'
  let sent = 0
  let ended = false
  let gone = false
  /** Whether the end keeps the hold although no body was sent: the route answered a `HEAD`. */
  const answered = () => head && ended && res.statusCode < 400
  res.write = function (this: ExpressResponse, chunk: unknown, ...rest: unknown[]) {
    const data = bytes(chunk, rest[0])
    if (data) {
      tap.write(data)
      sent += data.length
    }
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof res.write
  res.end = function (this: ExpressResponse, chunk?: unknown, ...rest: unknown[]) {
    const data = typeof chunk === 'function' ? null : bytes(chunk, rest[0])
    if (data) tap.write(data)
    ended = true
    const answer = (end as (...args: unknown[]) => ExpressResponse).call(this, chunk, ...rest)
    // the route is done: a hold left open by a disconnect closes with what it reported
    if (gone) void tap.end('aborted', res.statusCode, answered())
    return answer
  } as typeof res.end
  res.once('finish', () => {
    if (!gone) void tap.end('complete', res.statusCode, answered())
  })
  res.once('close', () => {
    if (res.writableFinished && !gone) return void tap.end('complete', res.statusCode, answered())
    gone = true
    if (ended || sent > 0) return void tap.end('aborted', res.statusCode, answered())
    tap.abort()
    setTimeout(() => void tap.end('aborted', res.statusCode, true), ABANDONED_ROUTE_MS).unref()
  })
}

/**
 * Whether the client went away already: its connection closed while the gate decided (`res` may
 * not be told: its 'close' never comes; `req.destroyed` is no sign, a body parser sets it).
 */
const left = (res: ExpressResponse) => res.closed || res.socket?.destroyed === true

/**
 * Express middleware: a refused request gets its 401/402/403/413/429/503 response; an admitted one
 * continues with `req.tollgate` set and the rate-limit headers on the response.
 *
 * @example
 * app.use('/v1', express.json(), tollgate({ gate, identify: apiKeyIdentity(keys), model: (req) => req.body?.model }))
 */
export function tollgate(options: ExpressTollgateOptions): RequestHandler {
  checkTollgateOptions('tollgate', options)
  return (req, res, next) => {
    const request = toWebRequest(req)
    if (!request) return void send(res, notAUrl()).catch(next)
    handleRequest(request, options, req)
      .then(async (admission) => {
        if (!admission.allowed) return send(res, admission.response)
        // gone while identity or the gate decided: no 'close' will come, and nobody is there to
        // serve, so the route is not called and the hold is returned
        if (left(res)) return admission.tap.end('aborted', 499)
        req.tollgate = admission.handle
        for (const [name, value] of Object.entries(admission.handle.headers)) res.setHeader(name, value)
        watch(req, res, admission.tap)
        next()
      })
      .catch(next)
  }
}

/**
 * A read-only usage endpoint for dashboards (see `usageHandler` in `@tollgate/web`): `GET` answers
 * the caller's own `{ subject, currency, limits }` as JSON, with `Cache-Control: no-store`.
 *
 * @example
 * app.get('/v1/usage', usageRoute(gate, { identify: apiKeyIdentity(keys) }))
 */
export function usageRoute(gate: Tollgate, options: UsageHandlerOptions): RequestHandler {
  const handler = usageHandler(gate, options)
  return (req, res, next) => {
    // CONNECT, TRACE and TRACK (which fetch refuses) are answered 405 like any method but GET/HEAD
    const request = toWebRequest(req, 'DELETE')
    const response = request ? handler(request) : Promise.resolve(notAUrl())
    response.then((answer) => send(res, answer)).catch(next)
  }
}
