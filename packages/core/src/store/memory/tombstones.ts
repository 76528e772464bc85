/**
 * Closed reservation ids, remembered for `horizonMs` so that a duplicate settle or release is
 * recognised. An id is kept as a 51-bit hash in an open-addressing table of typed arrays: 9 bytes
 * an id, and nothing for the garbage collector to walk however many are kept (strings in Sets
 * made every major collection slower as they piled up). Tables hold up to 8,192 ids each, a new
 * one every 1/24 of the horizon, and are forgotten a table at a time; past `max` ids the oldest
 * table goes first.
 *
 * Two different ids share a hash with odds of about n / 2^51 per look-up of an id never closed
 * here (n ids kept: 4e-10 at a million); such an id would answer `duplicate` instead of `unknown`,
 * both of which change nothing, and a reserve under it would throw as for a closed id (the store
 * unavailable for that one call: its failure modes apply).
 */
export type Closed = 'settled' | 'released'

interface Table {
  until: number
  size: number
  /** Hash + 1 per slot; 0 is an empty slot. */
  keys: Float64Array
  /** 1 for released, 0 for settled. */
  released: Uint8Array
}

const SLICES = 24
const TABLE_SIZE = 8_192

export class Tombstones {
  private readonly tables: Table[] = []
  private size = 0
  private readonly perTable: number
  private readonly capacity: number

  constructor(
    private readonly horizonMs: number,
    private readonly max: number,
  ) {
    // small enough that `max` spans several tables, so dropping one keeps the rest
    this.perTable = Math.max(1, Math.min(TABLE_SIZE, Math.ceil(max / 8)))
    let capacity = 2
    while (capacity < this.perTable * 2) capacity *= 2
    this.capacity = capacity
  }

  add(id: string, state: Closed, now: number): void {
    if (this.horizonMs === 0) return // remembered for no time at all (a slice of 0 made NaN, kept for ever)
    this.forget(now)
    let last = this.tables.at(-1)
    if (!last || last.until < now + this.horizonMs || last.size >= this.perTable) {
      const slice = this.horizonMs / SLICES
      const until = Math.ceil((now + this.horizonMs) / slice) * slice
      last = {
        until,
        size: 0,
        keys: new Float64Array(this.capacity),
        released: new Uint8Array(this.capacity),
      }
      this.tables.push(last)
    }
    const key = hash(id) + 1
    const mask = this.capacity - 1
    let slot = (key % this.capacity) & mask
    while (last.keys[slot] !== 0 && last.keys[slot] !== key) slot = (slot + 1) & mask
    if (last.keys[slot] === 0) {
      last.size++
      this.size++
    }
    last.keys[slot] = key
    last.released[slot] = state === 'released' ? 1 : 0
    while (this.size > this.max && this.tables.length > 1) this.drop()
  }

  get(id: string, now: number): Closed | undefined {
    this.forget(now)
    if (this.tables.length === 0) return undefined
    const key = hash(id) + 1
    const mask = this.capacity - 1
    for (const table of this.tables) {
      for (let slot = (key % this.capacity) & mask; table.keys[slot] !== 0; slot = (slot + 1) & mask) {
        if (table.keys[slot] === key) return table.released[slot] === 1 ? 'released' : 'settled'
      }
    }
    return undefined
  }

  private forget(now: number): void {
    while (this.tables.length > 0 && this.tables[0]!.until <= now) this.drop()
  }

  private drop(): void {
    this.size -= this.tables.shift()!.size
  }
}

/** A 51-bit hash of a string: two independent 32-bit FNV-1a style hashes, one cut to 19 bits. */
function hash(text: string): number {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995)
    b ^= b >>> 15
  }
  return (a >>> 0) * 0x80000 + ((b >>> 0) & 0x7ffff)
}
