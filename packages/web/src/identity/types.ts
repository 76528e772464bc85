/**
 * What an identity mode answers: who the request comes from, or why it has no identity.
 */
import type { Attributes, Subject } from '@tollgate/core'

/** Who a request comes from, established from a trusted source (SPEC §9). */
export interface Identity {
  ok: true
  /** Dimension → id, e.g. `{ tenant: 'acme', project: 'chatbot', key: 'key_…' }`. Never empty. */
  subject: Subject
  /** Plan, environment and any attribute rules match on. */
  attributes: Attributes
  /** Features this identity may use; `undefined` allows every feature. */
  features?: readonly string[]
}

/** Why a request has no identity; sent as a 401 or 403 with an OpenAI-shaped body. */
export interface IdentityRefusal {
  ok: false
  /**
   * `unauthenticated` (401): no credential, a bad, stale or replayed signature, an expired token,
   * an unknown key. `key_expired` (401): a key past its `expiresAt`. `key_rotated` (401): a key
   * replaced by `rotate` whose grace period is over. `key_revoked` (403): a key that was revoked.
   * `feature_not_allowed` (403): the key may not use this route's feature.
   */
  code:
    | 'unauthenticated'
    | 'key_expired'
    | 'key_rotated'
    | 'key_revoked'
    | 'feature_not_allowed'
    | (string & {})
  /** HTTP status: 401 or 403. */
  status: number
  message: string
}

/** What an `identify` function answers: an identity, or why there is none. */
export type IdentityResult = Identity | IdentityRefusal

/**
 * Resolves the identity of a web `Request`. Built-in modes: `apiKeyIdentity`, `signedIdentity`,
 * `headerIdentity`; any function of this shape works.
 *
 * @example
 * const identify: Identify = async (request) =>
 *   (await mySession(request)) ? identified({ user: 'u1' }) : unauthenticated('Log in first.')
 */
export type Identify = (request: Request) => IdentityResult | Promise<IdentityResult>

/** An identity. */
export function identified(
  subject: Subject,
  attributes: Attributes = {},
  features?: readonly string[],
): Identity {
  return features === undefined
    ? { ok: true, subject, attributes }
    : { ok: true, subject, attributes, features }
}

/** A 401 refusal. */
export function unauthenticated(message: string): IdentityRefusal {
  return { ok: false, code: 'unauthenticated', status: 401, message }
}

/** A 403 refusal. */
export function forbidden(code: string, message: string): IdentityRefusal {
  return { ok: false, code, status: 403, message }
}

/** True when every dimension has a non-empty id and there is at least one: no shared anonymous bucket. */
export function isUsableSubject(subject: unknown): subject is Subject {
  if (typeof subject !== 'object' || subject === null) return false
  const entries = Object.entries(subject)
  return entries.length > 0 && entries.every(([, id]) => typeof id === 'string' && id.length > 0)
}

/**
 * The credential in `header`: for `authorization`, the token of a `Bearer` scheme; for any other
 * header, its trimmed value. `null` when absent or empty.
 */
export function credential(request: Request, header: string): string | null {
  const raw = request.headers.get(header)?.trim()
  if (!raw) return null
  if (header.toLowerCase() !== 'authorization') return raw
  const match = /^Bearer[ \t]+(\S+)$/i.exec(raw)
  return match ? match[1]! : null
}

/** An HTTP field name (RFC 9110 token), as `Headers` accepts one. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Throws a `TypeError` naming `who` and `option` when `name` is no header name a request can carry. */
export function checkHeaderName(who: string, option: string, name: unknown): void {
  if (typeof name !== 'string' || !HEADER_NAME.test(name))
    throw new TypeError(
      `${who}: ${option} must be a header name (letters, digits and !#$%&'*+.^_\`|~-), got ${typeof name === 'string' ? JSON.stringify(name) : typeof name}`,
    )
}
