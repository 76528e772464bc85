/**
 * HTTP response headers computed from the limits one request matched: the IETF
 * `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-11,
 * Structured Field Lists per RFC 9651), OpenAI-style `x-ratelimit-*` headers, and
 * retry headers for denials. Partition ids are never written to any header.
 */
import type { LimitState } from './decision.js'

/** Which header families to emit. */
export interface HeaderOptions {
  /**
   * IETF `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11).
   * @default true
   * @example createTollgate({ policy, headers: { ietf: false } })
   */
  ietf?: boolean
  /**
   * OpenAI-style `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
   * @default true
   * @example createTollgate({ policy, headers: { openai: false } })
   */
  openai?: boolean
}

/** Largest RFC 9651 sf-integer (15 digits). */
const MAX_SF_INTEGER = 999_999_999_999_999

/** A finite integer in [0, 10^15), rounded down (`up` rounds up); NaN and negatives become 0. */
function int(n: number, up = false): number {
  if (Number.isNaN(n) || n <= 0) return 0
  return Math.min(up ? Math.ceil(n) : Math.floor(n), MAX_SF_INTEGER)
}

/** Milliseconds until `resetAt`, or `null` when it never resets (or is not a finite time). */
function msUntil(resetAt: number | null, now: number): number | null {
  if (resetAt === null || !Number.isFinite(resetAt)) return null
  return Math.max(0, resetAt - now)
}

/** An RFC 9651 sf-string: printable ASCII only, `\` and `"` escaped, anything else `_`. */
function sfString(text: string): string {
  let out = '"'
  for (const ch of text) {
    const c = ch.codePointAt(0)!
    if (ch === '"' || ch === '\\') out += '\\' + ch
    else if (c >= 0x20 && c <= 0x7e) out += ch
    else out += '_'
  }
  return out + '"'
}

/** Fraction of the cap still available; 0 when there is no cap to speak of. */
function ratio(l: LimitState): number {
  const limit = int(l.limit)
  return limit === 0 ? 0 : int(l.remaining) / limit
}

/** The draft-11 quota unit for a metric, or `null` to omit `qu` (default "requests", or no registered unit). */
function quotaUnit(metric: string): string | null {
  return metric === 'concurrency' ? 'concurrent-requests' : null
}

function ietfHeaders(limits: readonly LimitState[], now: number): Record<string, string> {
  const sorted = limits
    .map((l, i) => ({ l, i, r: ratio(l) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((e) => e.l)
  const policy: string[] = []
  const current: string[] = []
  for (const l of sorted) {
    const name = sfString(`${l.rule}.${l.metric}`)
    let p = `${name};q=${int(l.limit)}`
    if (l.windowMs !== null && Number.isFinite(l.windowMs) && l.windowMs > 0) {
      p += `;w=${Math.max(1, int(l.windowMs / 1000, true))}`
    }
    const unit = quotaUnit(l.metric)
    if (unit !== null) p += `;qu=${sfString(unit)}`
    policy.push(p)
    let r = `${name};r=${int(l.remaining)}`
    const wait = msUntil(l.resetAt, now)
    if (wait !== null) r += `;t=${int(wait / 1000, true)}`
    current.push(r)
  }
  return { 'ratelimit-policy': policy.join(', '), ratelimit: current.join(', ') }
}

/** Whether `a` resets after `b` (a limit that never resets, `resetAt: null`, after any). */
function resetsLater(a: LimitState, b: LimitState): boolean {
  if (b.resetAt === null) return false
  return a.resetAt === null || a.resetAt > b.resetAt
}

function openaiTrio(
  out: Record<string, string>,
  suffix: string,
  candidates: readonly LimitState[],
  now: number,
): void {
  // the fewest remaining; of those, the one that resets last (never, for a lifetime limit): when two
  // are used up, waiting for the earlier reset would only meet the other one
  let tightest: LimitState | undefined
  for (const l of candidates) {
    if (tightest === undefined) tightest = l
    else {
      const fewer = int(l.remaining) - int(tightest.remaining)
      if (fewer < 0 || (fewer === 0 && resetsLater(l, tightest))) tightest = l
    }
  }
  if (!tightest) return
  out[`x-ratelimit-limit-${suffix}`] = String(int(tightest.limit))
  out[`x-ratelimit-remaining-${suffix}`] = String(int(tightest.remaining))
  const wait = msUntil(tightest.resetAt, now)
  if (wait !== null) out[`x-ratelimit-reset-${suffix}`] = formatResetDuration(wait)
}

/**
 * Headers for the limits of one decision, at time `now` (ms since epoch). Lower-case header names.
 * Shadow limits are skipped; returns `{}` when none remain. Never includes partition ids.
 *
 * IETF: `ratelimit-policy` (`"rule.metric";q=…;w=…[;qu="concurrent-requests"]`) and `ratelimit`
 * (`"rule.metric";r=…[;t=…]`), most constrained first. OpenAI: the `-requests` trio from the tightest
 * `requests` limit and the `-tokens` trio from the tightest `tokens` limit (else `inputTokens`);
 * the tightest has the fewest remaining and, of limits tied on that, resets last.
 */
export function rateLimitHeaders(
  limits: readonly LimitState[],
  now: number,
  options: HeaderOptions = {},
): Record<string, string> {
  const live = limits.filter((l) => !l.shadow)
  if (live.length === 0) return {}
  const out: Record<string, string> = options.ietf === false ? {} : ietfHeaders(live, now)
  if (options.openai !== false) {
    openaiTrio(
      out,
      'requests',
      live.filter((l) => l.metric === 'requests'),
      now,
    )
    const tokens = live.filter((l) => l.metric === 'tokens')
    openaiTrio(
      out,
      'tokens',
      tokens.length > 0 ? tokens : live.filter((l) => l.metric === 'inputTokens'),
      now,
    )
  }
  return out
}

/**
 * Retry headers for a denial: `retry-after` (whole seconds, rounded up) and `retry-after-ms` when
 * `retryAfterMs` is a finite number; `x-should-retry` is `'true'` or `'false'` from `retryable`.
 */
export function retryHeaders(retryAfterMs: number | null, retryable: boolean): Record<string, string> {
  const out: Record<string, string> = {}
  if (retryAfterMs !== null && Number.isFinite(retryAfterMs)) {
    out['retry-after'] = String(int(retryAfterMs / 1000, true))
    out['retry-after-ms'] = String(int(retryAfterMs, true))
  }
  out['x-should-retry'] = retryable ? 'true' : 'false'
  return out
}

/**
 * OpenAI's reset duration format (Go `time.Duration` style), from ms rounded up to whole ms:
 * `1500` → `'1.5s'`, `61000` → `'1m1s'`, `3600000` → `'1h0m0s'`, `250` → `'250ms'`, `0` → `'0s'`.
 * Negative or non-finite input gives `'0s'`.
 */
export function formatResetDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s'
  const total = Math.ceil(ms)
  if (total < 1000) return `${total}ms`
  const h = Math.floor(total / 3_600_000)
  const m = Math.floor((total % 3_600_000) / 60_000)
  const s = Math.floor((total % 60_000) / 1000)
  const frac = total % 1000
  const sec = frac === 0 ? `${s}` : `${s}.${String(frac).padStart(3, '0').replace(/0+$/, '')}`
  if (h > 0) return `${h}h${m}m${sec}s`
  if (m > 0) return `${m}m${sec}s`
  return `${sec}s`
}
