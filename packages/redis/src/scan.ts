/**
 * `scan`: the counters under a key prefix, for breakdowns (`gate.top`). Finds the counter keys with
 * `SCAN MATCH` (never `KEYS`) on every node that holds data (each master of a Cluster), `COUNT` keys
 * at a time, decodes each back to the engine's counter key and scope, and reads their states through
 * the store's ordinary `read` path (overrides applied), a batch of keys per script call.
 *
 * Cost: SCAN walks the whole keyspace of every node (O(keys), not O(matches)); it is meant for
 * dashboards and operators, never for the hot path.
 */
import { type CounterSpec, type CounterState, type ScannedCounter, unescapeId } from '@tollgate/core'
import type { Cluster, Redis } from 'ioredis'
import type { Within } from './connection.js'
import { decodeId, encodeId } from './keys.js'

/** Keys asked of each `SCAN` call (a hint to Redis: how much of the keyspace one call walks). */
const SCAN_COUNT = 1_000
/** Counters read per script call. */
const READ_BATCH = 200

/** The letter of the key that holds a counter's totals, by window kind (see keys.ts). */
const LETTER = { fixed: 'f', sliding: 's', bucket: 'g', lease: 'm' } as const

/** Escapes what Redis glob patterns treat specially: `*`, `?`, `[`, `]` and `\`. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/** A counter key found by SCAN: its hash tag, the engine's key and, for calendar windows, the window start. */
export interface FoundKey {
  tag: string
  scope: string | undefined
  key: string
  start: number | undefined
}

/**
 * Parses a Redis key of the store's layout, `{prefix}:<letter>:…` or `{prefix:<scope>}:<letter>:…`,
 * with `<start>:` after the letter for calendar windows; `null` for any other key.
 */
export function parseCounterKey(name: string, prefix: string, letter: string): FoundKey | null {
  let tag: string
  let scope: string | undefined
  if (name.startsWith(`{${prefix}}`)) tag = `{${prefix}}`
  else if (name.startsWith(`{${prefix}:`)) {
    const end = name.indexOf('}', prefix.length + 2)
    if (end < 0) return null
    tag = name.slice(0, end + 1)
    scope = unescapeId(tag.slice(prefix.length + 2, -1))
  } else return null
  let at = tag.length
  if (name.slice(at, at + 3) !== `:${letter}:`) return null
  at += 3
  let start: number | undefined
  if (letter === 'f') {
    const colon = name.indexOf(':', at)
    const digits = colon < 0 ? '' : name.slice(at, colon)
    if (!/^-?\d+$/.test(digits)) return null
    start = Number(digits)
    at = colon + 1
  }
  return { tag, scope, key: decodeId(name.slice(at)), start }
}

/** The SCAN pattern of every counter of `prefix` whose key starts with `keyPrefix`, shared or in any tenant's slot. */
export function scanPattern(prefix: string, keyPrefix: string, letter: string): string {
  let encoded = encodeId(keyPrefix)
  // A prefix cut inside a surrogate pair is encoded otherwise than the same pair in a full key.
  if (/%ud[89ab][0-9a-f]{2}$/.test(encoded)) encoded = encoded.replace(/%ud[89ab][0-9a-f]{2}$/, '')
  // `{prefix}` or `{prefix:<scope>}`: the character after the prefix is `}` or `:`.
  return `{${globEscape(prefix)}[}:]*:${letter}:${letter === 'f' ? '*:' : ''}${globEscape(encoded)}*`
}

type ScanClient = Pick<Redis, 'scan'>

export interface ScanDeps {
  client: Redis | Cluster
  isCluster: boolean
  prefix: string
  within: Within
  read(specs: CounterSpec[]): Promise<CounterState[]>
}

/** Lists up to `max` counters under `counter.key` in the window `counter.window` lays out. */
export async function scanCounters(
  { client, isCluster, prefix, within, read }: ScanDeps,
  counter: CounterSpec,
  max: number,
): Promise<ScannedCounter[]> {
  const found: ScannedCounter[] = []
  if (!(max >= 1)) return found
  const letter = LETTER[counter.window.kind]
  const pattern = scanPattern(prefix, counter.key, letter)
  const nodes: ScanClient[] = isCluster ? (client as Cluster).nodes('master') : [client as Redis]
  /** Counters seen (tag and key), and the calendar window starts each has a key for. */
  const seen = new Map<string, Set<number> | null>()

  const readFound = async (keys: FoundKey[]) => {
    for (let i = 0; i < keys.length && found.length < max; i += READ_BATCH) {
      const part = keys.slice(i, i + READ_BATCH)
      const specs = part.map(({ key, scope }): CounterSpec => {
        const spec: CounterSpec = { ...counter, key, amount: 0 }
        if (scope === undefined) delete spec.scope
        else spec.scope = scope
        return spec
      })
      const states = await read(specs)
      part.forEach(({ tag, key, scope }, j) => {
        if (found.length >= max) return
        const state = states[j]!
        // A calendar counter is listed only when it has a window holding the store's time.
        const starts = seen.get(`${tag}\n${key}`)
        if (starts && !starts.has(state.windowStart)) return
        found.push(scope === undefined ? { key, state } : { key, scope, state })
      })
    }
  }

  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, names] = await within(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT))
      cursor = next
      const fresh: FoundKey[] = []
      for (const name of names) {
        const parsed = parseCounterKey(name, prefix, letter)
        if (!parsed?.key.startsWith(counter.key)) continue
        const id = `${parsed.tag}\n${parsed.key}`
        const known = seen.get(id)
        if (known === undefined) {
          seen.set(id, parsed.start === undefined ? null : new Set([parsed.start]))
          fresh.push(parsed)
        } else if (known && parsed.start !== undefined) known.add(parsed.start)
      }
      // Calendar keys of one counter (several windows) may come in different pages: read at the end.
      if (letter !== 'f' && fresh.length > 0) await readFound(fresh)
      if (found.length >= max) return found
    } while (cursor !== '0')
  }
  if (letter === 'f') {
    const all: FoundKey[] = []
    for (const id of seen.keys()) {
      const cut = id.indexOf('\n')
      const tag = id.slice(0, cut)
      const key = id.slice(cut + 1)
      const scope = tag === `{${prefix}}` ? undefined : unescapeId(tag.slice(prefix.length + 2, -1))
      all.push({ tag, scope, key, start: undefined })
    }
    await readFound(all)
  }
  return found
}
