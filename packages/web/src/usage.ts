/**
 * A read-only usage endpoint a dashboard can poll: who is asking (the same identity modes as the
 * gated routes), then `gate.usage` for that subject as JSON. A caller only ever sees its own
 * subject; reading another subject's usage needs the explicit `admin` option and its approval.
 */
import type { Attributes, LimitState, Subject, Tollgate } from '@tollgate/core'
import { callHook, fromMicros, TollgateError } from '@tollgate/core'
import { checkHeaderName, forbidden, type Identify, type Identity } from './identity/types.js'
import { checkGate } from './options.js'
import { checkFeature, identifyRequest } from './request.js'
import { errorResponse, plainError, refusalResponse, unavailableResponse } from './responses.js'

/**
 * Cross-origin access for a dashboard served from another origin.
 * @example { origins: ['https://dashboard.example.com'] }
 */
export interface UsageCorsOptions {
  /**
   * Origins allowed to read the endpoint: exact `scheme://host[:port]` strings, or a function
   * deciding per origin. Other origins get no CORS headers (the browser then refuses to hand the
   * response to the page).
   * @example ['https://dashboard.example.com'] or (origin) => origin.endsWith('.example.com')
   */
  origins: readonly string[] | ((origin: string) => boolean)
  /**
   * Send `Access-Control-Allow-Credentials: true`, for an `identify` that reads cookies.
   * @default false
   * @example { origins: ['https://dashboard.example.com'], credentials: true }
   */
  credentials?: boolean
  /**
   * Request headers a preflight may allow (what `identify` reads).
   * @default ['authorization', 'x-api-key', 'x-tollgate-identity', 'x-tollgate-signature']
   * @example ['authorization', 'x-workspace']
   */
  allowHeaders?: readonly string[]
  /**
   * How long a browser may cache a preflight answer, in seconds.
   * @default 600
   * @example 3600
   */
  maxAgeSeconds?: number
}

/** What the `admin` authorization callback is asked to approve. */
export interface UsageAdminRequest {
  /** The request, e.g. to read a session or an admin header. */
  request: Request
  /** The caller, already identified (an unidentified caller never reaches the callback). */
  identity: Identity
  /** The subject the query names (`?subject.team=t1` → `{ team: 't1' }`). */
  subject: Subject
  /** The attributes the query names (`?attributes.plan=pro` → `{ plan: 'pro' }`). */
  attributes: Attributes
}

/**
 * Admin mode: a caller may name the subject to report in the query string
 * (`?subject.tenant=acme&subject.user=u1`, optionally `&attributes.plan=pro` for rules that
 * match on attributes) — only when `authorize` approves.
 * @example { authorize: ({ identity }) => identity.attributes.role === 'admin' }
 */
export interface UsageAdminOptions {
  /**
   * Approve reading the usage of the subject the query names. Only `true` approves; anything else,
   * or a throw (answered 503 and reported to `onError`), refuses. Called only for requests that
   * name a subject; without one the caller sees its own usage.
   * @example ({ identity, subject }) => identity.attributes.role === 'admin' || subject.tenant === identity.subject.tenant
   */
  authorize: (input: UsageAdminRequest) => boolean | Promise<boolean>
}

/** Options of {@link usageHandler}. */
export interface UsageHandlerOptions {
  /**
   * Who the request comes from, as for the gated routes; a refusal answers the same 401/403.
   * @example apiKeyIdentity(keys)
   */
  identify: Identify
  /**
   * Let pages on other origins read the endpoint (and answer their `OPTIONS` preflights). An array
   * is shorthand for `{ origins }`.
   * @default none (no CORS headers; `OPTIONS` answers 405)
   * @example ['https://dashboard.example.com']
   */
  cors?: readonly string[] | UsageCorsOptions
  /**
   * Allow reading other subjects' usage, named in the query string, when `authorize` approves.
   * Without it, a query that names a subject is refused with 403 `subject_not_allowed`.
   * @default none (a caller only ever sees its own subject)
   * @example { authorize: ({ identity }) => identity.attributes.role === 'admin' }
   */
  admin?: UsageAdminOptions
  /**
   * Which limits to report, e.g. to hide shadow rules or rules shared by every caller.
   * @default every limit that applies to the subject
   * @example (limit) => !limit.shadow
   */
  include?: (limit: LimitState) => boolean
  /**
   * Called with errors nobody awaits: an identity lookup or an `authorize` callback that threw, a
   * store that failed (each answered 503).
   * @default none
   * @example (error) => log.error(error)
   */
  onError?: (error: unknown) => void
}

/** One limit in a usage report: every field `gate.usage` returns, plus money in currency units. */
export type UsageLimit = LimitState & {
  /** For `cost` limits: `limit` in currency units (the counters hold micro-units). */
  limitAmount?: number
  /** For `cost` limits: `used` in currency units. */
  usedAmount?: number
  /** For `cost` limits: `held` in currency units. */
  heldAmount?: number
  /** For `cost` limits: `remaining` in currency units. */
  remainingAmount?: number
  /** Any other field `gate.usage` returns is passed through unchanged. */
  [field: string]: unknown
}

/** The JSON body of a usage report. */
export interface UsageReport {
  /** The subject reported: the caller's own, or (admin mode) the one the query names. */
  subject: Subject
  /** The policy's currency (ISO 4217), for `cost` limits. */
  currency: string
  /** Each limit that applies to the subject (for the query's model and feature when given). */
  limits: UsageLimit[]
}

const METHODS = 'GET, HEAD'
const DEFAULT_ALLOW_HEADERS = ['authorization', 'x-api-key', 'x-tollgate-identity', 'x-tollgate-signature']
/** `LimitState` fields of a `cost` limit (micro-units) that get a `…Amount` twin in currency units. */
const MONEY_FIELDS = ['limit', 'used', 'held', 'remaining', 'projected'] as const

type Cors = Required<UsageCorsOptions>

/**
 * The CORS option, checked when the handler is made: a mistake in it (origins that are no list,
 * a header name no request can carry) failed every request with a `TypeError`.
 */
function corsOf(option: UsageHandlerOptions['cors']): Cors | null {
  if (option === undefined) return null
  const cors: UsageCorsOptions = Array.isArray(option)
    ? { origins: option as readonly string[] }
    : (option as UsageCorsOptions)
  const refuse = (what: string) => {
    throw new TypeError(`usageHandler: cors ${what}`)
  }
  if (typeof cors !== 'object' || cors === null) refuse('must be a list of origins or { origins, … }')
  const { origins, credentials, allowHeaders, maxAgeSeconds } = cors
  if (
    typeof origins !== 'function' &&
    !(Array.isArray(origins) && origins.every((o) => typeof o === 'string' && o !== ''))
  )
    refuse('origins must be a list of origins (strings) or a function of the origin')
  if (credentials !== undefined && typeof credentials !== 'boolean')
    refuse('credentials must be true or false')
  if (allowHeaders !== undefined) {
    if (!Array.isArray(allowHeaders)) refuse('allowHeaders must be a list of header names')
    for (const name of allowHeaders) checkHeaderName('usageHandler', 'cors.allowHeaders', name)
  }
  if (maxAgeSeconds !== undefined && !(Number.isSafeInteger(maxAgeSeconds) && maxAgeSeconds >= 0))
    refuse('maxAgeSeconds must be a whole number of seconds, 0 or more')
  return {
    origins: cors.origins,
    credentials: cors.credentials ?? false,
    allowHeaders: cors.allowHeaders ?? DEFAULT_ALLOW_HEADERS,
    maxAgeSeconds: cors.maxAgeSeconds ?? 600,
  }
}

function allowedOrigin(cors: Cors, origin: string | null): string | null {
  if (!origin) return null
  const ok = typeof cors.origins === 'function' ? cors.origins(origin) : cors.origins.includes(origin)
  return ok === true ? origin : null
}

/** The limit with `…Amount` fields in currency units when it counts money. */
function withAmounts(limit: LimitState): UsageLimit {
  const out: UsageLimit = { ...limit }
  if (limit.metric !== 'cost') return out
  for (const field of MONEY_FIELDS) {
    const value = (limit as unknown as Record<string, unknown>)[field]
    if (typeof value === 'number' && Number.isFinite(value)) out[`${field}Amount`] = fromMicros(value)
  }
  return out
}

type Query = { subject: Record<string, string>; attributes: Record<string, string>; named: boolean }

/** `subject.<dimension>` and `attributes.<name>` parameters; `null` when one is empty, repeated or `__proto__`. */
function adminQuery(params: URLSearchParams): Query | null {
  const query: Query = { subject: {}, attributes: {}, named: false }
  for (const [name, value] of params) {
    const [prefix, field] = name.startsWith('subject.')
      ? (['subject', name.slice(8)] as const)
      : name.startsWith('attributes.')
        ? (['attributes', name.slice(11)] as const)
        : [null, '']
    if (prefix === null) continue
    query.named = true
    const target = query[prefix]
    if (field === '' || field === '__proto__' || value === '' || Object.hasOwn(target, field)) return null
    target[field] = value
  }
  return query
}

/**
 * A read-only usage endpoint: `(request) => Promise<Response>`. `GET` (or `HEAD`) answers
 * `{ subject, currency, limits }` from `gate.usage` for the caller's own subject, with
 * `Cache-Control: no-store`; `?model=` and `?feature=` select the rules that apply to that model
 * and feature. No identity → the same 401/403 as the gated routes; another method → 405.
 *
 * @example
 * const usage = usageHandler(gate, { identify: apiKeyIdentity(keys), cors: ['https://dash.example.com'] })
 * Bun.serve({ fetch: (request) => (new URL(request.url).pathname === '/v1/usage' ? usage(request) : route(request)) })
 */
export function usageHandler(
  gate: Tollgate,
  options: UsageHandlerOptions,
): (request: Request) => Promise<Response> {
  checkGate('usageHandler', gate)
  if (typeof options?.identify !== 'function')
    throw new TypeError(
      'usageHandler: identify must be a function (apiKeyIdentity, signedIdentity, headerIdentity or your own)',
    )
  const cors = corsOf(options.cors)
  if (options.admin !== undefined && typeof options.admin?.authorize !== 'function')
    throw new TypeError('usageHandler: admin must be { authorize: (request) => boolean }')
  for (const name of ['include', 'onError'] as const)
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw new TypeError(`usageHandler: ${name} must be a function`)

  async function answer(request: Request, origin: string | null): Promise<Response> {
    const method = request.method.toUpperCase()
    if (method === 'OPTIONS' && cors) {
      if (!origin) return plainError(403, 'cors_origin_not_allowed', 'This origin may not read usage.', false)
      return new Response(null, {
        status: 204,
        headers: {
          'access-control-allow-methods': METHODS,
          'access-control-allow-headers': cors.allowHeaders.join(', '),
          'access-control-max-age': String(cors.maxAgeSeconds),
        },
      })
    }
    if (method !== 'GET' && method !== 'HEAD') {
      const response = plainError(405, 'method_not_allowed', `Usage is read with GET, not ${method}.`, false)
      response.headers.set('allow', cors ? `${METHODS}, OPTIONS` : METHODS)
      return response
    }
    const identified = await identifyRequest(request, options.identify, options.onError)
    if (!identified.ok) return identified.response
    const { identity } = identified
    const params = new URL(request.url).searchParams
    const model = params.get('model') || undefined
    const feature = params.get('feature') || undefined
    const query = adminQuery(params)
    if (!query)
      return plainError(
        400,
        'invalid_request',
        'Each subject.* and attributes.* parameter needs one non-empty value.',
        false,
      )
    let subject: Subject = identity.subject
    let attributes: Attributes = identity.attributes
    if (query.named) {
      if (!options.admin)
        return refusalResponse(forbidden('subject_not_allowed', 'You may only read your own usage.'))
      if (Object.keys(query.subject).length === 0)
        return plainError(
          400,
          'invalid_request',
          'Name the subject to report with subject.<dimension>=<id>.',
          false,
        )
      let approved: boolean
      try {
        approved =
          (await options.admin.authorize({
            request,
            identity,
            subject: query.subject,
            attributes: query.attributes,
          })) === true
      } catch (error) {
        callHook(options.onError, error)
        return unavailableResponse()
      }
      if (!approved)
        return refusalResponse(forbidden('subject_not_allowed', "You may not read this subject's usage."))
      subject = query.subject
      attributes = query.attributes
    } else {
      const refusal = checkFeature(identity, feature)
      if (refusal) return refusal
    }
    let limits: LimitState[]
    try {
      limits = await gate.usage({ subject, attributes, model, feature })
    } catch (error) {
      // bad input (an id too long, an unknown dimension) says why; a store failure says no more
      if (TollgateError.isInstance(error) && error.status < 500) return errorResponse(error)
      callHook(options.onError, error)
      return plainError(503, 'store_unavailable', 'Usage could not be read; try again shortly.', true)
    }
    if (options.include) limits = limits.filter(options.include)
    const report: UsageReport = {
      subject,
      currency: gate.policy.currency,
      limits: limits.map(withAmounts),
    }
    const response = Response.json(report)
    return method === 'HEAD' ? new Response(null, { headers: response.headers }) : response
  }

  return async (request) => {
    const origin = cors ? allowedOrigin(cors, request.headers.get('origin')) : null
    const response = await answer(request, origin)
    const headers = new Headers(response.headers)
    headers.set('cache-control', 'no-store')
    if (cors) {
      headers.append('vary', 'Origin')
      if (origin) {
        headers.set('access-control-allow-origin', origin)
        if (cors.credentials) headers.set('access-control-allow-credentials', 'true')
      }
    }
    return new Response(response.body, { status: response.status, headers })
  }
}
