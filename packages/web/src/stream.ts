/**
 * The end of an admitted request on web `Response`s: rate-limit headers on the response, and its
 * body watched so that the hold is settled when the body ends, fails, or is cancelled because
 * the client went away — streamed (SSE) or not.
 */
import type { ResponseTap, TollgateHandle } from './handle.js'
import { checkTollgateOptions } from './options.js'
import { type Admitted, handleRequest, type TollgateOptions } from './request.js'
import { withHeaders } from './responses.js'

/**
 * `body`, passed through chunk by chunk (pulled only as the consumer reads), telling `tap` what
 * was sent and how the body ended: read to its end, failed, or cancelled by the consumer.
 */
export function tapBody(
  body: ReadableStream<Uint8Array>,
  tap: ResponseTap,
  status: number,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let chunk: Awaited<ReturnType<typeof reader.read>>
        try {
          chunk = await reader.read()
        } catch (error) {
          void tap.end('failed', status)
          controller.error(error)
          return
        }
        if (chunk.done) {
          controller.close()
          void tap.end('complete', status)
          return
        }
        tap.write(chunk.value)
        controller.enqueue(chunk.value)
      },
      async cancel(reason) {
        void tap.end('aborted', status)
        await reader.cancel(reason).catch(() => undefined)
      },
    },
    { highWaterMark: 0 },
  )
}

/**
 * The route's response with the handle's rate-limit headers (headers the route set win), and the
 * hold settled when the body ends. Closed at once when there is no body, or when the status is 400
 * or more and the route reported no usage (released). When the route already settled or released,
 * only the headers are added. For a `HEAD` request (`method`), whose body is never sent (Hono and
 * Next run a `GET` route for it), the body is cancelled and the hold closed at once: settled with
 * what the route reported, else at the estimate below status 400, else released.
 *
 * @example
 * const response = await route(request, admission.handle)
 * return finishResponse(admission, response, request.method)
 */
export function finishResponse(
  admission: Pick<Admitted, 'handle' | 'tap'>,
  response: Response,
  method?: string,
): Response {
  const { handle, tap } = admission
  if (!isResponse(response)) {
    // A route that answered no Response (a bug in it): the call may have run, so the hold closes as
    // a failed call would (released, or settled at what the route reported), never left to its TTL.
    void tap.end('failed', 500)
    throw new TypeError(
      `the route returned ${response === null ? 'null' : typeof response}, not a Response; its Tollgate hold was closed as failed`,
    )
  }
  if (handle.closed) return withHeaders(response, handle.headers)
  if (method === 'HEAD') {
    // nobody reads this body: left tapped, the hold waited for the TTL
    void response.body?.cancel().catch(() => undefined)
    void tap.end('complete', response.status, response.status < 400)
    return withHeaders(new Response(null, response), handle.headers)
  }
  if (!response.body || (response.status >= 400 && !handle.reported)) {
    // nothing to wait for: no body, or an error the route reported no usage for (released at once)
    void tap.end('complete', response.status)
    return withHeaders(response, handle.headers)
  }
  return withHeaders(response, handle.headers, tapBody(response.body, tap, response.status))
}

/** Whether `value` looks like a web `Response` (duck-typed: frameworks may bring their own class). */
function isResponse(value: unknown): value is Response {
  if (typeof value !== 'object' || value === null) return false
  const { status, headers } = value as Partial<Response>
  return typeof status === 'number' && typeof headers?.get === 'function' && 'body' in value
}

/** A handler of web requests that receives the request's hold. */
export type GatedHandler<Args extends unknown[] = []> = (
  request: Request,
  handle: TollgateHandle,
  ...args: Args
) => Response | Promise<Response>

/**
 * A fetch-style handler (`(request) => Response`, as Bun, Deno, Cloudflare Workers and Next.js
 * route handlers use) that identifies, reserves, runs `handler` with the hold, and settles when
 * the response body ends. A handler that throws releases the hold (or settles what it reported).
 *
 * @example
 * export default { fetch: gateFetch(async (request, tollgate) => Response.json(await chat(tollgate.model)), { gate, identify }) }
 */
export function gateFetch<Args extends unknown[] = []>(
  handler: GatedHandler<Args>,
  options: TollgateOptions<Request>,
): (request: Request, ...args: Args) => Promise<Response> {
  checkTollgateOptions('gateFetch', options)
  // checked now: a handler that is no function placed a hold on every request, then failed it
  if (typeof handler !== 'function') throw new TypeError('gateFetch: the handler must be a function')
  return async (request, ...args) => {
    const admission = await handleRequest(request, options)
    if (!admission.allowed) return admission.response
    let response: Response
    try {
      response = await handler(request, admission.handle, ...args)
    } catch (error) {
      await admission.tap.end('failed', 500)
      throw error
    }
    return finishResponse(admission, response, request.method)
  }
}
