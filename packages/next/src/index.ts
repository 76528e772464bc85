/**
 * @tollgate/next — `withTollgate` for Next.js App Router route handlers over `@tollgate/web`:
 * identify, reserve, refuse or pass the hold as `context.tollgate`, put rate-limit headers on the
 * response, and settle when its body ends, fails or is cancelled by a disconnecting client.
 * For the Node.js runtime; see docs/adapters.md for the Edge runtime.
 *
 * @example
 * // app/api/chat/route.ts
 * export const POST = withTollgate(async (request, { tollgate }) => Response.json(await chat(tollgate.model)), {
 *   gate,
 *   identify: apiKeyIdentity(keys),
 * })
 */
import type { Tollgate } from '@tollgate/core'
import {
  checkTollgateOptions,
  finishResponse,
  handleRequest,
  type TollgateHandle,
  type TollgateOptions,
  type UsageHandlerOptions,
  usageHandler,
} from '@tollgate/web'
import type { NextRequest } from 'next/server.js'

/** The context Next.js passes to route handlers (dynamic segments). */
export interface RouteContext<Params = Record<string, string | string[]>> {
  params: Promise<Params>
}

/** A route handler that also receives the request's hold as `context.tollgate`. */
export type TollgateRouteHandler<R extends Request, C> = (
  request: R,
  context: C & { tollgate: TollgateHandle },
) => Response | Promise<Response>

/** Options of {@link withTollgate}: value functions receive the request. */
export type NextTollgateOptions<R extends Request = NextRequest> = TollgateOptions<R>

/**
 * Wrap an App Router route handler. A refused request gets its 401/402/403/413/429/503 response
 * without calling `handler`; a handler that throws releases the hold (or settles what it reported).
 *
 * @example
 * export const POST = withTollgate(handler, { gate, identify, feature: 'chat', model: async (req) => (await readJson(req))?.model })
 */
export function withTollgate<R extends Request = NextRequest, C = RouteContext>(
  handler: TollgateRouteHandler<R, C>,
  options: NextTollgateOptions<R>,
): (request: R, context: C) => Promise<Response> {
  checkTollgateOptions('withTollgate', options)
  // checked now: a handler that is no function placed a hold on every request, then failed it
  if (typeof handler !== 'function') throw new TypeError('withTollgate: the route handler must be a function')
  return async (request, context) => {
    const admission = await handleRequest(request, options, request)
    if (!admission.allowed) return admission.response
    let response: Response
    try {
      response = await handler(request, { ...context, tollgate: admission.handle })
    } catch (error) {
      await admission.tap.end('failed', 500)
      throw error
    }
    return finishResponse(admission, response, request.method)
  }
}

/**
 * A read-only usage endpoint for dashboards, as an App Router route handler (see `usageHandler` in
 * `@tollgate/web`): `GET` answers the caller's own `{ subject, currency, limits }` as JSON, with
 * `Cache-Control: no-store`. With `cors`, export it as `OPTIONS` too, for preflights.
 *
 * @example
 * // app/api/usage/route.ts
 * export const GET = usageRoute(gate, { identify: apiKeyIdentity(keys) })
 */
export function usageRoute<R extends Request = NextRequest>(
  gate: Tollgate,
  options: UsageHandlerOptions,
): (request: R) => Promise<Response> {
  const handler = usageHandler(gate, options)
  return (request) => handler(request)
}
