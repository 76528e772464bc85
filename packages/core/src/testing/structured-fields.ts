/**
 * A strict parser for the RFC 9651 subset that draft-ietf-httpapi-ratelimit-headers-11 uses (an
 * sf-list of sf-string items with sf-integer or sf-string parameters). It needs no test runner, so
 * the CommonJS entry of `@tollgate/core/testing` has it too.
 */

/** A parameter's value in a structured field: an sf-integer or an sf-string. */
export type ParamValue = number | string
/** One item of a structured-field list: its name (an sf-string) and its parameters. */
export interface Member {
  name: string
  params: Record<string, ParamValue>
}

/**
 * The members of an sf-list of sf-strings with parameters, such as a `RateLimit-Policy` value.
 * Throws an `Error` naming the position of anything the grammar does not allow.
 * @example parseSfList('"default";q=100;w=60') // [{ name: 'default', params: { q: 100, w: 60 } }]
 */
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
