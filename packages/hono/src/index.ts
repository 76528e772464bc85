/**
 * @tollgate/hono — Hono middleware over `@tollgate/web`: identify, reserve, refuse or expose the
 * hold as `c.get('tollgate')` (typed through Hono's `Variables`), put rate-limit headers on the
 * response, and settle when its body ends, fails or is cancelled by a disconnecting client.
 *
 * @example
 * import { tollgate, type TollgateEnv } from '@tollgate/hono'
 * const app = new Hono<TollgateEnv>()
 * app.post('/chat', tollgate({ gate, identify: apiKeyIdentity(keys) }), (c) => c.json(chat(c.get('tollgate').model)))
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
import type { Context, Handler, MiddlewareHandler } from 'hono'

/** Variables the middleware sets; merge into your app's `Env`. */
export interface TollgateVariables {
  /** The hold Tollgate placed for this request. */
  tollgate: TollgateHandle
}

/** An `Env` with the Tollgate variables: `new Hono<TollgateEnv>()`. */
export interface TollgateEnv {
  Variables: TollgateVariables
}

/** Options of {@link tollgate}: value functions receive Hono's `Context`. */
export type HonoTollgateOptions = TollgateOptions<Context>

/**
 * Hono middleware: a refused request gets its 401/402/403/413/429/503 response; an admitted one
 * continues with `c.get('tollgate')` set. The body of the route's response is watched to settle.
 * A route that answers nothing (a forgotten `return`) is left to Hono, which reports it as behind
 * any middleware (an `Error` to `app.onError`, 500); its hold is closed as a failed call.
 *
 * @example
 * app.use('/v1/*', tollgate({ gate, identify, model: async (c) => (await c.req.json()).model }))
 */
export function tollgate(options: HonoTollgateOptions): MiddlewareHandler<TollgateEnv> {
  checkTollgateOptions('tollgate', options)
  return async (c, next) => {
    const admission = await handleRequest(c.req.raw, options, c as Context)
    if (!admission.allowed) return admission.response
    c.set('tollgate', admission.handle)
    try {
      await next()
    } catch (error) {
      await admission.tap.end('failed', 500)
      throw error
    }
    if (!c.finalized) {
      // The route answered nothing (a forgotten `return`): `c.res` is only Hono's placeholder, and
      // setting it sent a silent `200 ""`. Left unset, Hono reports the mistake as it does behind
      // any middleware ("Context is not finalized…", to `app.onError`, 500); the route may have
      // called the model, so the hold closes as a failed call (what it reported is settled).
      await admission.tap.end('failed', 500)
      return
    }
    c.res = finishResponse(admission, c.res, c.req.method)
  }
}

/**
 * A read-only usage endpoint for dashboards (see `usageHandler` in `@tollgate/web`): `GET` answers
 * the caller's own `{ subject, currency, limits }` as JSON, with `Cache-Control: no-store`.
 *
 * @example
 * app.get('/v1/usage', usageRoute(gate, { identify: apiKeyIdentity(keys) }))
 */
export function usageRoute(gate: Tollgate, options: UsageHandlerOptions): Handler {
  const handler = usageHandler(gate, options)
  return (c) => handler(c.req.raw)
}
