/**
 * Durations in policies: a number of milliseconds or a string such as `'60s'`,
 * `'15m'`, `'1h'`, `'7d'`, `'250ms'`, or a sum such as `'1h30m'`.
 */

const unitMs: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}
const whole = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/
const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g

/** Milliseconds in a duration, or `null` when it is not one. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null
  const total = spanOf(value)
  return total !== null && total > 0 ? total : null
}

/**
 * Milliseconds in a duration string, zero included (`'0s'`: a policy's durations are never zero,
 * a fake clock may well advance by nothing), or `null` when it is not one.
 */
export function spanOf(value: unknown): number | null {
  if (typeof value !== 'string') return null
  const text = value.trim()
  if (!whole.test(text)) return null
  let total = 0
  for (const [, amount, unit] of text.matchAll(part)) total += Number(amount) * (unitMs[unit!] ?? 0)
  total = Math.round(total)
  return Number.isSafeInteger(total) ? total : null
}

/** A rate such as `'50/1m'` or `'10/s'`: `limit` units per `periodMs`. */
export function parseRate(value: string): { limit: number; periodMs: number } | null {
  if (typeof value !== 'string') return null
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(value)
  if (!match) return null
  const limit = Number(match[1])
  const period = /^\d/.test(match[2]!) ? match[2]! : `1${match[2]}`
  const periodMs = parseDuration(period)
  return limit > 0 && Number.isSafeInteger(limit) && periodMs !== null ? { limit, periodMs } : null
}
