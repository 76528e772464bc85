/** A binary min-heap of calls in flight, ordered by when they end. */
export interface InFlight {
  at: number
  settle: () => Promise<void>
}

export class EndHeap {
  private readonly items: InFlight[] = []

  get size(): number {
    return this.items.length
  }

  /** When the earliest call ends, `+∞` when none is in flight. */
  peek(): number {
    return this.items[0]?.at ?? Number.POSITIVE_INFINITY
  }

  push(item: InFlight): void {
    const items = this.items
    items.push(item)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]!.at <= item.at) break
      items[i] = items[parent]!
      i = parent
    }
    items[i] = item
  }

  pop(): InFlight | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || !last) return top
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= items.length) break
      const right = left + 1
      const child = right < items.length && items[right]!.at < items[left]!.at ? right : left
      if (items[child]!.at >= last.at) break
      items[i] = items[child]!
      i = child
    }
    items[i] = last
    return top
  }
}
