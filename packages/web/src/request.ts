/**
 * From a web `Request` to an admission: resolve identity, reserve, and either refuse with a
 * `Response` or hand back the request's hold. Every adapter calls this once per request.
 */
import type { DeniedDecision, Estimate, Tollgate } from '@tollgate/core'
import { callHook, TollgateError } from '@tollgate/core'
import { createHandle, type ResponseTap, type SettleEvent, type TollgateHandle } from './handle.js'
import {
  forbidden,
  type Identify,
  type Identity,
  type IdentityResult,
  isUsableSubject,
  unauthenticated,
} from './identity/types.js'
import type { StreamMeter } from './meter.js'
import {
  denialResponse,
  errorResponse,
  type HeaderConfig,
  refusalResponse,
  selectHeaders,
  unavailableResponse,
} from './responses.js'

/** A value, or a function of the framework's request (Express `req`, Hono `c`, a web `Request`). */
export type FromRequest<T, In> = T | ((input: In) => T | Promise<T>)

/** Options shared by every adapter. `In` is what the value functions receive. */
export interface TollgateOptions<In = Request> {
  /** The gate to reserve on. @example createTollgate({ policy, store: redisStore({ client }) }) */
  gate: Tollgate
  /**
   * Who the request comes from. A refusal answers 401/403; there is no anonymous fallback.
   * @example apiKeyIdentity(keys)
   */
  identify: Identify
  /** Model the request will call. @default none @example (req) => req.body.model */
  model?: FromRequest<string | undefined, In>
  /** Product feature the route serves (also checked against a key's allowed features). @default none @example 'chat' */
  feature?: FromRequest<string | undefined, In>
  /**
   * What the call is expected to use; absent amounts keep the engine's defaults.
   * @default {} (1 request, the policy's default output tokens)
   * @example (req) => estimateChatCompletion(req.body)
   */
  estimate?: FromRequest<Estimate | undefined, In>
  /**
   * Which rate-limit headers to send on every response; `false` for none.
   * @default { ietf: true, openai: true }
   * @example { openai: false }
   */
  headers?: HeaderConfig
  /**
   * A meter for the response body, so that a stream ended early is settled from what was sent.
   * Made once the request is admitted; a factory that throws releases the reservation and the
   * error reaches the caller (the adapters answer 500).
   * @default none (a body that was sent settles the estimate)
   * @example () => sseMeter(chatCompletionMeter('o200k_base'))
   */
  meter?: (input: In) => StreamMeter | undefined
  /** Called once per admitted request, when its hold is settled or released. @default none @example (e) => log.info(e.outcome, e.reason) */
  onSettle?: (event: SettleEvent) => void
  /** Called with errors nobody awaits: an identity lookup that failed (answered 503), a settle at the end of a response. @default none @example (error) => log.error(error) */
  onError?: (error: unknown) => void
}

/** A request admitted: its hold, and the tap adapters feed with the response. */
export interface Admitted {
  allowed: true
  handle: TollgateHandle
  tap: ResponseTap
}

/** A request refused: the response to send. `decision` is set when a limit refused it. */
export interface Refused {
  allowed: false
  response: Response
  decision?: DeniedDecision
}

export type Admission = Admitted | Refused

async function resolve<T, In>(value: FromRequest<T, In> | undefined, input: In): Promise<T | undefined> {
  return typeof value === 'function' ? (value as (input: In) => T | Promise<T>)(input) : value
}

/**
 * The identity of a request, or the response that refuses it: 503 when `identify` throws (reported
 * to `onError`: identity fails closed), 401/403 when it refuses, 401 when the subject is empty.
 * Every route that needs an identity (the gated routes, the usage endpoint) goes through this.
 */
export async function identifyRequest(
  request: Request,
  identify: Identify,
  onError?: (error: unknown) => void,
): Promise<{ ok: true; identity: Identity } | { ok: false; response: Response }> {
  let identity: IdentityResult
  try {
    identity = await identify(request)
  } catch (error) {
    callHook(onError, error)
    return { ok: false, response: unavailableResponse() }
  }
  // an `identify` of your own that returns nothing, or a malformed result, is a bug: fail closed
  const problem = malformed(identity)
  if (problem) {
    callHook(onError, new TypeError(`identify must return an identity or a refusal: ${problem}`))
    return { ok: false, response: unavailableResponse() }
  }
  if (!identity.ok) return { ok: false, response: refusalResponse(identity) }
  if (!isUsableSubject(identity.subject))
    return { ok: false, response: refusalResponse(unauthenticated('The identity names no subject.')) }
  return { ok: true, identity }
}

/** What is wrong with the shape of an `identify` result (`identified(…)`, `unauthenticated(…)`), or `undefined`. */
function malformed(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null) return `got ${result === null ? 'null' : typeof result}`
  const r = result as Record<string, unknown>
  if (r.ok === false)
    return r.status === 401 || r.status === 403
      ? typeof r.code === 'string' && typeof r.message === 'string'
        ? undefined
        : 'a refusal has a string code and message'
      : 'a refusal has status 401 or 403'
  if (r.ok !== true) return 'ok must be true or false'
  if (r.attributes !== undefined && (typeof r.attributes !== 'object' || r.attributes === null))
    return 'attributes must be an object'
  if (
    r.features !== undefined &&
    !(Array.isArray(r.features) && r.features.every((f) => typeof f === 'string'))
  )
    return 'features must be a list of strings'
  return undefined
}

/** The 403 `feature_not_allowed` response when the identity may not use `feature`, else `null`. */
export function checkFeature(identity: Identity, feature: string | undefined): Response | null {
  // a feature that is no string (app code may return anything) is the gate's to refuse, with 400
  if (identity.features && typeof feature === 'string' && !identity.features.includes(feature))
    return refusalResponse(forbidden('feature_not_allowed', `This key may not use the feature "${feature}".`))
  return null
}

const refused = (response: Response, decision?: DeniedDecision): Refused =>
  decision ? { allowed: false, response, decision } : { allowed: false, response }

/**
 * Identify, reserve, and answer: a refusal `Response`, or the request's hold.
 * `input` is what value functions receive (default: the `Request`).
 *
 * @example
 * const admission = await handleRequest(request, { gate, identify: apiKeyIdentity(keys) })
 * if (!admission.allowed) return admission.response
 * const response = await callModel(admission.handle)
 * return finishResponse(admission, response, request.method)
 */
export async function handleRequest<In = Request>(
  request: Request,
  options: TollgateOptions<In>,
  input: In = request as unknown as In,
): Promise<Admission> {
  const identified = await identifyRequest(request, options.identify, options.onError)
  if (!identified.ok) return refused(identified.response)
  const { identity } = identified
  let values: [string | undefined, string | undefined, Estimate | undefined]
  try {
    values = await Promise.all([
      resolve(options.model, input),
      resolve(options.feature, input),
      resolve(options.estimate, input),
    ])
  } catch (error) {
    // a value function that throws reads the request, mostly its body (`req.body.model` with no
    // JSON body): a 400 the client can act on, the error to `onError` (it was a 500 with a stack)
    callHook(options.onError, error)
    return refused(
      errorResponse(
        new TollgateError(
          'invalid_request',
          'The request could not be read for its model, feature or estimate.',
        ),
      ),
    )
  }
  const [model, feature, estimate] = values
  const featureRefusal = checkFeature(identity, feature)
  if (featureRefusal) return refused(featureRefusal)
  const { subject, attributes } = identity
  let decision: Awaited<ReturnType<Tollgate['reserve']>>
  try {
    decision = await options.gate.reserve({ subject, attributes, model, feature, estimate })
  } catch (error) {
    if (TollgateError.isInstance(error)) return refused(errorResponse(error))
    throw error
  }
  if (!decision.allowed) return refused(denialResponse(decision, options.headers), decision)
  let meter: ReturnType<NonNullable<TollgateOptions['meter']>> | undefined
  try {
    meter = options.meter?.(input)
  } catch (error) {
    // the route never runs: its hold goes back now (it stayed held until its TTL), and the
    // factory's error goes on to the caller; a release that fails too is told to onError
    await options.gate.release(decision.id).catch((failure: unknown) => callHook(options.onError, failure))
    throw error
  }
  const { handle, tap } = createHandle({
    gate: options.gate,
    decision,
    subject,
    attributes,
    feature,
    estimate: estimate ?? {},
    headers: selectHeaders(decision.headers, options.headers),
    meter,
    signal: request.signal,
    onSettle: options.onSettle,
    onError: options.onError,
  })
  return { allowed: true, handle, tap }
}

const bodies = new WeakMap<Request, Promise<unknown>>()

/**
 * The JSON body of a request, read once from a clone (the route can still read the body) and
 * remembered; `undefined` when it is not JSON.
 *
 * @example
 * withTollgate(handler, { gate, identify, model: async (req) => ((await readJson(req)) as { model?: string })?.model })
 */
export function readJson(request: Request): Promise<unknown> {
  let body = bodies.get(request)
  if (!body) {
    body = request
      .clone()
      .json()
      .catch(() => undefined)
    bodies.set(request, body)
  }
  return body
}
