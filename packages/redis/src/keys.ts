/**
 * Redis key layout. Every key starts with a hash tag: `{prefix}` for what is shared across
 * tenants (reservations, the expiry index, overrides, blocks, counters without a scope) and
 * `{prefix:scope}` for the counters of one tenant, so that a tenant's counters share a Cluster slot.
 *
 * ```
 * {prefix}:x                        sorted set: open reservation ids by expiry
 * {prefix}:r:<id>                   hash: one reservation (state, expiry, meta, entries)
 * {prefix}:d:<id>                   string: a settled or released reservation's state, for idempotencyMs
 * {prefix}:o:<key>                  string: runtime cap override (permanent until cleared)
 * {prefix}:so:<tag><key>            string: the same, of a counter under a scope (a tenant's)
 * {prefix}:b:<marker>               string: block marker → code (permanent until cleared)
 * <tag>:f:<windowStart>:<key>       hash: calendar / lifetime window (used, held, alerted)
 * <tag>:s:<key>                     hash: rolling window (used, held, alerted, slot → amount, slot → open holds)
 * <tag>:g:<key>                     hash: token bucket (tat, alerted)
 * <tag>:t:<key>                     hash: the throttle companion bucket of a counter
 * <tag>:l:<key> / <tag>:m:<key>     sorted set of lease ids by expiry / hash of lease amounts and totals
 * <tag>:k:<key>                     string: breaker open until (ms)
 * ```
 *
 * `<tag>` is `{prefix}` or `{prefix:<escaped scope>}`. Ids, keys and markers are the last part
 * of their key, so any string is safe there once {@link encodeId} has made it injective in UTF-8.
 */
import { escapeId } from '@tollgate/core'

const UNSAFE = /[%\uD800-\uDFFF]/
const ESCAPE = /%|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
const DECODE = /%(?:25|u([0-9a-f]{4}))/g

/**
 * Makes any string safe to send as a Redis key part: `%` becomes `%25` and a lone surrogate
 * (which UTF-8 cannot carry: ioredis would send U+FFFD for all of them) becomes `%uXXXX`.
 * Everything else is kept as is, so ids stay readable. Injective, and undone by {@link decodeId}.
 */
export function encodeId(text: string): string {
  if (!UNSAFE.test(text)) return text
  return text.replace(ESCAPE, (char) =>
    char === '%' ? '%25' : `%u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** The inverse of {@link encodeId}. */
export function decodeId(text: string): string {
  if (!text.includes('%')) return text
  return text.replace(DECODE, (_, hex: string | undefined) =>
    hex === undefined ? '%' : String.fromCharCode(Number.parseInt(hex, 16)),
  )
}

/** The hash tag of a counter: `{prefix}` without a scope, `{prefix:<scope escaped>}` with one. */
export function tagOf(prefix: string, scope: string | undefined): string {
  return scope === undefined ? `{${prefix}}` : `{${prefix}:${escapeId(scope)}}`
}

/**
 * The name of a counter's runtime cap override, in the shared slot `shared` (`{prefix}`):
 * `{prefix}:o:<key>`, or `{prefix}:so:<tag><key>` for a counter under a scope (its `tag` is not
 * the shared one), so that an override for one tenant's user never caps another tenant's. As
 * `overrideOf` in the scripts' prelude. `key` as sent to Redis ({@link encodeId}); a tag holds no
 * `}` but its last, so the name is unambiguous.
 */
export function overrideKey(shared: string, tag: string, key: string): string {
  return tag === shared ? `${shared}:o:${key}` : `${shared}:so:${tag}${key}`
}

/** Checks a key prefix: non-empty, no braces (they would break the hash tags), no lone surrogate. */
export function checkPrefix(prefix: unknown): string {
  if (
    typeof prefix !== 'string' ||
    prefix.length === 0 ||
    /[{}]/.test(prefix) ||
    encodeId(prefix.replaceAll('%', '')) !== prefix.replaceAll('%', '')
  ) {
    throw new TypeError(
      `redisStore: prefix must be a non-empty string without "{" or "}", got ${typeof prefix === 'string' ? JSON.stringify(prefix) : typeof prefix}`,
    )
  }
  return prefix
}
