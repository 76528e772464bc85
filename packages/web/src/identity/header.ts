/**
 * Identity from plain request headers: the weakest mode. Anyone who can reach the server can
 * send any header, so this is only for traffic that already passed a trusted gateway which
 * strips and sets these headers itself. It must be opted into with `trusted: true`.
 */
import type { Attributes } from '@tollgate/core'
import { checkHeaderName, type Identify, identified, unauthenticated } from './types.js'

/** Options of {@link headerIdentity}. */
export interface HeaderIdentityOptions {
  /**
   * Required, and must be `true`: you state that every request reaches this server through a
   * gateway that removes these headers from client requests and sets them itself.
   * @example true
   */
  trusted: true
  /**
   * Subject dimension → header name. Every header must be present and non-empty.
   * @example { tenant: 'x-tenant-id', user: 'x-user-id' }
   */
  headers: Readonly<Record<string, string>>
  /**
   * Attribute → header name; absent headers are left out.
   * @default {}
   * @example { plan: 'x-plan' }
   */
  attributes?: Readonly<Record<string, string>>
}

/**
 * Identity read from headers set by a trusted upstream. Weak: see the module comment and
 * `docs/identity.md`. A missing header is refused with 401, never counted in a shared bucket.
 *
 * @example
 * headerIdentity({ trusted: true, headers: { tenant: 'x-tenant-id', user: 'x-user-id' } })
 */
export function headerIdentity(options: HeaderIdentityOptions): Identify {
  if (options?.trusted !== true)
    throw new TypeError(
      'headerIdentity trusts plain headers: pass { trusted: true } to opt in (see docs/identity.md)',
    )
  const dims = Object.entries(options.headers ?? {})
  if (dims.length === 0) throw new TypeError('headerIdentity needs at least one subject header')
  const attrs = Object.entries(options.attributes ?? {})
  for (const [name, header] of dims) checkHeaderName('headerIdentity', `headers.${name}`, header)
  for (const [name, header] of attrs) checkHeaderName('headerIdentity', `attributes.${name}`, header)
  return (request) => {
    const subject: Record<string, string> = {}
    for (const [dimension, header] of dims) {
      const value = request.headers.get(header)?.trim()
      if (!value) return unauthenticated(`Missing identity header "${header}".`)
      subject[dimension] = value
    }
    const attributes: Record<string, Attributes[string]> = {}
    for (const [name, header] of attrs) {
      const value = request.headers.get(header)?.trim()
      if (value) attributes[name] = value
    }
    return identified(subject, attributes)
  }
}
