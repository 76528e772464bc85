/**
 * Counter keys. Every id is escaped so that no id, whatever its characters,
 * can collide with another id, another dimension or another rule, or carry a
 * separator (`:`, `=`, `,`, `{`, `}`) into a store's key space.
 */

const safe = /^[A-Za-z0-9_.~-]*$/

/**
 * Escape one key component: characters outside `[A-Za-z0-9_.~-]` become `%` and four
 * hex digits of their UTF-16 code unit. Injective for every string, lone surrogates included.
 */
export function escapeId(id: string): string {
  if (safe.test(id)) return id
  let out = ''
  for (let i = 0; i < id.length; i++) {
    const char = id[i]!
    const code = id.charCodeAt(i)
    const isSafe =
      (code >= 48 && code <= 57) ||
      (code >= 65 && code <= 90) ||
      (code >= 97 && code <= 122) ||
      '_.~-'.includes(char)
    out += isSafe ? char : `%${code.toString(16).padStart(4, '0')}`
  }
  return out
}

/** The partition part of a key: `dim=id,dim=id` in the rule's `per` order, escaped. */
export function partitionKey(
  dimensions: readonly string[],
  subject: Readonly<Record<string, string>>,
): string {
  let out = ''
  for (let i = 0; i < dimensions.length; i++) {
    const dimension = dimensions[i]!
    if (i > 0) out += ','
    out += `${escapeId(dimension)}=${escapeId(subject[dimension]!)}`
  }
  return out
}

/** A counter key: `rule:metric:partition`, every part escaped. */
export function counterKey(rule: string, metric: string, partition: string): string {
  return `${escapeId(rule)}:${escapeId(metric)}:${partition}`
}

/** A block marker for one dimension's id, e.g. the key `key_5f2`. */
export function blockKey(dimension: string, id: string): string {
  return `${escapeId(dimension)}=${escapeId(id)}`
}

/** The inverse of {@link escapeId}. */
export function unescapeId(text: string): string {
  return text.replace(/%([0-9a-f]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

/** The subject a partition key (`dim=id,dim=id`, escaped) names. */
export function parsePartition(key: string): Record<string, string> {
  const partition: Record<string, string> = {}
  if (key === '') return partition
  for (const pair of key.split(',')) {
    const at = pair.indexOf('=')
    partition[unescapeId(pair.slice(0, at))] = unescapeId(pair.slice(at + 1))
  }
  return partition
}
