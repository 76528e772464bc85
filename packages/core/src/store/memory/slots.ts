/**
 * The ids the memory store's lane makes, and where it keeps their reservations. An id is the
 * store's random prefix followed by a sequence number (see {@link idText}), so the store finds a
 * reservation by decoding the number, not by hashing the string:
 *
 * - open reservations sit in a ring indexed by the number; one still open when the ring comes
 *   round to its slot again is handed back to the store (which keeps it in its keyed map);
 * - closed ones leave two bits (closed, released) in a ring of bits over the last `remember`
 *   numbers, forgotten a block of numbers at a time once `horizonMs` has passed since the
 *   block's last close. So a closed id is remembered for at least `horizonMs` unless more than
 *   `remember` ids were made since, and for as long as its block sees closes.
 *
 * Ids made elsewhere (the engine's, another store's) practically never decode here: the prefix is
 * 42 random bits, and only the exact text of a number already made is accepted.
 */
import type { Closed } from './tombstones.js'

/** Characters of an id's prefix. */
const PREFIX = 7
/** The digits of ids: base64url's alphabet, so an id is safe in a URL, a header or a file name. */
const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** Each character's digit, or -1 (for character codes below 128). */
const VALUES = new Int8Array(128).fill(-1)
for (let digit = 0; digit < 64; digit++) VALUES[DIGITS.charCodeAt(digit)] = digit
/** Numbers below this are written in 5 digits, the rest in 9 (the largest safe integer fits). */
const SHORT = 2 ** 30

/**
 * The id of number `n` after the prefix of character codes `codes` (`PREFIX` of them): `n` in
 * base 64 with {@link DIGITS}, 5 digits below 2^30 and 9 from there, so every number has one
 * text. Below 2^30 an id is 12 characters, made in one step: V8 makes a string that short flat,
 * where a longer concatenation is a rope that the settle's first read of the id would copy (a
 * tenth of an in-memory reserve+settle with the 20-character hex prefix this replaced).
 */
export function idText(codes: readonly number[], n: number): string {
  const c = codes
  if (n < SHORT)
    return String.fromCharCode(
      c[0]!,
      c[1]!,
      c[2]!,
      c[3]!,
      c[4]!,
      c[5]!,
      c[6]!,
      DIGITS.charCodeAt((n >>> 24) & 63),
      DIGITS.charCodeAt((n >>> 18) & 63),
      DIGITS.charCodeAt((n >>> 12) & 63),
      DIGITS.charCodeAt((n >>> 6) & 63),
      DIGITS.charCodeAt(n & 63),
    )
  let digits = ''
  for (let k = 0, rest = n; k < 9; k++, rest = Math.floor(rest / 64)) digits = DIGITS[rest % 64]! + digits
  return String.fromCharCode(...c) + digits
}

/**
 * The number written after `from` characters of `id` by {@link idText}, or -1 when `id` is not
 * such a text (of any prefix: the caller checks that).
 */
export function numberIn(id: string, from: number): number {
  const length = id.length - from
  if (length !== 5 && length !== 9) return -1
  let n = 0
  for (let i = from; i < id.length; i++) {
    const c = id.charCodeAt(i)
    const digit = c < 128 ? VALUES[c]! : -1
    if (digit < 0) return -1
    n = n * 64 + digit
  }
  // one text per number: the long form only from 2^30, and never past the safe integers
  return length === 5 || (n >= SHORT && n <= Number.MAX_SAFE_INTEGER) ? n : -1
}

/** Most reservations in the ring; an app rarely has more open at once. */
const RING = 1 << 14
/** Blocks of numbers that are forgotten together (a time stamp each). */
const BLOCKS = 256
/** The ring and the bits start this small and double as they fill, up to their full size. */
const FIRST_RING = 256
const FIRST_BITS = 4_096

export class Slots<R extends { n: number; id: string }> {
  /** The text every id of this store starts with. */
  readonly prefix: string
  /** The prefix's character codes. */
  private readonly codes: number[]
  /** The next number to give. */
  private next = 0
  private ring: (R | undefined)[]
  private ringMask: number
  private readonly fullRing: number
  private closedBits: Uint32Array
  private releasedBits: Uint32Array
  private bitMask: number
  private readonly fullBits: number
  private blockShift: number
  /** Per block: when its bits may be forgotten (last close + horizon). */
  private blockUntil: Float64Array
  private readonly blocks: number

  /**
   * @param remember most closed ids remembered (the store's `maxReservations`)
   * @param horizonMs how long a closed id is remembered at least (the store's `idempotencyMs`)
   * @param sizes for tests: into how many blocks the bits are cut, and the first sizes of the
   * ring and the bits (powers of two)
   */
  constructor(
    private readonly remember: number,
    private readonly horizonMs: number,
    sizes: { blocks?: number; firstRing?: number; firstBits?: number } = {},
  ) {
    this.blocks = sizes.blocks ?? BLOCKS
    const bytes = globalThis.crypto.getRandomValues(new Uint8Array(PREFIX))
    this.codes = Array.from(bytes, (byte) => DIGITS.charCodeAt(byte & 63))
    this.prefix = String.fromCharCode(...this.codes)
    let ring = 1
    while (ring < Math.min(RING, remember)) ring *= 2
    this.fullRing = ring
    ring = Math.min(ring, sizes.firstRing ?? FIRST_RING)
    this.ring = new Array(ring).fill(undefined)
    this.ringMask = ring - 1
    // twice the ids remembered, so that a block starting over never holds one still remembered
    let bits = 64
    while (bits < 2 * remember) bits *= 2
    this.fullBits = bits
    bits = Math.min(bits, sizes.firstBits ?? FIRST_BITS)
    this.bitMask = bits - 1
    this.closedBits = new Uint32Array(bits >>> 5)
    this.releasedBits = new Uint32Array(bits >>> 5)
    this.blockShift = this.shiftFor(bits)
    this.blockUntil = new Float64Array(Math.ceil(bits / 2 ** this.blockShift))
  }

  /** The block shift for `bits` bits: at most `blocks` blocks. */
  private shiftFor(bits: number): number {
    let shift = 0
    while (bits >>> shift > this.blocks) shift++
    return shift
  }

  /**
   * Double the bits (while `n` is past them and they are not at full size). Until they are full
   * no number has wrapped, so each keeps its position.
   */
  private growBits(n: number): void {
    while (n > this.bitMask && this.bitMask + 1 < this.fullBits) {
      const bits = (this.bitMask + 1) * 2
      const closed = new Uint32Array(bits >>> 5)
      closed.set(this.closedBits)
      const released = new Uint32Array(bits >>> 5)
      released.set(this.releasedBits)
      const shift = this.shiftFor(bits)
      const until = new Float64Array(Math.ceil(bits / 2 ** shift))
      const merge = shift - this.blockShift
      for (let k = 0; k < this.blockUntil.length; k++) {
        const j = k >>> merge
        if (this.blockUntil[k]! > until[j]!) until[j] = this.blockUntil[k]!
      }
      this.closedBits = closed
      this.releasedBits = released
      this.bitMask = bits - 1
      this.blockShift = shift
      this.blockUntil = until
    }
  }

  /** Double the ring: records in distinct slots stay in distinct slots. */
  private growRing(): void {
    const ring: (R | undefined)[] = new Array(this.ring.length * 2).fill(undefined)
    const mask = ring.length - 1
    for (const record of this.ring) if (record !== undefined) ring[record.n & mask] = record
    this.ring = ring
    this.ringMask = mask
  }

  /**
   * A new number with `record` in its ring slot. Returns the open record that slot held (made
   * a ring's length ago and still open), for the caller to keep elsewhere, or `undefined`.
   */
  add(record: R): { n: number; displaced: R | undefined } {
    const n = this.next++
    if (n > this.bitMask) this.growBits(n)
    let slot = n & this.ringMask
    let displaced = this.ring[slot]
    while (displaced !== undefined && this.ring.length < this.fullRing) {
      this.growRing()
      slot = n & this.ringMask
      displaced = this.ring[slot]
    }
    this.ring[slot] = record
    // the bits of this number's predecessor a bit ring ago start over
    const bit = n & this.bitMask
    const word = bit >>> 5
    const clear = ~(1 << (bit & 31))
    this.closedBits[word]! &= clear
    this.releasedBits[word]! &= clear
    if ((bit & ((1 << this.blockShift) - 1)) === 0) this.blockUntil[bit >>> this.blockShift] = 0
    result.n = n
    result.displaced = displaced
    return result as { n: number; displaced: R | undefined }
  }

  /** How many numbers were given: every number below this one. */
  get made(): number {
    return this.next
  }

  /** Numbers below this one are no longer in the ring (each made way for a newer one). */
  get oldest(): number {
    return Math.max(0, this.next - this.ring.length)
  }

  /** The record of number `n` while it is in its ring slot. */
  at(n: number): R | undefined {
    const record = this.ring[n & this.ringMask]
    return record !== undefined && record.n === n ? record : undefined
  }

  /** The id text of number `n`. */
  idOf(n: number): string {
    return idText(this.codes, n)
  }

  /** The number of an id this store made, or -1. */
  parse(id: string): number {
    const n = numberIn(id, PREFIX)
    return n >= 0 && n < this.next && id.startsWith(this.prefix) ? n : -1
  }

  /**
   * The record of `id` while it is in the ring. Reads only the number at the end of `id`: the
   * record's own id, compared last, vouches for the rest (the same string in a settle right
   * after its reserve, so usually no more than a pointer comparison).
   */
  find(id: string): R | undefined {
    const n = numberIn(id, PREFIX)
    if (n < 0) return undefined
    const record = this.ring[n & this.ringMask]
    return record !== undefined && record.n === n && record.id === id ? record : undefined
  }

  /** Take `record` out of its ring slot; `false` when it is not there (it was handed back). */
  take(record: R): boolean {
    const slot = record.n & this.ringMask
    if (this.ring[slot] !== record) return false
    this.ring[slot] = undefined
    return true
  }

  /** Remember that `n` closed at `now`; `false` when `n` is too old to be remembered here. */
  close(n: number, state: Closed, now: number): boolean {
    if (this.next - n > this.remember) return false
    const bit = n & this.bitMask
    const word = bit >>> 5
    const mask = 1 << (bit & 31)
    this.closedBits[word]! |= mask
    if (state === 'released') this.releasedBits[word]! |= mask
    else this.releasedBits[word]! &= ~mask
    const block = bit >>> this.blockShift
    const until = now + this.horizonMs
    if (until > this.blockUntil[block]!) this.blockUntil[block] = until
    return true
  }

  /** How `n` closed, while it is remembered. */
  closed(n: number, now: number): Closed | undefined {
    if (this.next - n > this.remember) return undefined
    const bit = n & this.bitMask
    const word = bit >>> 5
    const mask = 1 << (bit & 31)
    if ((this.closedBits[word]! & mask) === 0) return undefined
    if (this.blockUntil[bit >>> this.blockShift]! <= now) return undefined
    return (this.releasedBits[word]! & mask) === 0 ? 'settled' : 'released'
  }
}

/** The answer of {@link Slots.add}, one object reused (the store's calls never interleave). */
const result: { n: number; displaced: unknown } = { n: 0, displaced: undefined }
