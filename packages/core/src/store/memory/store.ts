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
  CounterResult,
  CounterSpec,
  CounterState,
  Lane,
  ScannedCounter,
  Store,
  StoreCommit,
  StoreCommitResult,
  StoredReservation,
  StoreReserve,
  StoreReserveResult,
  WindowSpec,
} from '../contract.js'
import {
  adjustCell,
  attach,
  type Cell,
  type Home,
  hold,
  inspect,
  type Look,
  locate,
  newLook,
} from './counters.js'
import { MemoryLane } from './lane.js'
import { Ledger, nameOf, type Record } from './ledger.js'

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
 * How long a breaker's refusal lasts: `wait` (the rest of its cool-down) and, past it, as long as the
 * counter itself would still refuse, so that a request made after the wait is not refused (and the
 * breaker tripped) again; `null` when the counter never admits the amount (waiting never helps).
 */
function breakerWait(wait: number, look: Look): number | null {
  if (!look.denied) return wait
  return look.retryAfterMs === null ? null : Math.max(wait, look.retryAfterMs)
}

/** An in-process store for one process, tests and the simulator. */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const clock = options.clock ?? systemClock
  checkClock('memoryStore', clock)
  const ledger = new Ledger({
    clock,
    idempotencyMs: milliseconds('idempotencyMs', options.idempotencyMs ?? 86_400_000),
    graceMs: milliseconds('graceMs', options.graceMs ?? 3_600_000),
    maxReservations: count('maxReservations', options.maxReservations ?? 1_000_000),
    maxCounters: count('maxCounters', options.maxCounters ?? 1_000_000),
  })
  const { homes, closed, overrides, trips, blocks, graceMs } = ledger
  const lane = new MemoryLane(ledger)
  /** Looks reused by every reserve: the store's calls never interleave. */
  const looks: Look[] = []

  /** Attach a new cell, and keep its home until the window ends plus the grace for late settles. */
  const keep = (key: string, window: WindowSpec, look: Look, home: Home) => {
    attach(window, look, home)
    const forgetAt = look.forgetAt === Number.POSITIVE_INFINITY ? look.forgetAt : look.forgetAt + graceMs
    if (forgetAt > home.forgetAt) home.forgetAt = forgetAt
    if (!home.seen) homes.add(key, home, ledger.now)
  }
  /** The current state of one counter, without changing it. */
  const stateOf = (spec: CounterSpec, amount: number, look: Look) => {
    const { now } = ledger
    const cap = ledger.capOf(spec)
    const home = ledger.homeOf(nameOf(spec))
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
  /**
   * A reserve under an id the store knows, as the Redis store answers it: the reservation is open
   * (a reserve replayed after its answer was lost), so nothing is held again and nothing refuses,
   * trips or throttles, and the answer is `ok` with each counter as it is now (this hold included),
   * or `skew`; or it is closed (settled, released, expired, abandoned while its reserve was on its
   * way, or held past its expiry), so nothing changes and the reserve throws. `record` is the open
   * or expired reservation, `undefined` for a closed id.
   */
  const replay = (input: StoreReserve, record: Record | undefined): StoreReserveResult => {
    const { now } = ledger
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

  const self: MemoryStore & { lane: Lane } = {
    clock,
    now: () => ledger.later(),

    reserve(input: StoreReserve): StoreReserveResult {
      const now = ledger.tick()
      // The same id again (a replay: see `replay`). Ids the engine makes are new: one Map look-up,
      // then the closed ids' tables. The lane makes its own ids and never comes here.
      const known = ledger.find(input.id)
      if (known !== undefined || ledger.closedOf(input.id) !== undefined) return replay(input, known)
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
        const cap = ledger.capOf(spec)
        const look = looks[i]!
        const home = ledger.homeOf(nameOf(spec))
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
          inspect(
            throttle.window,
            throttle.amount,
            throttle.cap,
            now,
            ledger.homeOf(nameOf(throttle), '#'),
            gate,
          )
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
          keep(`#${nameOf(throttle)}`, throttle.window, gate, ledger.homeOf(nameOf(throttle), '#'))
        }
        result.resetAt = hold(spec, look, input.id, now)
        keep(nameOf(spec), spec.window, look, look.home!)
        const cell = look.cell
        cells[i] = cell
        result.used = spec.window.kind === 'bucket' ? result.used + spec.amount : cell.used
        result.held = cell.held
        if (spec.alerts) result.crossed = crossedAlerts(spec, cell, result.cap)
      }
      ledger.remember(input.counters, input.ttlMs, input.meta, input.id, cells, starts)
      return { status: 'ok', now, counters }
    },

    lane,

    commit(input: StoreCommit): StoreCommitResult {
      const asked = ledger.metaOf
      const now = ledger.tick()
      const { id } = input
      const record = asked !== undefined && asked.id === id && asked.forgetAt > now ? asked : ledger.find(id)
      if (!record) {
        const state = ledger.closedOf(id)
        if (state) return { status: 'duplicate', previous: state }
        // abandoned before its reserve arrived (if it ever does): remembered as released, so that
        // the reserve holds nothing (see `replay`)
        if (input.abandon === true && input.amounts === null) closed.add(id, 'released', now)
        return { status: 'unknown' }
      }
      const late = record.state === 'expired'
      const counters = ledger.finish(record, input.amounts, input.brief === true)
      return { status: input.amounts === null ? 'released' : 'settled', late, counters }
    },

    read(specs: CounterSpec[]): CounterState[] {
      ledger.tick()
      const look = newLook()
      return specs.map((spec) => {
        const { home: _, ...state } = stateOf(spec, 0, look)
        return state
      })
    },

    adjust(spec: CounterSpec, amount: number): CounterState {
      ledger.tick()
      const look = newLook()
      const { home, ...state } = stateOf(spec, 0, look)
      if (!home) return state
      adjustCell(spec.window, look, amount)
      keep(nameOf(spec), spec.window, look, home)
      return { ...state, used: look.cell.used, held: look.cell.held }
    },

    scan(counter: CounterSpec, max: number): ScannedCounter[] {
      const now = ledger.tick()
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
      const now = ledger.tick()
      const record = ledger.find(id)
      if (record) return { id, state: record.state, expiresAt: record.expiresAt, meta: record.meta }
      const state = ledger.closedOf(id)
      return state ? { id, state, expiresAt: now, meta: { model: '' } } : null
    },
  }
  lane.store = self
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
