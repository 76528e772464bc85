/**
 * The slots of a rolling window's cell: what is counted and held in each slot still in the
 * window, by slot index (time / slotMs), in a ring of positions that grows to the widest span of
 * slots it has held (at most the window's slots and one). A `Map` per cell, as this replaced, cost
 * a hash and often a boxed number per read or write, and walked the slots it had deleted: with all
 * 60 slots of a 60 s window in use, a reserve on six such counters ran 2.7× slower.
 *
 * Slots are added for the store's current time only, which never goes back, so the ring is read
 * oldest first from {@link SlotRing.first}.
 */
export class SlotRing {
  /** Counted per position; NaN where no slot is. */
  private counted: number[] = new Array(4).fill(Number.NaN)
  /** Held (open holds within counted) per position. */
  private held: number[] = new Array(4).fill(0)
  /** Slot indices are kept relative to the first one added, so that they stay small integers. */
  private base = Number.NaN
  /** The oldest slot present (relative); meaningful while {@link size} > 0. */
  private from = 0
  /** The newest slot present (relative); meaningful while {@link size} > 0. */
  private to = 0
  /** Slots present. */
  size = 0

  /** The oldest slot present, or `undefined`. */
  get first(): number | undefined {
    return this.size === 0 ? undefined : this.from + this.base
  }

  /** What slot `slot` counts, or `undefined` when it is not present. */
  get(slot: number): number | undefined {
    const at = this.position(slot)
    return at < 0 ? undefined : this.counted[at]
  }

  /** Add `amount` to what slot `slot` counts, of which `hold` is held; the slot is added if missing. */
  add(slot: number, amount: number, hold: number): void {
    if (Number.isNaN(this.base)) this.base = slot
    const r = slot - this.base
    if (this.size === 0) {
      this.from = r
      this.to = r
    } else if (r > this.to) {
      this.fit(r - this.from + 1)
      this.to = r
    } else if (r < this.from) {
      this.fit(this.to - r + 1)
      this.from = r
    }
    const at = this.at(r)
    const value = this.counted[at]!
    if (Number.isNaN(value)) {
      this.counted[at] = amount
      this.held[at] = hold
      this.size++
    } else {
      this.counted[at] = value + amount
      this.held[at]! += hold
    }
  }

  /**
   * Move what present slot `slot` counts by `delta` and what it holds by `-open`; `false` (nothing
   * changed) when the slot is not present.
   */
  charge(slot: number, delta: number, open: number): boolean {
    const at = this.position(slot)
    if (at < 0) return false
    this.counted[at]! += delta
    this.held[at]! -= open
    return true
  }

  /**
   * Drop every slot older than `cutoff`, and answer what they counted and held in `dropped`. Steps
   * over the slots present at most, never over the time the cell was idle.
   */
  drop(cutoff: number, dropped: { counted: number; held: number }): void {
    dropped.counted = 0
    dropped.held = 0
    if (this.size === 0) return
    const cut = cutoff - this.base
    if (cut <= this.from) return
    for (let r = this.from; r <= this.to; r++) {
      const at = this.at(r)
      const value = this.counted[at]!
      if (Number.isNaN(value)) continue
      if (r >= cut) {
        this.from = r
        return
      }
      dropped.counted += value
      dropped.held += this.held[at]!
      this.counted[at] = Number.NaN
      this.held[at] = 0
      this.size--
    }
  }

  /**
   * The oldest slot at which, once it has left the window, what is counted is at most `most`
   * (`undefined`: none, even with every slot gone): the first slot whose leaving brings `total`
   * (what all present slots count) down to `most`.
   */
  leaving(total: number, most: number): number | undefined {
    let left = total
    for (let r = this.from; this.size > 0 && r <= this.to; r++) {
      const value = this.counted[this.at(r)]!
      if (Number.isNaN(value)) continue
      left -= value
      if (left <= most) return r + this.base
    }
    return undefined
  }

  /** The position of present slot `slot`, or -1. */
  private position(slot: number): number {
    const r = slot - this.base
    if (this.size === 0 || r < this.from || r > this.to) return -1
    const at = this.at(r)
    const value = this.counted[at]!
    return Number.isNaN(value) ? -1 : at
  }

  /** The position of relative slot `r`. The ring's length is a power of two. */
  private at(r: number): number {
    const n = this.counted.length
    // a mask where `r` is a 32-bit integer (a slot a second long keeps it one for 68 years): the
    // remainder of a float costs a call
    return (r | 0) === r ? r & (n - 1) : mod(r, n)
  }

  /**
   * Grow the ring (doubling: its length stays a power of two) to hold a span of `span` slots, each
   * present slot keeping its place by index.
   */
  private fit(span: number): void {
    let n = this.counted.length
    if (span <= n) return
    while (n < span) n *= 2
    const counted: number[] = new Array(n).fill(Number.NaN)
    const held: number[] = new Array(n).fill(0)
    for (let r = this.from; r <= this.to; r++) {
      const at = this.at(r)
      const value = this.counted[at]!
      if (Number.isNaN(value)) continue
      counted[mod(r, n)] = value
      held[mod(r, n)] = this.held[at]!
    }
    this.counted = counted
    this.held = held
  }
}

/** `r` modulo `n`, never negative. */
const mod = (r: number, n: number) => ((r % n) + n) % n
