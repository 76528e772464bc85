/**
 * Marks that hold until a time, by key: the memory store's tripped breakers. An expired mark is
 * dropped when its key is read, and every expired mark whenever the map has doubled since the last
 * such pass, so that marks on keys never read again (a breaker tripped once for a user who never
 * came back) do not pile up.
 */

/** The fewest marks at which a pass drops the expired ones. */
const FIRST_PASS = 1_024

export class Marks {
  private readonly map = new Map<string, number>()
  private passAt = FIRST_PASS

  /** Marks kept, expired ones not yet dropped included. */
  get size(): number {
    return this.map.size
  }

  /** Whether `key` has a mark, expired or not (an expired one goes when `get` reads it). */
  has(key: string): boolean {
    return this.map.has(key)
  }

  /** When the mark on `key` ends, while it holds at `now`; `undefined` otherwise. */
  get(key: string, now: number): number | undefined {
    const until = this.map.get(key)
    if (until === undefined) return undefined
    if (until > now) return until
    this.map.delete(key)
    return undefined
  }

  /** Mark `key` until `until`. */
  set(key: string, until: number, now: number): void {
    this.map.set(key, until)
    if (this.map.size <= this.passAt) return
    for (const [k, end] of this.map) if (end <= now) this.map.delete(k)
    this.passAt = Math.max(FIRST_PASS, 2 * this.map.size)
  }
}
