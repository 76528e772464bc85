/**
 * Decisions to HTTP: the OpenAI-shaped error body, the status of SPEC §4, retry headers so that
 * official SDKs wait when waiting helps and stop when it does not, and the rate-limit headers of
 * SPEC §5 on any response.
 */
import type { DeniedDecision, HeaderOptions, Subject, TollgateError } from '@tollgate/core'
import { retryHeaders } from '@tollgate/core'
import type { IdentityRefusal } from './identity/types.js'

/** The body of every refusal, in the shape OpenAI's SDKs read (`error.message`, `type`, `code`). */
export interface ErrorBody {
  error: {
    message: string
    /** `rate_limit_error`, `insufficient_quota`, `authentication_error`, `permission_error`, `invalid_request_error` or `server_error`. */
    type: string
    /** Reason code, e.g. `rate_limited`, `budget_exceeded`, `key_revoked`. */
    code: string
    param: null
    /** The rule that refused, `null` for identity and input refusals. */
    rule: string | null
    /** The partition of that rule (the caller's own ids), `null` when none. */
    partition: Subject | null
    /** When the binding limit resets (ISO 8601), `null` when waiting does not help. */
    reset_at: string | null
  }
}

/**
 * Which rate-limit headers to send: an object turns families off (`{ openai: false }`), `false`
 * sends none. Only turns off what the gate computed (`createTollgate({ headers })`); retry headers
 * on refusals are always sent.
 * @default { ietf: true, openai: true }
 * @example { ietf: true, openai: false }
 */
export type HeaderConfig = HeaderOptions | false

/** The OpenAI error `type` for a refusal. */
export function errorType(status: number, retryable = false): string {
  if (status === 429) return retryable ? 'rate_limit_error' : 'insufficient_quota'
  if (status === 402) return 'insufficient_quota'
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

const IETF = new Set(['ratelimit', 'ratelimit-policy'])

/** `headers` without the families `config` turns off (retry headers always stay). */
export function selectHeaders(
  headers: Readonly<Record<string, string>>,
  config: HeaderConfig | undefined,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    const keep = IETF.has(name)
      ? config !== false && config?.ietf !== false
      : name.startsWith('x-ratelimit-')
        ? config !== false && config?.openai !== false
        : true
    if (keep) out[name] = value
  }
  return out
}

/** A copy of `response` with `headers` added; headers the response already has are kept as they are. */
export function withHeaders(
  response: Response,
  headers: Readonly<Record<string, string>>,
  body: ReadableStream<Uint8Array> | null = response.body,
): Response {
  const merged = new Headers(response.headers)
  for (const [name, value] of Object.entries(headers)) if (!merged.has(name)) merged.set(name, value)
  return new Response(body, { status: response.status, statusText: response.statusText, headers: merged })
}

function json(status: number, body: ErrorBody, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, 'content-type': 'application/json; charset=utf-8' },
  })
}

/** The OpenAI-shaped body of a denied decision. */
export function denialBody(decision: DeniedDecision): ErrorBody {
  return {
    error: {
      message: decision.message,
      type: errorType(decision.status, decision.retryable),
      code: decision.code,
      param: null,
      rule: decision.rule,
      partition: decision.partition,
      reset_at:
        decision.resetAt !== null && Number.isFinite(decision.resetAt)
          ? new Date(decision.resetAt).toISOString()
          : null,
    },
  }
}

/**
 * The response for a denied decision: its status (SPEC §4), the OpenAI-shaped body, the rate-limit
 * headers `config` keeps, `retry-after` and `retry-after-ms` where waiting helps, and
 * `x-should-retry: false` where it does not.
 *
 * @example
 * const decision = await gate.reserve(request)
 * if (!decision.allowed) return denialResponse(decision)
 */
export function denialResponse(decision: DeniedDecision, config?: HeaderConfig): Response {
  return json(decision.status, denialBody(decision), selectHeaders(decision.headers, config))
}

/** An OpenAI-shaped error without a rule: `x-should-retry` says whether trying again may help. */
export function plainError(status: number, code: string, message: string, retry: boolean): Response {
  const body: ErrorBody = {
    error: {
      message,
      type: errorType(status),
      code,
      param: null,
      rule: null,
      partition: null,
      reset_at: null,
    },
  }
  return json(status, body, retryHeaders(null, retry))
}

/** The 401 or 403 response for a request without a usable identity (`x-should-retry: false`). */
export function refusalResponse(refusal: IdentityRefusal): Response {
  return plainError(refusal.status, refusal.code, refusal.message, false)
}

/** The response for a `TollgateError`: a denial when it carries one, else its status and code. */
export function errorResponse(error: TollgateError): Response {
  if (error.decision) return denialResponse(error.decision)
  return plainError(error.status, error.code, error.message, error.status === 503)
}

/** 503 when identity could not be checked (the key registry's store is down): fail closed. */
export function unavailableResponse(): Response {
  return plainError(503, 'identity_unavailable', 'Identity could not be checked; try again shortly.', true)
}
