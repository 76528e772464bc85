/** A small binary min-heap of instants, so that expiry needs no timer per key. */
export class TimeHeap {
  private readonly items: number[] = []

  get size(): number {
    return this.items.length
  }

  push(time: number): void {
    const { items } = this
    let i = items.length
    items.push(time)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]! <= time) break
      items[i] = items[parent]!
      i = parent
    }
    items[i] = time
  }

  /** The earliest instant at or before `now`, removed; `undefined` when none is due. */
  popDue(now: number): number | undefined {
    const { items } = this
    if (items.length === 0 || items[0]! > now) return undefined
    const top = items[0]!
    const last = items.pop()!
    const n = items.length
    if (n > 0) {
      let i = 0
      while (true) {
        let child = 2 * i + 1
        if (child >= n) break
        if (child + 1 < n && items[child + 1]! < items[child]!) child++
        if (items[child]! >= last) break
        items[i] = items[child]!
        i = child
      }
      items[i] = last
    }
    return top
  }
}
