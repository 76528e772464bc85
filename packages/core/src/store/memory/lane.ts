/**
 * The memory store's lane (`Lane` in the store contract): the engine's fast path for plain
 * calendar and rolling counters. A class for the reason the ledger is one (see `ledger.ts`).
 */
import type { CommitCounter, Lane, LaneReserve, ReservationMeta, Store } from '../contract.js'
import { LANE_FIELDS } from '../contract.js'
import { dropOldSlots, type Home, holdFixed, holdSliding, locate } from './counters.js'
import { type Ledger, nameOf } from './ledger.js'
import { holdAgain, newTicket, type Shared, type Ticket } from './ticket.js'

export class MemoryLane implements Lane {
  /** The store this lane belongs to (set by the store once it is made). */
  store: Store
  private readonly ledger: Ledger
  /** The lists every ticket of alike counters shares (see `Shared`). */
  private readonly shared: Map<string, Shared>
  /** Scratch of {@link afresh}'s first pass: the home and window index of each counter. */
  private readonly homes: (Home | undefined)[]
  private readonly at: number[]

  constructor(ledger: Ledger) {
    this.store = undefined as unknown as Store
    this.ledger = ledger
    this.shared = new Map()
    this.homes = []
    this.at = []
  }

  now(): number {
    return this.ledger.tick()
  }

  meta(id: string): ReservationMeta | undefined {
    const { ledger } = this
    const record = ledger.find(id)
    // the engine's settle asks for the meta, then commits: remember which record that was
    ledger.metaOf = record
    return record?.meta
  }

  close(id: string, amounts: Record<string, number> | null): CommitCounter[] | undefined {
    const { ledger } = this
    const record = ledger.metaOf
    ledger.tick() // forgets `metaOf`; may expire the record (then no longer held: the commit decides)
    if (record === undefined || record.id !== id || record.state !== 'held') return undefined
    return ledger.finish(record, amounts, true)
  }

  reserve(input: LaneReserve, meta: ReservationMeta, out: number[]): string | undefined {
    const { ledger } = this
    const { blocks } = ledger
    if (blocks.size > 0) for (const marker of input.blocks) if (blocks.has(marker)) return undefined
    const specs = input.counters
    // what this lane last found for these counters (see `Ticket`): the caller sends the same
    // input object again while no spec changed, so the next reserve reads each home without a
    // look-up. A ticket is for one specs array on one store: any other gets a new one.
    let ticket = input.memo as Ticket | undefined
    if (ticket === undefined || ticket.specs !== specs || ticket.owner !== this.shared) {
      ticket = newTicket(specs, this.shared)
      input.memo = ticket
    } else if (ledger.now < ticket.until && ledger.overrides.size === 0 && ledger.trips.size === 0) {
      const held = holdAgain(ticket, out, ledger.now)
      if (held)
        return ledger.remember(specs, input.ttlMs, meta, undefined, ticket.cells, ticket.starts, ticket)
    }
    return this.afresh(input, ticket, meta, out)
  }

  /**
   * {@link reserve} when its ticket cannot hold again as it is (see `holdAgain`): each counter
   * looked at, then held. Apart, so that `reserve`, which answers most calls without it, stays
   * small.
   */
  private afresh(
    input: LaneReserve,
    ticket: Ticket,
    meta: ReservationMeta,
    out: number[],
  ): string | undefined {
    const { ledger, homes, at } = this
    const { now, trips, graceMs } = ledger
    const specs = input.counters
    const count = specs.length
    const known = ticket.homes
    // First pass: every counter must be a plain calendar or rolling window that admits. Nothing
    // changes but the dropping of rolling slots already out of their window, as any look does.
    for (let i = 0; i < count; i++) {
      const spec = specs[i]!
      const { window } = spec
      if (spec.alerts || spec.trip || spec.throttle) return undefined
      if (trips.size > 0 && trips.has(nameOf(spec))) return undefined
      // a remembered home, marked seen as `homes.get` would; else the cache's
      let home = known[i]
      if (home !== undefined && home.forgetAt > now) home.seen = true
      else known[i] = home = ledger.homeOf(nameOf(spec))
      let used = 0
      if (window.kind === 'fixed') {
        const index = locate(window.bounds, now)
        if (index < 0) return undefined
        if (home.fixed !== undefined && home.start === window.bounds[index]!) used = home.fixed.used
        at[i] = index
      } else if (window.kind === 'sliding') {
        if (home.sliding !== undefined) {
          dropOldSlots(home.sliding, window, now)
          used = home.sliding.used
        }
      } else return undefined
      if (used + spec.amount > ledger.capOf(spec)) return undefined
      homes[i] = home
    }
    // the cells and starts of the last reservation on these counters, while they are the same
    // (the same windows): records never change them, so they can share one pair of arrays
    let { cells, starts } = ticket
    let same = cells.length === count
    if (!same) {
      cells = new Array(count)
      starts = new Array(count)
    }
    let until = Number.POSITIVE_INFINITY // the earliest end of a calendar window held (see `Ticket`)
    for (let i = 0, o = 0; i < count; i++, o += LANE_FIELDS) {
      const spec = specs[i]!
      const home = homes[i]!
      homes[i] = undefined
      const cell =
        spec.window.kind === 'fixed'
          ? holdFixed(spec, home, at[i]!, graceMs, out, o)
          : holdSliding(spec, home, now, graceMs, out, o)
      if (!home.seen) ledger.homes.add(nameOf(spec), home, now)
      if (same && (cells[i] !== cell || starts[i] !== out[o + 4])) {
        same = false
        cells = cells.slice(0, i)
        starts = starts.slice(0, i)
      }
      if (!same) {
        cells[i] = cell
        starts[i] = out[o + 4]!
      }
      out[o] = ledger.capOf(spec)
      out[o + 1] = cell.used
      out[o + 2] = cell.held
      const end = out[o + 3]!
      ticket.resets[i] = end
      // NaN (a lifetime window) never ends; a rolling window's slot is `holdAgain`'s to check
      if (spec.window.kind === 'fixed' && end < until) until = end
    }
    if (!same) {
      ticket.cells = cells
      ticket.starts = starts
    }
    ticket.until = until
    return ledger.remember(specs, input.ttlMs, meta, undefined, cells, starts, ticket)
  }
}
