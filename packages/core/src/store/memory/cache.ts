/**
 * A bounded cache for the memory store: a Map whose entries carry their own expiry
 * (`forgetAt`, read against the store's clock) and a "seen" bit for CLOCK eviction.
 * Past `max` entries, the oldest are dropped unless seen since the last pass, which
 * keeps hot counters and costs no reordering on reads.
 *
 * Written here rather than taken from lru-cache: lru-cache costs a reordering on every
 * read and a re-`set` to refresh a TTL, which was a quarter of the hot path in `pnpm bench`.
 */

/** What an entry carries for the cache. */
export interface Expiring {
  /** When the entry may be forgotten (ms since epoch); `Infinity` for never. */
  forgetAt: number
  /** Read since the last eviction pass. */
  seen: boolean
}

export class ClockCache<V extends Expiring> {
  private readonly map = new Map<string, V>()

  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size
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

  /** Add a new entry (or replace one), evicting past `max`. */
  add(key: string, value: V, now: number): void {
    this.map.set(key, value)
    if (this.map.size > this.max) this.evict(now)
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  /** Live entries, oldest first (reading them does not mark them seen). */
  *entries(now: number): IterableIterator<[string, V]> {
    for (const entry of this.map) if (entry[1].forgetAt > now) yield entry
  }

  /** Drop expired or unseen entries from the oldest end until back under `max`. */
  private evict(now: number): void {
    let budget = this.map.size * 2
    for (const [key, entry] of this.map) {
      if (this.map.size <= this.max || budget-- <= 0) break
      this.map.delete(key)
      if (entry.forgetAt > now && entry.seen) {
        entry.seen = false
        this.map.set(key, entry) // a second chance, at the young end
      }
    }
    // everything was seen: drop the oldest anyway, so the bound holds
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string)
  }
}

/**
 * Closed reservation ids, remembered for `horizonMs` so that a duplicate settle or
 * release is recognised. Ids are kept in small sets, a new one every 1/24 of the horizon or
 * every 8,192 ids, and forgotten a set at a time: no per-id timestamp, no large table to
 * grow, and the oldest set goes first when more than `max` ids are kept.
 */
export class Tombstones {
  private static readonly SLICES = 24
  private static readonly SET_SIZE = 8_192
  private readonly buckets: { until: number; settled: Set<string>; released: Set<string> }[] = []
  private size = 0

  constructor(
    private readonly horizonMs: number,
    private readonly max: number,
  ) {}

  add(id: string, state: 'settled' | 'released', now: number): void {
    this.forget(now)
    let last = this.buckets.at(-1)
    if (
      !last ||
      last.until < now + this.horizonMs ||
      last.settled.size + last.released.size >= this.setSize
    ) {
      const slice = this.horizonMs / Tombstones.SLICES
      const until = Math.ceil((now + this.horizonMs) / slice) * slice
      last = { until, settled: new Set(), released: new Set() }
      this.buckets.push(last)
    }
    ;(state === 'settled' ? last.settled : last.released).add(id)
    this.size++
    while (this.size > this.max && this.buckets.length > 1) this.drop()
  }

  get(id: string, now: number): 'settled' | 'released' | undefined {
    this.forget(now)
    for (const bucket of this.buckets) {
      if (bucket.settled.has(id)) return 'settled'
      if (bucket.released.has(id)) return 'released'
    }
    return undefined
  }

  /** Ids per set: small enough that `max` spans several sets, so dropping one keeps the rest. */
  private get setSize(): number {
    return Math.max(1, Math.min(Tombstones.SET_SIZE, Math.ceil(this.max / 8)))
  }

  private forget(now: number): void {
    while (this.buckets.length > 0 && this.buckets[0]!.until <= now) this.drop()
  }

  private drop(): void {
    const first = this.buckets.shift()!
    this.size -= first.settled.size + first.released.size
  }
}
