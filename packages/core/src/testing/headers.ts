/**
 * Test helpers for adapters: a strict parser for the RFC 9651 subset that
 * draft-ietf-httpapi-ratelimit-headers-11 uses (an sf-list of sf-string items with sf-integer or
 * sf-string parameters), and a vitest check of every rate-limit and retry header's syntax.
 */
import { expect } from 'vitest'
import { type Member, parseSfList } from './structured-fields.js'

export type { Member, ParamValue } from './structured-fields.js'
export { parseSfList }

/** The quota units draft-11 registers for `qu`. */
const QUOTA_UNITS = ['requests', 'content-bytes', 'concurrent-requests']

/** Response headers: a `Headers` or a plain (Node) header object. */
export type HeaderSource = Headers | Record<string, string | string[] | number | undefined>
const get = (headers: HeaderSource, name: string): string | undefined => {
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  const value = headers[name]
  return value === undefined ? undefined : String(value)
}

/**
 * Checks the IETF fields against the draft-11 grammar (same names in both, `q`/`w`/`qu` and `r`/`t`
 * parameters, non-negative sf-integers, a registered `qu`), the OpenAI values, and the retry
 * headers when present. Returns the parsed IETF lists (empty when neither IETF field is sent, as
 * with every limit in shadow mode or `ietf: false`; one without the other fails). It needs vitest: under `require()` (CommonJS) it throws an error
 * saying to import `@tollgate/core/testing` from an ES module.
 */
export function checkRateLimitHeaders(headers: HeaderSource): { policy: Member[]; current: Member[] } {
  const policyText = get(headers, 'ratelimit-policy')
  const currentText = get(headers, 'ratelimit')
  // neither is fine (every limit in shadow mode, or `ietf: false`); one without the other is not
  expect(
    { ratelimitPolicy: policyText !== undefined, ratelimit: currentText !== undefined },
    'RateLimit-Policy and RateLimit are sent together or not at all',
  ).toEqual({ ratelimitPolicy: currentText !== undefined, ratelimit: policyText !== undefined })
  const policy = policyText === undefined ? [] : parseSfList(policyText)
  const current = currentText === undefined ? [] : parseSfList(currentText)
  expect(current.map((m) => m.name)).toEqual(policy.map((m) => m.name))
  for (const { params } of policy) {
    expect(Object.keys(params).every((k) => ['q', 'w', 'qu'].includes(k))).toBe(true)
    expect(Number.isSafeInteger(params.q) && (params.q as number) >= 0).toBe(true)
    if ('w' in params) expect(Number.isSafeInteger(params.w) && (params.w as number) > 0).toBe(true)
    // the quota units the draft registers
    if ('qu' in params) expect(QUOTA_UNITS).toContain(params.qu)
  }
  for (const { params } of current) {
    expect(Object.keys(params).every((k) => ['r', 't'].includes(k))).toBe(true)
    expect(Number.isSafeInteger(params.r) && (params.r as number) >= 0).toBe(true)
    if ('t' in params) expect(Number.isSafeInteger(params.t) && (params.t as number) >= 0).toBe(true)
  }
  for (const kind of ['limit', 'remaining'])
    for (const metric of ['requests', 'tokens']) {
      const value = get(headers, `x-ratelimit-${kind}-${metric}`)
      if (value !== undefined) expect(value).toMatch(/^(0|[1-9][0-9]{0,14})$/)
    }
  for (const metric of ['requests', 'tokens']) {
    const value = get(headers, `x-ratelimit-reset-${metric}`)
    if (value !== undefined) expect(value).toMatch(/^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$/)
  }
  const retryAfter = get(headers, 'retry-after')
  if (retryAfter !== undefined) expect(retryAfter).toMatch(/^(0|[1-9][0-9]*)$/)
  const retryAfterMs = get(headers, 'retry-after-ms')
  if (retryAfterMs !== undefined) expect(retryAfterMs).toMatch(/^(0|[1-9][0-9]*)$/)
  return { policy, current }
}
