/**
 * Open reservations by the whole second they expire in, so that expiry needs no timer per
 * reservation and no per-id set: each second's items are a plain list, an item closed early is
 * only counted out (`remove`), and a list is compacted once more than half of it is gone, so it
 * never holds more than twice its open items (the list being added to: or 64 more).
 */
import { TimeHeap } from './heap.js'

/** The list of one second. */
export interface Bucket {
  second: number
  items: Due[]
  /** Items of `items` removed since the last compaction. */
  gone: number
}

/** What an item carries for its expiry: the bucket it is listed in, while it is. */
export interface Due {
  due: Bucket | undefined
}

const SECOND = 1_000

/** The instant an item expiring at `expiresAt` is handed to expire at: the whole second after. */
export function dueAt(expiresAt: number): number {
  return Math.ceil(expiresAt / SECOND) * SECOND
}

/** The list items are being added to is compacted only past this many gone (see `remove`). */
const COMPACT_FROM = 64

/** Take the items no longer listed out of a bucket's list, in place (a new list each time is garbage). */
function compact(bucket: Bucket): void {
  const { items } = bucket
  let kept = 0
  for (let i = 0; i < items.length; i++) {
    const listed = items[i]!
    if (listed.due === bucket) items[kept++] = listed
  }
  items.length = kept
  bucket.gone = 0
}

export class Expiries<T extends Due> {
  private readonly heap = new TimeHeap()
  private readonly buckets = new Map<number, Bucket>()
  /** The bucket last added to: most items of a burst expire in the same second. */
  private last: Bucket | undefined

  /** Entries in all lists (closed items not yet compacted out included), and the lists: for tests. */
  get size(): { listed: number; lists: number } {
    let listed = 0
    for (const bucket of this.buckets.values()) listed += bucket.items.length
    return { listed, lists: this.buckets.size }
  }

  /** List `item` to expire at `expiresAt` (ms since epoch), rounded up to the second. */
  add(item: T, expiresAt: number): void {
    const second = dueAt(expiresAt)
    let bucket = this.last
    if (bucket === undefined || bucket.second !== second) {
      bucket = this.buckets.get(second)
      if (bucket === undefined) {
        bucket = { second, items: [], gone: 0 }
        this.buckets.set(second, bucket)
        this.heap.push(second)
      }
      // the list items went to until now is left to `remove`'s rule for the others: compacted now
      // if more than half of it is gone
      const previous = this.last
      this.last = bucket
      if (previous !== undefined && previous.gone * 2 > previous.items.length) compact(previous)
    }
    bucket.items.push(item)
    item.due = bucket
  }

  /** Take `item` off its list (it was closed before it expired). */
  remove(item: T): void {
    const bucket = item.due
    if (bucket === undefined) return
    item.due = undefined
    bucket.gone++
    // Once more than half is gone. The list items are being added to waits for COMPACT_FROM gone
    // (a reserve settled at once would compact it, and shrink it, every time); any other list, however
    // short: short lists left alone kept every item closed early (its meta and cells with it) until
    // their second passed, a TTL's worth of reservations whatever `maxReservations` said.
    if (bucket.gone * 2 > bucket.items.length && (bucket !== this.last || bucket.gone >= COMPACT_FROM))
      compact(bucket)
  }

  /** Hand every item due at or before `now` to `expire`, once, taking it off its list. */
  expireDue(now: number, expire: (item: T) => void): void {
    for (let second = this.heap.popDue(now); second !== undefined; second = this.heap.popDue(now)) {
      const bucket = this.buckets.get(second)
      this.buckets.delete(second)
      if (bucket === undefined) continue
      if (this.last === bucket) this.last = undefined
      for (const item of bucket.items) {
        if (item.due !== bucket) continue
        item.due = undefined
        expire(item as T)
      }
    }
  }
}
