/**
 * A bounded cache for the memory store: a Map whose entries carry their own expiry
 * (`forgetAt`, read against the store's clock) and a "seen" bit for CLOCK eviction.
 * Past `max` entries, a sixteenth of them is dropped in one pass, oldest first unless seen since
 * the last pass, which keeps hot counters and costs no reordering on reads.
 *
 * Written here rather than taken from lru-cache: lru-cache costs a reordering on every
 * read and a re-`set` to refresh a TTL, which was a quarter of the hot path in `pnpm bench`.
 */

/** What an entry carries for the cache. */
export interface Expiring {
  /**
   * When the entry may be forgotten (ms since epoch); `Infinity` for never. An entry dropped to
   * keep the bound gets `-Infinity`, so a holder of a reference sees it is no longer the cache's.
   */
  forgetAt: number
  /** Read since the last eviction pass. */
  seen: boolean
}

/**
 * Entries under symbol keys that keep a Map from ever being nearly empty: V8 shrinks a Map's
 * table (a call into the runtime, and a new table) when a delete leaves it under a quarter full,
 * which a cache whose entries come and go one at a time (reservations, settled right after) paid
 * on every delete. With a floor of entries it rehashes only every few dozen inserts instead.
 */
const PADDING = 32
const PAD: Expiring = Object.freeze({ forgetAt: Number.POSITIVE_INFINITY, seen: true })

/** Whether an entry was read since the last pass (its `seen`), clearing it. */
function seenBit(entry: Expiring): boolean {
  const { seen } = entry
  entry.seen = false
  return seen
}

export class ClockCache<V extends Expiring> {
  private readonly map = new Map<string, V>()
  /** Padding entries in `map` (see {@link PADDING}). */
  private readonly padding: number

  /**
   * `padded`: keep {@link PADDING} entries in the Map, for a cache whose entries come and go.
   * `onEvict`: told of each entry dropped to keep the bound (after its `forgetAt` is `-Infinity`).
   * `wasSeen`: whether an entry was read since the last pass, clearing what says so (by default its
   * `seen`), for entries whose readers mark something else of theirs.
   */
  constructor(
    private readonly max: number,
    padded = false,
    private readonly onEvict?: (value: V) => void,
    private readonly wasSeen: (value: V) => boolean = seenBit,
  ) {
    this.padding = padded ? PADDING : 0
    const keys = this.map as unknown as Map<symbol, Expiring>
    for (let i = 0; i < this.padding; i++) keys.set(Symbol('padding'), PAD)
  }

  get size(): number {
    return this.map.size - this.padding
  }

  /** The live entry for `key`, or `undefined` (an expired entry is dropped). */
  get(key: string, now: number): V | undefined {
    const entry = this.map.get(key)
    if (entry === undefined) return undefined
    if (entry.forgetAt <= now) {
      this.map.delete(key)
      return undefined
    }
    entry.seen = true
    return entry
  }

  /**
   * Add a new entry (or replace one). Room is made first, past `max`, so that the entry being
   * added is never the one evicted.
   */
  add(key: string, value: V, now: number): void {
    if (this.size >= this.max && !this.map.has(key)) this.evict(now, this.max - this.batch)
    this.map.set(key, value)
  }

  /**
   * How many entries one eviction pass drops: a sixteenth of the bound. A pass walks the Map from
   * its oldest end, past every entry deleted since V8 last rehashed it; one pass per add (dropping
   * one entry) made each add cost in proportion to the bound (100 µs and more at 100,000).
   */
  private get batch(): number {
    return Math.max(1, this.max >> 4)
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  /** Live entries, oldest first (reading them does not mark them seen). */
  *entries(now: number): IterableIterator<[string, V]> {
    for (const entry of this.map) if (typeof entry[0] === 'string' && entry[1].forgetAt > now) yield entry
  }

  /** Drop expired or unseen entries from the oldest end until no more than `target` are left. */
  private evict(now: number, target: number): void {
    let budget = this.map.size * 2
    for (const [key, entry] of this.map) {
      if (this.size <= target || budget-- <= 0) break
      if (typeof key !== 'string') continue // padding stays
      this.map.delete(key)
      if (entry.forgetAt > now && this.wasSeen(entry)) {
        this.map.set(key, entry) // a second chance, at the young end
      } else this.drop(entry)
    }
    // everything was seen: drop the oldest anyway, so the bound holds
    for (const [key, entry] of this.map) {
      if (this.size <= target) break
      if (typeof key !== 'string') continue
      this.map.delete(key)
      this.drop(entry)
    }
  }

  /** Mark an entry taken out by `evict` as no longer the cache's, and say so. */
  private drop(entry: V): void {
    entry.forgetAt = Number.NEGATIVE_INFINITY
    this.onEvict?.(entry)
  }
}
