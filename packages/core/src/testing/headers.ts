/**
 * Test helpers for adapters: a strict parser for the RFC 9651 subset that
 * draft-ietf-httpapi-ratelimit-headers-11 uses (an sf-list of sf-string items with sf-integer or
 * sf-string parameters), and a vitest check of every rate-limit and retry header's syntax.
 */
import { expect } from 'vitest'

type ParamValue = number | string
export interface Member {
  name: string
  params: Record<string, ParamValue>
}

export function parseSfList(input: string): Member[] {
  if (!/^[\x20-\x7e\t]*$/.test(input)) throw new Error('field value has invalid characters')
  let pos = 0
  const src = input.replace(/^ +| +$/g, '')
  const fail = (why: string): never => {
    throw new Error(`${why} at ${pos} in ${JSON.stringify(src)}`)
  }
  const peek = () => src[pos]
  const ows = () => {
    while (peek() === ' ' || peek() === '\t') pos++
  }
  const parseString = (): string => {
    if (peek() !== '"') fail('expected sf-string')
    pos++
    let out = ''
    for (;;) {
      const ch = src[pos++]
      if (ch === undefined) fail('unterminated sf-string')
      if (ch === '"') return out
      if (ch === '\\') {
        const next = src[pos++]
        if (next !== '"' && next !== '\\') fail('bad escape in sf-string')
        out += next
      } else {
        const c = ch!.charCodeAt(0)
        if (c < 0x20 || c > 0x7e) fail('bad character in sf-string')
        out += ch
      }
    }
  }
  const parseInteger = (): number => {
    const m = /^-?[0-9]{1,15}(?![0-9.])/.exec(src.slice(pos))
    if (!m) fail('expected sf-integer')
    pos += m![0].length
    return Number(m![0])
  }
  const parseKey = (): string => {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(src.slice(pos))
    if (!m) fail('expected lowercase key')
    pos += m![0].length
    return m![0]
  }
  const parseParams = (): Record<string, ParamValue> => {
    const params: Record<string, ParamValue> = {}
    while (peek() === ';') {
      pos++
      while (peek() === ' ') pos++
      const key = parseKey()
      if (key in params) fail(`duplicate parameter ${key}`)
      if (peek() !== '=') fail(`parameter ${key} has no value`)
      pos++
      params[key] = peek() === '"' ? parseString() : parseInteger()
    }
    return params
  }
  const members: Member[] = []
  if (src === '') fail('empty list')
  for (;;) {
    const name = parseString()
    members.push({ name, params: parseParams() })
    ows()
    if (pos === src.length) return members
    if (peek() !== ',') fail('expected ","')
    pos++
    ows()
    if (pos === src.length) fail('trailing comma')
  }
}

/** Reads a header from a `Headers` or a plain (Node) header object. */
type HeaderSource = Headers | Record<string, string | string[] | number | undefined>
const get = (headers: HeaderSource, name: string): string | undefined => {
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  const value = headers[name]
  return value === undefined ? undefined : String(value)
}

/**
 * Checks the IETF fields against the draft-11 grammar (same names in both, `q`/`w`/`qu` and `r`/`t`
 * parameters, non-negative sf-integers), the OpenAI values, and the retry headers when present.
 * Returns the parsed IETF lists.
 */
export function checkRateLimitHeaders(headers: HeaderSource): { policy: Member[]; current: Member[] } {
  const policy = parseSfList(get(headers, 'ratelimit-policy')!)
  const current = parseSfList(get(headers, 'ratelimit')!)
  expect(current.map((m) => m.name)).toEqual(policy.map((m) => m.name))
  for (const { params } of policy) {
    expect(Object.keys(params).every((k) => ['q', 'w', 'qu'].includes(k))).toBe(true)
    expect(Number.isSafeInteger(params.q) && (params.q as number) >= 0).toBe(true)
    if ('w' in params) expect(Number.isSafeInteger(params.w) && (params.w as number) > 0).toBe(true)
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
