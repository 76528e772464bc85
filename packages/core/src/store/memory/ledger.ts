/**
 * The memory store's state and the steps every call shares: read the clock and expire what is
 * due (`tick`), keep a new reservation (`remember`), find one by id (`find`) and close it
 * (`finish`), besides the counters' homes, overrides, breakers and blocks.
 *
 * A class, not closures made by `memoryStore()`: a closure is a new function for every store, so
 * once a second store had been used in the process, each call between these steps had to check
 * which store's function it was calling, and the lane's reserve+settle cost about 10% more
 * (bench/README.md). A method is one function for every store.
 */
import type { Clock } from '../../clock.js'
import type { CommitCounter, CounterSpec, ReservationMeta, WindowSpec } from '../contract.js'
import { ClockCache, type Expiring } from './cache.js'
import { type Cell, charge, type Home, homeGone, homeSeen, newHome } from './counters.js'
import { type Due, dueAt, Expiries } from './expiry.js'
import { Marks } from './marks.js'
import { Slots } from './slots.js'
import { closeHeld, NO_COUNTERS, type Ticket } from './ticket.js'
import { type Closed, Tombstones } from './tombstones.js'

/**
 * An open or expired reservation. Closed ones leave only a tombstone. Its holds are kept as
 * parallel lists: the specs it was made with (never mutated after a reserve), the cell each
 * hold went into (`undefined` for a shadow counter that held nothing) and that cell's window
 * or slot start.
 */
export interface Record extends Expiring, Due {
  id: string
  /** The number of an id the lane made (see `Slots`), or -1. */
  n: number
  state: 'held' | 'expired'
  expiresAt: number
  meta: ReservationMeta
  specs: CounterSpec[]
  cells: (Cell | undefined)[]
  starts: number[]
  /** The lane's ticket for `specs` when all are calendar windows: a settle reads its arrays. */
  ticket: Ticket | undefined
}

/** A settle's or release's amounts by metric (`null`: release). */
type Amounts = globalThis.Record<string, number> | null

/** A hold as `charge` sees it; one object reused for every call (the store never interleaves). */
const entry = { window: undefined as unknown as WindowSpec, windowStart: 0, charged: 0, open: 0 }

/** What an expired reservation's unsettled hold does: leases and `release` holds go back. */
const returnsOnExpiry = (spec: CounterSpec) => spec.expiry === 'release' || spec.window.kind === 'lease'

/** Point the shared `entry` at hold `i` of a record. */
function entryOf(record: Record, i: number): typeof entry {
  const spec = record.specs[i]!
  const expired = record.state === 'expired'
  entry.window = spec.window
  entry.windowStart = record.starts[i]!
  entry.charged = expired && returnsOnExpiry(spec) ? 0 : spec.amount
  entry.open = expired ? 0 : spec.amount
  return entry
}

/**
 * The name a counter's home is kept under: its key, and its scope (tenant) when it has one, as
 * the Redis store's keys carry it, so that one key under two tenants is two counters. Keys are
 * escaped and never hold U+0000, so the name is unambiguous whatever the scope's characters.
 * Overrides are kept under the same name.
 */
export function nameOf(spec: { key: string; scope?: string | undefined }): string {
  return spec.scope === undefined ? spec.key : `${spec.key}\u0000${spec.scope}`
}

/** The bounds and durations a ledger is made with (checked by `memoryStore`). */
export interface LedgerOptions {
  clock: Clock
  idempotencyMs: number
  graceMs: number
  maxReservations: number
  maxCounters: number
}

export class Ledger {
  readonly clock: Clock
  /** The store's time: the latest clock reading, never going back (see {@link tick}). */
  now: number
  /**
   * The record `lane.meta` last found, until the store's next call: the engine's settle asks for
   * a reservation's meta and then commits it, with nothing in between, so the commit needs no
   * second look-up. Nothing else can close or drop it meanwhile: every other call starts with
   * `tick`, which forgets it.
   */
  metaOf: Record | undefined
  readonly idempotencyMs: number
  /** How long a counter's home is kept after its window ends. */
  readonly graceMs: number
  readonly homes: ClockCache<Home>
  /** Reservations under ids the engine made; those the lane made are in {@link slots}. */
  readonly records: ClockCache<Record>
  /** Ids closed, of reservations not in {@link slots}. */
  readonly closed: Tombstones
  readonly slots: Slots<Record>
  /** Caps set at runtime, by home name. */
  readonly overrides: Map<string, number>
  /** Tripped breakers, by home name. */
  readonly trips: Marks
  /** Codes of the blocked markers. */
  readonly blocks: Map<string, string>
  /**
   * Open reservations by the second they expire in, but for those of the lane's ring that expire in
   * the order they were made (see {@link expireRing}).
   */
  readonly due: Expiries<Record>
  /** Numbers of the ring below this one are closed, expired or listed in {@link due}. */
  private cursor: number
  /** When the last reservation the ring lists for expiry (not in {@link due}) expires. */
  private ringUntil: number
  /** No reservation the ring lists for expiry is due before this. */
  private ringNext: number
  private readonly expireHeld: (record: Record) => void

  constructor(options: LedgerOptions) {
    const { idempotencyMs, maxReservations } = options
    this.clock = options.clock
    this.now = 0
    this.metaOf = undefined
    this.idempotencyMs = idempotencyMs
    this.graceMs = options.graceMs
    this.homes = new ClockCache<Home>(options.maxCounters, false, homeGone, homeSeen)
    this.records = new ClockCache<Record>(maxReservations, true, (record) => this.evicted(record))
    this.closed = new Tombstones(idempotencyMs, maxReservations)
    this.slots = new Slots<Record>(maxReservations, idempotencyMs)
    this.overrides = new Map()
    this.trips = new Marks()
    this.blocks = new Map()
    this.due = new Expiries<Record>()
    this.cursor = 0
    this.ringUntil = Number.NEGATIVE_INFINITY
    this.ringNext = Number.POSITIVE_INFINITY
    this.expireHeld = (record) => {
      if (record.state === 'held') this.expire(record)
    }
  }

  /**
   * Read the clock once per call and process what expired. The store's time never goes back: when
   * the clock steps back (an NTP correction), it keeps its latest time until the clock passes it
   * again. A counter keeps one window's cell, so going back to an earlier window would start it
   * afresh, and coming forward again would start the later one afresh too: counts lost both ways.
   */
  tick(): number {
    this.metaOf = undefined
    const now = this.later()
    this.now = now
    this.due.expireDue(now, this.expireHeld)
    if (now >= this.ringNext) this.expireRing(now)
    return now
  }

  /**
   * Expire the ring's reservations that are due, oldest number first. A reservation the lane made
   * is listed in {@link due} only when it expires before one made earlier (a shorter TTL): the
   * others expire in the order of their numbers, so the ring lists them already, and the cursor
   * stops at the first one still open and not due, whose time is then the next to look at
   * ({@link ringNext}). Numbers older than the ring are no longer in it (see `Slots.oldest`).
   * Listing every reservation in `due` and taking it off at its settle cost about 4% of an
   * in-memory reserve+settle (bench/README.md).
   */
  private expireRing(now: number): void {
    const { slots } = this
    const made = slots.made
    let n = Math.max(this.cursor, slots.oldest)
    this.ringNext = Number.POSITIVE_INFINITY
    for (; n < made; n++) {
      const record = slots.at(n) // closed ones left the ring; one handed to the cache is in `due`
      if (record === undefined || record.state !== 'held' || record.due !== undefined) continue
      const at = dueAt(record.expiresAt)
      if (at > now) {
        this.ringNext = at
        break
      }
      this.expire(record)
    }
    this.cursor = n
    // none left to expire in order: the next one starts the order afresh, whatever its TTL
    if (n === made) this.ringUntil = Number.NEGATIVE_INFINITY
  }

  /** The clock's time, or the store's latest time while the clock is behind it. */
  later(): number {
    const read = this.clock.now()
    // a NaN read (or one that is no number) keeps the last time; Math.max would give NaN
    return typeof read === 'number' && read > this.now ? read : this.now
  }

  /** The home of a counter key, or a new one (kept in the cache once it holds). */
  homeOf(key: string, namespace = ''): Home {
    return this.homes.get(namespace === '' ? key : namespace + key, this.now) ?? newHome()
  }

  /** A counter's cap, or its override. */
  capOf(spec: CounterSpec): number {
    const { overrides } = this
    return overrides.size === 0 ? spec.cap : (overrides.get(nameOf(spec)) ?? spec.cap)
  }

  /**
   * Keep a new reservation until it is closed or expires: under its id, or in the lane's ring
   * when `id` is `undefined` (the lane makes the id, which `remember` returns).
   */
  remember(
    counters: CounterSpec[],
    ttlMs: number,
    meta: ReservationMeta,
    id: string | undefined,
    cells: (Cell | undefined)[],
    starts: number[],
    ticket?: Ticket,
  ): string {
    const { now } = this
    const expiresAt = now + ttlMs
    const record: Record = {
      id: id ?? '',
      n: -1,
      state: 'held',
      expiresAt,
      meta,
      specs: counters,
      cells,
      starts,
      ticket: ticket?.fixed ? ticket : undefined,
      forgetAt: Number.POSITIVE_INFINITY, // a held reservation stays until it is closed or expires
      seen: false,
      due: undefined,
    }
    if (id === undefined) {
      const { slots } = this
      const { n, displaced } = slots.add(record)
      record.n = n
      record.id = slots.idOf(n)
      // one made a ring ago and still kept moves to the keyed cache, and to `due` if still open
      if (displaced !== undefined) this.displace(displaced)
      if (expiresAt >= this.ringUntil) {
        this.ringUntil = expiresAt
        if (expiresAt < this.ringNext) this.ringNext = expiresAt // a bound: it is due a little later
      } else this.due.add(record, expiresAt)
    } else {
      this.records.add(id, record, now)
      this.due.add(record, expiresAt)
    }
    return record.id
  }

  /** Keep a reservation the ring no longer holds, while it is remembered (see {@link remember}). */
  private displace(record: Record): void {
    const { now } = this
    if (record.forgetAt <= now) return
    this.records.add(record.id, record, now)
    if (record.state === 'held' && record.due === undefined) this.due.add(record, record.expiresAt)
  }

  /** The open or expired reservation of `id`. */
  find(id: string): Record | undefined {
    const record = this.slots.find(id)
    if (record === undefined) return this.records.get(id, this.now)
    if (record.forgetAt > this.now) return record
    this.slots.take(record) // expired long enough ago to be forgotten
    return undefined
  }

  /** How a reservation that is no longer kept closed, while that is remembered. */
  closedOf(id: string): Closed | undefined {
    const { slots, now } = this
    const n = slots.parse(id)
    return (n >= 0 ? slots.closed(n, now) : undefined) ?? this.closed.get(id, now)
  }

  /** Settle (`amounts`) or release (`null`) an open or expired reservation, and remember it closed. */
  finish(record: Record, amounts: Amounts, brief: boolean): CommitCounter[] {
    const { slots } = this
    this.due.remove(record)
    const counters = this.close(record, amounts, brief)
    const state = amounts === null ? 'released' : 'settled'
    const { n, id } = record
    if (n < 0 || !slots.take(record)) this.records.delete(id)
    if (n < 0 || !slots.close(n, state, this.now)) this.closed.add(id, state, this.now)
    return counters
  }

  /** Charge each of a record's cells what `amounts` says in place of its hold. */
  private close(record: Record, amounts: Amounts, brief: boolean): CommitCounter[] {
    const { ticket } = record
    if (ticket !== undefined && record.state === 'held' && this.overrides.size === 0)
      return closeHeld(record, ticket, amounts, brief)
    return this.closeEach(record, amounts, brief)
  }

  /** {@link close}, counter by counter: for any record `closeHeld` cannot close. */
  private closeEach(record: Record, amounts: Amounts, brief: boolean): CommitCounter[] {
    let counters: CommitCounter[] = brief ? NO_COUNTERS : []
    const { specs, cells } = record
    for (let i = 0; i < specs.length; i++) {
      const cell = cells[i]
      if (cell === undefined) continue
      const spec = specs[i]!
      const { kind } = spec.window
      let held: number
      let target: number
      if (kind === 'fixed' && record.state === 'held') {
        // `charge` for the common case, inline: the whole amount is still held and charged
        held = spec.amount
        target = amounts === null ? 0 : (amounts[spec.metric] ?? held)
        cell.used += target - held
        cell.held -= held
      } else {
        const hold = entryOf(record, i)
        held = hold.charged
        target = amounts === null ? 0 : (amounts[spec.metric] ?? held)
        charge(hold, cell, record.id, target, this.now)
      }
      const cap = this.capOf(spec)
      const over = kind !== 'bucket' && kind !== 'lease' ? cell.used - cap : 0
      if (brief && over <= 0) continue
      if (counters === NO_COUNTERS) counters = []
      counters.push({
        key: spec.key,
        metric: spec.metric,
        held,
        charged: target,
        overdraft: Math.max(0, over),
      })
    }
    return counters
  }

  /** Expire a held reservation: its holds stay charged, or go back (see `returnsOnExpiry`). */
  private expire(record: Record): void {
    const { specs, cells } = record
    const { now } = this
    for (let i = 0; i < specs.length; i++) {
      const cell = cells[i]
      if (cell === undefined) continue
      const hold = entryOf(record, i) // still held: charged and open are the amount
      charge(hold, cell, record.id, returnsOnExpiry(specs[i]!) ? 0 : hold.charged, now)
    }
    record.state = 'expired'
    record.forgetAt = now + this.idempotencyMs
  }

  /**
   * An open reservation dropped to keep `maxReservations` can no longer be settled: it expires at
   * once, as it would at its TTL, so that nothing (its expiry entry included) keeps it past the bound.
   */
  private evicted(record: Record): void {
    if (record.state !== 'held') return
    this.due.remove(record)
    this.expire(record)
    record.forgetAt = Number.NEGATIVE_INFINITY
  }
}
