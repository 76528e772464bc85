/**
 * `memoryStore()`: the in-process store. Bounded memory (counter windows and open
 * reservations in CLOCK caches, closed ids as hashed tombstones), expired windows
 * forgotten lazily, no timer per key: reservations expire from lists of whole seconds
 * swept at the start of every call. Its `lane` is the engine's fast path for plain
 * calendar and rolling counters (see `Lane` in the store contract).
 */
import { type Clock, checkClock, systemClock } from '../../clock.js'
import { shown } from '../../errors.js'
import type {
  CommitCounter,
  CounterResult,
  CounterSpec,
  CounterState,
  Lane,
  LaneReserve,
  ReservationMeta,
  ScannedCounter,
  Store,
  StoreCommit,
  StoreCommitResult,
  StoredReservation,
  StoreReserve,
  StoreReserveResult,
  WindowSpec,
} from '../contract.js'
import { LANE_FIELDS } from '../contract.js'
import { ClockCache, type Expiring } from './cache.js'
import {
  adjustCell,
  attach,
  type Cell,
  charge,
  dropOldSlots,
  type Home,
  hold,
  holdFixed,
  holdSliding,
  homeGone,
  homeSeen,
  inspect,
  type Look,
  locate,
  newHome,
  newLook,
} from './counters.js'
import { type Due, Expiries } from './expiry.js'
import { Marks } from './marks.js'
import { Slots } from './slots.js'
import { type Closed, Tombstones } from './tombstones.js'

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Where time comes from. Pass the same clock to the store and the tests' fake clock.
   * @default systemClock
   * @example memoryStore({ clock: fakeClock() })
   */
  clock?: Clock
  /**
   * Most counter windows kept. Past it a sixteenth of them is forgotten at once (and their
   * counts with them), the oldest not read since the last eviction pass first, so size it above
   * your live partitions × rules. Roughly 200 bytes a fixed window; a rolling one adds 16 bytes
   * a slot in use, rounded up to a power of two (about 1 kB with all 60 slots of `'60s'` in use).
   * @default 1_000_000
   * @example memoryStore({ maxCounters: 100_000 }) // about 20 MB of fixed windows at most
   */
  maxCounters?: number
  /**
   * Most reservations kept, open or expired, and separately most closed ids remembered for
   * idempotent settle, release and reserve (about 20 bytes each as hashes, 4 bits each for ids the lane
   * made). A reservation takes about 0.5 kB, up to 3 kB when each call has partitions of its own
   * (it keeps its counters' specs); the lane's ring (the power of two at or above this bound, at
   * most 16,384) comes on top. Past the bound a sixteenth of them is dropped at once, the oldest
   * not read since the last pass first; an open one dropped expires at once, as at its TTL (token and cost holds stay
   * charged unless `expiry: release`; leases free), so size it above the calls open at once.
   * @default 1_000_000
   * @example memoryStore({ maxReservations: 50_000 })
   */
  maxReservations?: number
  /**
   * How long a settled, released or abandoned reservation id is remembered, so that a duplicate
   * settle or release is recognised and a reserve under it holds nothing.
   * @default 86_400_000 (24 hours)
   * @example memoryStore({ idempotencyMs: 3_600_000 }) // an hour
   */
  idempotencyMs?: number
  /**
   * How long a counter is kept after its window ends. A late settle of a rolling window's hold
   * adjusts the slots still kept; a calendar window's late settle reaches its window through the
   * reservation itself, so for calendar windows this only keeps the counter in memory longer.
   * @default 3_600_000 (1 hour)
   * @example memoryStore({ graceMs: 600_000 }) // ten minutes
   */
  graceMs?: number
}

/** The memory store; `clock` is exposed so the engine can check it uses the same one. */
export interface MemoryStore extends Store {
  readonly clock: Clock
}

/**
 * An open or expired reservation. Closed ones leave only a tombstone. Its holds are kept as
 * parallel lists: the specs it was made with (never mutated after a reserve), the cell each
 * hold went into (`undefined` for a shadow counter that held nothing) and that cell's window
 * or slot start.
 */
interface Record extends Expiring, Due {
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

/** A hold as `charge` sees it; one object reused for every call (the store never interleaves). */
const entry = { window: undefined as unknown as WindowSpec, windowStart: 0, charged: 0, open: 0 }

/**
 * How long a breaker's refusal lasts: `wait` (the rest of its cool-down) and, past it, as long as the
 * counter itself would still refuse, so that a request made after the wait is not refused (and the
 * breaker tripped) again; `null` when the counter never admits the amount (waiting never helps).
 */
function breakerWait(wait: number, look: Look): number | null {
  if (!look.denied) return wait
  return look.retryAfterMs === null ? null : Math.max(wait, look.retryAfterMs)
}

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

/** An in-process store for one process, tests and the simulator. */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const clock = options.clock ?? systemClock
  checkClock('memoryStore', clock)
  const idempotencyMs = milliseconds('idempotencyMs', options.idempotencyMs ?? 86_400_000)
  const graceMs = milliseconds('graceMs', options.graceMs ?? 3_600_000)
  const maxReservations = count('maxReservations', options.maxReservations ?? 1_000_000)
  const homes = new ClockCache<Home>(
    count('maxCounters', options.maxCounters ?? 1_000_000),
    false,
    homeGone,
    homeSeen,
  )
  /**
   * An open reservation dropped to keep `maxReservations` can no longer be settled: it expires at
   * once, as it would at its TTL, so that nothing (its expiry entry included) keeps it past the bound.
   */
  const evicted = (record: Record) => {
    if (record.state !== 'held') return
    due.remove(record)
    expire(record)
    record.forgetAt = Number.NEGATIVE_INFINITY
  }
  const records = new ClockCache<Record>(maxReservations, true, evicted)
  const closed = new Tombstones(idempotencyMs, maxReservations)
  const slots = new Slots<Record>(maxReservations, idempotencyMs)
  const overrides = new Map<string, number>()
  const trips = new Marks()
  const blocks = new Map<string, string>()
  const due = new Expiries<Record>()
  /** Looks reused by every reserve: the store's calls never interleave. */
  const looks: Look[] = []
  let now = 0

  /**
   * The name a counter's home is kept under: its key, and its scope (tenant) when it has one, as
   * the Redis store's keys carry it, so that one key under two tenants is two counters. Keys are
   * escaped and never hold U+0000, so the name is unambiguous whatever the scope's characters.
   * Overrides are kept under the same name.
   */
  const nameOf = (spec: { key: string; scope?: string | undefined }): string =>
    spec.scope === undefined ? spec.key : `${spec.key}\u0000${spec.scope}`
  /** The home of a counter key, or a new one (added to the cache by `keep` once it holds). */
  const homeOf = (key: string, namespace = ''): Home =>
    homes.get(namespace === '' ? key : namespace + key, now) ?? newHome()
  const capOf = (spec: CounterSpec) =>
    overrides.size === 0 ? spec.cap : (overrides.get(nameOf(spec)) ?? spec.cap)
  /** Attach a new cell, and keep its home until the window ends plus the grace for late settles. */
  const keep = (key: string, window: WindowSpec, look: Look, home: Home) => {
    attach(window, look, home)
    const forgetAt = look.forgetAt === Number.POSITIVE_INFINITY ? look.forgetAt : look.forgetAt + graceMs
    if (forgetAt > home.forgetAt) home.forgetAt = forgetAt
    if (!home.seen) homes.add(key, home, now)
  }
  /** The current state of one counter, without changing it. */
  const stateOf = (spec: CounterSpec, amount: number, look: Look) => {
    const cap = capOf(spec)
    const home = homeOf(nameOf(spec))
    if (!inspect(spec.window, amount, cap, now, home, look))
      return { cap, used: 0, held: 0, resetAt: null, windowStart: now, home: null }
    return {
      cap,
      used: look.used,
      held: look.held,
      resetAt: look.resetAt,
      windowStart: look.windowStart,
      home,
    }
  }
  const close = (record: Record, amounts: globalThis.Record<string, number> | null, brief: boolean) => {
    const { ticket } = record
    if (ticket !== undefined && record.state === 'held' && overrides.size === 0)
      return closeHeld(record, ticket, amounts, brief)
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
        charge(hold, cell, record.id, target, now)
      }
      const cap = capOf(spec)
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
  const expire = (record: Record) => {
    const { specs, cells } = record
    for (let i = 0; i < specs.length; i++) {
      const cell = cells[i]
      if (cell === undefined) continue
      const hold = entryOf(record, i) // still held: charged and open are the amount
      charge(hold, cell, record.id, returnsOnExpiry(specs[i]!) ? 0 : hold.charged, now)
    }
    record.state = 'expired'
    record.forgetAt = now + idempotencyMs
  }
  const expireHeld = (record: Record) => {
    if (record.state === 'held') expire(record)
  }
  const sweep = () => due.expireDue(now, expireHeld)
  /**
   * Keep a new reservation until it is closed or expires: under its id, or in the lane's ring
   * when `id` is `undefined` (the lane makes the id, which `remember` returns).
   */
  const remember = (
    counters: CounterSpec[],
    ttlMs: number,
    meta: ReservationMeta,
    id: string | undefined,
    cells: (Cell | undefined)[],
    starts: number[],
    ticket?: Ticket,
  ): string => {
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
      const { n, displaced } = slots.add(record)
      record.n = n
      record.id = slots.idOf(n)
      // one made a ring ago and still kept moves to the keyed cache
      if (displaced !== undefined && displaced.forgetAt > now) records.add(displaced.id, displaced, now)
    } else records.add(id, record, now)
    due.add(record, expiresAt)
    return record.id
  }
  /** Settle (`amounts`) or release (`null`) an open or expired reservation, and remember it closed. */
  const finish = (record: Record, amounts: globalThis.Record<string, number> | null, brief: boolean) => {
    due.remove(record)
    const counters = close(record, amounts, brief)
    const state = amounts === null ? 'released' : 'settled'
    const { n, id } = record
    if (n < 0 || !slots.take(record)) records.delete(id)
    if (n < 0 || !slots.close(n, state, now)) closed.add(id, state, now)
    return counters
  }
  /** The open or expired reservation of `id`. */
  const find = (id: string): Record | undefined => {
    const record = slots.find(id)
    if (record === undefined) return records.get(id, now)
    if (record.forgetAt > now) return record
    slots.take(record) // expired long enough ago to be forgotten
    return undefined
  }
  /**
   * The record `lane.meta` last found, until the store's next call: the engine's settle asks for
   * a reservation's meta and then commits it, with nothing in between, so the commit needs no
   * second look-up. Nothing else can close or drop it meanwhile: every other call starts with
   * `tick`, which forgets it.
   */
  let metaOf: Record | undefined
  /** How a reservation that is no longer kept closed, while that is remembered. */
  const closedOf = (id: string): Closed | undefined => {
    const n = slots.parse(id)
    return (n >= 0 ? slots.closed(n, now) : undefined) ?? closed.get(id, now)
  }
  /**
   * A reserve under an id the store knows, as the Redis store answers it: the reservation is open
   * (a reserve replayed after its answer was lost), so nothing is held again and nothing refuses,
   * trips or throttles, and the answer is `ok` with each counter as it is now (this hold included),
   * or `skew`; or it is closed (settled, released, expired, abandoned while its reserve was on its
   * way, or held past its expiry), so nothing changes and the reserve throws. `record` is the open
   * or expired reservation, `undefined` for a closed id.
   */
  const replay = (input: StoreReserve, record: Record | undefined): StoreReserveResult => {
    if (record === undefined || record.state !== 'held' || record.expiresAt <= now)
      throw Object.assign(
        new Error(
          `tollgate: reservation id ${JSON.stringify(input.id)} was used before and is closed; nothing was held`,
        ),
        { code: 'reservation_closed' },
      )
    for (const spec of input.counters) {
      if (spec.window.kind === 'fixed' && locate(spec.window.bounds, now) < 0) return { status: 'skew', now }
    }
    const look = newLook()
    const counters = input.counters.map((spec): CounterResult => {
      const { home: _, ...state } = stateOf(spec, spec.amount, look)
      return {
        ...state,
        denied: false,
        retryAfterMs: null,
        crossed: NONE,
        tripped: false,
        trippedNow: false,
        throttled: false,
      }
    })
    return { status: 'ok', now, counters }
  }
  /** The lists every ticket of the same counters' metrics, amounts and caps shares (see `Shared`). */
  const shared = new Map<string, Shared>()
  /** Scratch of the lane's first pass: the home and window index of each counter. */
  const laneHomes: (Home | undefined)[] = []
  const laneAt: number[] = []
  /**
   * Read the clock once per call and process what expired. The store's time never goes back: when
   * the clock steps back (an NTP correction), it keeps its latest time until the clock passes it
   * again. A counter keeps one window's cell, so going back to an earlier window would start it
   * afresh, and coming forward again would start the later one afresh too: counts lost both ways.
   */
  const tick = () => {
    metaOf = undefined
    now = later()
    sweep()
    return now
  }
  /** The clock's time, or the store's latest time while the clock is behind it. */
  const later = () => {
    const read = clock.now()
    // a NaN read (or one that is no number) keeps the last time; Math.max would give NaN
    return typeof read === 'number' && read > now ? read : now
  }

  const self: MemoryStore & { lane: Lane } = {
    clock,
    now: later,

    reserve(input: StoreReserve): StoreReserveResult {
      tick()
      // The same id again (a replay: see `replay`). Ids the engine makes are new: one Map look-up,
      // then the closed ids' tables. The lane makes its own ids and never comes here.
      const known = find(input.id)
      if (known !== undefined || closedOf(input.id) !== undefined) return replay(input, known)
      for (const marker of input.blocks) {
        const code = blocks.get(marker)
        if (code !== undefined) return { status: 'blocked', now, block: marker, code }
      }
      // Skew first, before a breaker trips: the engine retries with fresh bounds under the same id.
      for (const spec of input.counters) {
        if (spec.window.kind === 'fixed' && locate(spec.window.bounds, now) < 0)
          return { status: 'skew', now }
      }
      const specs = input.counters
      const count = specs.length
      while (looks.length < count) looks.push(newLook())
      let gates: (Look | undefined)[] | undefined
      const counters: CounterResult[] = new Array(count)
      let denied = false
      for (let i = 0; i < count; i++) {
        const spec = specs[i]!
        const cap = capOf(spec)
        const look = looks[i]!
        const home = homeOf(nameOf(spec))
        inspect(spec.window, spec.amount, cap, now, home, look)
        look.home = home
        const result: CounterResult = {
          cap,
          used: look.used,
          held: look.held,
          resetAt: look.resetAt,
          windowStart: look.windowStart,
          denied: look.denied,
          retryAfterMs: look.retryAfterMs,
          crossed: NONE,
          tripped: false,
          trippedNow: false,
          throttled: false,
        }
        const trippedUntil = trips.size === 0 ? undefined : trips.get(nameOf(spec), now)
        if (trippedUntil !== undefined) {
          result.denied = true
          result.tripped = true
          result.retryAfterMs = breakerWait(trippedUntil - now, look)
        } else if (spec.trip && look.denied && spec.enforce) {
          trips.set(nameOf(spec), now + spec.trip.cooldownMs, now)
          result.tripped = true
          result.trippedNow = true
          result.retryAfterMs = breakerWait(spec.trip.cooldownMs, look)
        } else if (!look.denied && spec.throttle && look.used + spec.amount >= spec.throttle.at * cap) {
          const throttle = throttleSpec(spec)
          const gate = newLook()
          inspect(throttle.window, throttle.amount, throttle.cap, now, homeOf(nameOf(throttle), '#'), gate)
          gates ??= new Array(count)
          gates[i] = gate
          if (gate.denied) {
            result.denied = true
            result.throttled = true
            result.retryAfterMs = gate.retryAfterMs
          }
        }
        if (result.denied && spec.enforce) denied = true
        counters[i] = result
      }
      if (denied) return { status: 'denied', now, counters }
      const cells: (Cell | undefined)[] = new Array(count)
      const starts: number[] = new Array(count)
      for (let i = 0; i < count; i++) {
        const spec = specs[i]!
        const result = counters[i]!
        const look = looks[i]!
        starts[i] = look.windowStart
        if (result.denied) continue // a shadow counter that would refuse holds nothing
        const gate = gates?.[i]
        if (gate) {
          const throttle = throttleSpec(spec)
          hold(throttle, gate, input.id, now)
          keep(`#${nameOf(throttle)}`, throttle.window, gate, homeOf(nameOf(throttle), '#'))
        }
        result.resetAt = hold(spec, look, input.id, now)
        keep(nameOf(spec), spec.window, look, look.home!)
        const cell = look.cell
        cells[i] = cell
        result.used = spec.window.kind === 'bucket' ? result.used + spec.amount : cell.used
        result.held = cell.held
        if (spec.alerts) result.crossed = crossedAlerts(spec, cell, result.cap)
      }
      remember(input.counters, input.ttlMs, input.meta, input.id, cells, starts)
      return { status: 'ok', now, counters }
    },

    lane: {
      store: undefined as unknown as Store, // set below
      now: tick,
      meta(id: string) {
        const record = find(id)
        // the engine's settle asks for the meta, then commits: remember which record that was
        metaOf = record
        return record?.meta
      },
      close(id: string, amounts: globalThis.Record<string, number> | null): CommitCounter[] | undefined {
        const record = metaOf
        tick() // forgets `metaOf`; may expire the record (then no longer held: the commit decides)
        if (record === undefined || record.id !== id || record.state !== 'held') return undefined
        return finish(record, amounts, true)
      },
      reserve(input: LaneReserve, meta: ReservationMeta, out: number[]): string | undefined {
        if (blocks.size > 0) for (const marker of input.blocks) if (blocks.has(marker)) return undefined
        const specs = input.counters
        const { ttlMs } = input
        const count = specs.length
        // what this lane last found for these counters (see `Ticket`): the caller sends the same
        // input object again while no spec changed, so the next reserve reads each home without a
        // look-up. A ticket is for one specs array on one store: any other gets a new one.
        let ticket = input.memo as Ticket | undefined
        if (ticket === undefined || ticket.specs !== specs || ticket.owner !== shared) {
          ticket = newTicket(specs, shared)
          input.memo = ticket
        } else if (now < ticket.until && overrides.size === 0 && trips.size === 0) {
          const held = holdAgain(ticket, out)
          if (held) return remember(specs, ttlMs, meta, undefined, ticket.cells, ticket.starts, ticket)
        }
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
          else known[i] = home = homeOf(nameOf(spec))
          let used = 0
          if (window.kind === 'fixed') {
            const at = locate(window.bounds, now)
            if (at < 0) return undefined
            if (home.fixed !== undefined && home.start === window.bounds[at]!) used = home.fixed.used
            laneAt[i] = at
          } else if (window.kind === 'sliding') {
            if (home.sliding !== undefined) {
              dropOldSlots(home.sliding, window, now)
              used = home.sliding.used
            }
          } else return undefined
          if (used + spec.amount > capOf(spec)) return undefined
          laneHomes[i] = home
        }
        // the cells and starts of the last reservation on these counters, while they are the same
        // (the same windows): records never change them, so they can share one pair of arrays
        let { cells, starts } = ticket
        let same = cells.length === count
        if (!same) {
          cells = new Array(count)
          starts = new Array(count)
        }
        let until = Number.POSITIVE_INFINITY // the earliest end of a calendar window held, if all are
        for (let i = 0, o = 0; i < count; i++, o += LANE_FIELDS) {
          const spec = specs[i]!
          const home = laneHomes[i]!
          laneHomes[i] = undefined
          const cell =
            spec.window.kind === 'fixed'
              ? holdFixed(spec, home, laneAt[i]!, graceMs, out, o)
              : holdSliding(spec, home, now, graceMs, out, o)
          if (!home.seen) homes.add(nameOf(spec), home, now)
          if (same && (cells[i] !== cell || starts[i] !== out[o + 4])) {
            same = false
            cells = cells.slice(0, i)
            starts = starts.slice(0, i)
          }
          if (!same) {
            cells[i] = cell
            starts[i] = out[o + 4]!
          }
          out[o] = capOf(spec)
          out[o + 1] = cell.used
          out[o + 2] = cell.held
          const end = out[o + 3]!
          ticket.resets[i] = end
          if (spec.window.kind !== 'fixed') until = Number.NEGATIVE_INFINITY
          else if (end < until) until = end // NaN (a lifetime window) never ends
        }
        if (!same) {
          ticket.cells = cells
          ticket.starts = starts
        }
        ticket.until = until
        return remember(specs, ttlMs, meta, undefined, cells, starts, ticket)
      },
    },

    commit(input: StoreCommit): StoreCommitResult {
      const asked = metaOf
      tick()
      const { id } = input
      const record = asked !== undefined && asked.id === id && asked.forgetAt > now ? asked : find(id)
      if (!record) {
        const state = closedOf(id)
        if (state) return { status: 'duplicate', previous: state }
        // abandoned before its reserve arrived (if it ever does): remembered as released, so that
        // the reserve holds nothing (see `replay`)
        if (input.abandon === true && input.amounts === null) closed.add(id, 'released', now)
        return { status: 'unknown' }
      }
      const late = record.state === 'expired'
      const counters = finish(record, input.amounts, input.brief === true)
      return { status: input.amounts === null ? 'released' : 'settled', late, counters }
    },

    read(specs: CounterSpec[]): CounterState[] {
      tick()
      const look = newLook()
      return specs.map((spec) => {
        const { home: _, ...state } = stateOf(spec, 0, look)
        return state
      })
    },

    adjust(spec: CounterSpec, amount: number): CounterState {
      tick()
      const look = newLook()
      const { home, ...state } = stateOf(spec, 0, look)
      if (!home) return state
      adjustCell(spec.window, look, amount)
      keep(nameOf(spec), spec.window, look, home)
      return { ...state, used: look.cell.used, held: look.cell.held }
    },

    scan(counter: CounterSpec, max: number): ScannedCounter[] {
      tick()
      const found: ScannedCounter[] = []
      const look = newLook()
      for (const [name, home] of homes.entries(now)) {
        if (found.length >= max) break
        if (!name.startsWith(counter.key)) continue
        // the key, without the scope its home is kept under (see nameOf)
        const end = name.indexOf('\u0000')
        const key = end < 0 ? name : name.slice(0, end)
        const scope = end < 0 ? undefined : name.slice(end + 1)
        const cap = overrides.get(name) ?? counter.cap
        if (!inspect(counter.window, 0, cap, now, home, look) || look.created) continue
        const state = {
          cap,
          used: look.used,
          held: look.held,
          resetAt: look.resetAt,
          windowStart: look.windowStart,
        }
        found.push(scope === undefined ? { key, state } : { key, scope, state })
      }
      return found
    },

    setOverride(key: string, cap: number | null, scope?: string) {
      const name = nameOf({ key, scope })
      if (cap === null) overrides.delete(name)
      else overrides.set(name, cap)
    },

    block(marker: string, code: string | null) {
      if (code === null) blocks.delete(marker)
      else blocks.set(marker, code)
    },

    blocked(markers: string[]) {
      for (const marker of markers) {
        const code = blocks.get(marker)
        if (code !== undefined) return { marker, code }
      }
      return null
    },

    lookup(id: string): StoredReservation | null {
      tick()
      const record = find(id)
      if (record) return { id, state: record.state, expiresAt: record.expiresAt, meta: record.meta }
      const state = closedOf(id)
      return state ? { id, state, expiresAt: now, meta: { model: '' } } : null
    },
  }
  self.lane.store = self
  return self
}

/** An option that is a whole number of at least 1. */
function count(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1)
    throw new TypeError(`memoryStore: ${name} must be a whole number of at least 1, got ${shown(value)}`)
  return value as number
}

/** An option that is a duration: a finite number of milliseconds, 0 or more. */
function milliseconds(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new TypeError(
      `memoryStore: ${name} must be a number of milliseconds, 0 or more, got ${shown(value)}`,
    )
  return value
}

/** Shared empty list for counters that crossed no alert. */
const NONE: number[] = []
/**
 * What the lane knows of a counters array: each counter's home, amount and cap (specs never
 * change), and the cells it last held in with their windows' starts and ends. While those cells
 * are their homes' current windows (`until`: the first of them to end, when all are calendar
 * windows), the next reserve holds in them again without reading the specs (`holdAgain`).
 */
interface Ticket {
  /** The counters this ticket is for. */
  specs: readonly CounterSpec[]
  /** The store whose homes and cells it holds (its `shared` map, one per store). */
  owner: unknown
  homes: (Home | undefined)[]
  /** Every counter is a calendar window (so a held record's settle is {@link closeHeld}'s). */
  fixed: boolean
  metrics: string[]
  /** Each counter's metric as a {@link METRIC_CODES} code (0: a custom unit), for {@link usedOf}. */
  codes: number[]
  amounts: number[]
  caps: number[]
  cells: Cell[]
  starts: number[]
  /** Each window's end as the lane reports it (`NaN` for a lifetime window). */
  resets: number[]
  /** The cells may be held in again while the store's time is before this. */
  until: number
}
const NO_CELLS: Cell[] = []
const NO_STARTS: number[] = []

/**
 * A ticket's lists that only depend on its counters' metrics, amounts and caps: equal for every
 * partition of the same rules (every user's counters under one policy), so one copy is shared. A
 * ticket is kept for each plan the engine sends, thousands at once. Never changed once made.
 */
type Shared = Pick<Ticket, 'metrics' | 'codes' | 'amounts' | 'caps'>
/** Most distinct {@link Shared} lists kept; past it they start over (tickets keep theirs). */
const MAX_SHARED = 4_096

function sharedOf(specs: readonly CounterSpec[], shared: Map<string, Shared>): Shared {
  // most new tickets have the lists of the one made before (a new user under the same rules):
  // compared first, which costs less than making the key
  const last = shared.get(LAST)
  if (last !== undefined && alike(last, specs)) return last
  const metrics = specs.map((spec) => spec.metric)
  const amounts = specs.map((spec) => spec.amount)
  const caps = specs.map((spec) => spec.cap)
  // numbers as `join` writes them (JSON would write NaN and Infinity alike, as null)
  const key = `${JSON.stringify(metrics)}${amounts.join()}|${caps.join()}`
  let found = shared.get(key)
  if (found === undefined) {
    if (shared.size >= MAX_SHARED) shared.clear()
    found = { metrics, codes: metrics.map((metric) => METRIC_CODES[metric] ?? 0), amounts, caps }
    shared.set(key, found)
  }
  shared.set(LAST, found)
  return found
}

/** The key under which {@link sharedOf} keeps the lists it answered last (no other key is empty). */
const LAST = ''

/** Whether `lists` are those of `specs` (metrics, amounts and caps, in order; NaN equal to NaN). */
function alike(lists: Shared, specs: readonly CounterSpec[]): boolean {
  const { metrics, amounts, caps } = lists
  if (metrics.length !== specs.length) return false
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!
    if (metrics[i] !== spec.metric || !Object.is(amounts[i], spec.amount) || !Object.is(caps[i], spec.cap))
      return false
  }
  return true
}

function newTicket(specs: readonly CounterSpec[], shared: Map<string, Shared>): Ticket {
  // a literal, not a spread: an object built by a spread is slower to read (bench/README.md)
  const { metrics, codes, amounts, caps } = sharedOf(specs, shared)
  return {
    specs,
    owner: shared,
    homes: specs.map(() => undefined),
    fixed: specs.every((spec) => spec.window.kind === 'fixed'),
    metrics,
    codes,
    amounts,
    caps,
    cells: NO_CELLS, // never written to: the first hold makes the arrays
    starts: NO_STARTS,
    resets: specs.map(() => 0),
    until: Number.NEGATIVE_INFINITY,
  }
}

/**
 * Hold again in the cells of a ticket's last reservation (the caller checked that their windows
 * still run, and that no override or breaker is set): `true` when every cell is still its home's
 * and admits its amount, having held each and written the lane's answer to `out`; `false`, having
 * changed nothing, when the lane's full path must decide.
 *
 * The homes themselves are not read: a user's homes are rarely in the processor's cache, and reading
 * them was 7% of a reserve+settle. Within the windows the cells were held in, a home keeps its cell
 * unless another window's cell replaces it or the cache drops the home, either of which marks the
 * cell `gone`; a cell held in is marked `seen`, which the cache counts as a read of its home
 * (`homeSeen`).
 */
function holdAgain(ticket: Ticket, out: number[]): boolean {
  const { cells, amounts, caps } = ticket
  const count = cells.length
  for (let i = 0; i < count; i++) {
    const cell = cells[i]!
    if (cell.gone || cell.used + amounts[i]! > caps[i]!) return false
  }
  const { starts, resets } = ticket
  for (let i = 0, o = 0; i < count; i++, o += LANE_FIELDS) {
    const cell = cells[i]!
    const amount = amounts[i]!
    cell.seen = true
    cell.used += amount
    cell.held += amount
    out[o] = caps[i]!
    out[o + 1] = cell.used
    out[o + 2] = cell.held
    out[o + 3] = resets[i]!
    out[o + 4] = starts[i]!
  }
  return true
}

/**
 * Close a held reservation on calendar windows, no override set (the store's `close` for the
 * common case, from its ticket's arrays rather than its specs): charge each cell the actual
 * amount for its metric in place of the hold, and list the counters past their cap (all when
 * not `brief`).
 */
function closeHeld(
  record: Record,
  ticket: Ticket,
  amounts: globalThis.Record<string, number> | null,
  brief: boolean,
): CommitCounter[] {
  let counters: CommitCounter[] = brief ? NO_COUNTERS : []
  const { cells } = record
  const { metrics, codes, caps } = ticket
  const holds = ticket.amounts
  for (let i = 0; i < cells.length; i++) {
    const cell = cells[i]!
    const held = holds[i]!
    const target = amounts === null ? 0 : (usedOf(amounts, codes[i]!, metrics[i]!) ?? held)
    cell.used += target - held
    cell.held -= held
    const over = cell.used - caps[i]!
    if (brief && over <= 0) continue
    if (counters === NO_COUNTERS) counters = []
    counters.push({
      key: record.specs[i]!.key,
      metric: metrics[i]!,
      held,
      charged: target,
      overdraft: Math.max(0, over),
    })
  }
  return counters
}

/** Codes of the builtin metrics (see {@link usedOf}); a custom unit has none. */
const METRIC_CODES: Readonly<globalThis.Record<string, number>> = {
  __proto__: null,
  requests: 1,
  tokens: 2,
  inputTokens: 3,
  outputTokens: 4,
  cost: 5,
  concurrency: 6,
} as never

/**
 * The amount of a metric in a settle's amounts. Builtin metrics are read by name: a look-up by a
 * computed name, six per settle, cost about 4% of a reserve+settle (an A/B of builds, 2026-12-07).
 */
function usedOf(
  amounts: globalThis.Record<string, number>,
  code: number,
  metric: string,
): number | undefined {
  switch (code) {
    case 1:
      return amounts.requests
    case 2:
      return amounts.tokens
    case 3:
      return amounts.inputTokens
    case 4:
      return amounts.outputTokens
    case 5:
      return amounts.cost
    case 6:
      return amounts.concurrency
    default:
      return Object.hasOwn(amounts, metric) ? amounts[metric] : undefined
  }
}

/** Shared empty list for a brief commit with nothing past its cap (replaced, never pushed to). */
const NO_COUNTERS: CommitCounter[] = []

/** The companion bucket a throttle counts in: `limit` requests per `periodMs`, burst `limit`. */
function throttleSpec(spec: CounterSpec): CounterSpec {
  const { limit, periodMs } = spec.throttle!
  return {
    key: `${spec.key}#throttle`,
    ...(spec.scope === undefined ? {} : { scope: spec.scope }),
    metric: 'requests',
    amount: 1,
    cap: limit,
    enforce: spec.enforce,
    window: { kind: 'bucket', intervalMs: periodMs / limit },
    expiry: 'keep',
  }
}

/** Alert fractions newly crossed on `cell`, each once per window (rolling windows re-arm below a threshold). */
function crossedAlerts(spec: CounterSpec, cell: Cell, cap: number): number[] {
  const alerts = spec.alerts!
  // a rolling window re-arms by the usage before this hold: one request taking it from below a
  // threshold to above must cross it again (measured after the hold, it never re-armed)
  const before = cell.used - spec.amount
  if (spec.window.kind === 'sliding')
    while (cell.alerted > 0 && before < alerts[cell.alerted - 1]! * cap) cell.alerted--
  const crossed: number[] = []
  while (cell.alerted < alerts.length && cell.used >= alerts[cell.alerted]! * cap)
    crossed.push(alerts[cell.alerted++]!)
  return crossed
}
