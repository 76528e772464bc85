/**
 * `memoryStore()`: the in-process store. Bounded memory (two LRU caches), expired
 * windows forgotten lazily, no timer per key: reservations expire from a heap of
 * whole seconds swept at the start of every call.
 */
import { LRUCache } from 'lru-cache'
import { type Clock, systemClock } from '../../clock.js'
import type {
  CommitCounter,
  CounterResult,
  CounterSpec,
  CounterState,
  ReservationMeta,
  Store,
  StoreCommit,
  StoreCommitResult,
  StoreReserve,
  StoreReserveResult,
  StoredReservation,
  WindowSpec,
} from '../contract.js'
import { adjustCell, type Cell, charge, hold, inspect, type Look, locate } from './counters.js'
import { TimeHeap } from './heap.js'

export interface MemoryStoreOptions {
  /**
   * Where time comes from. Pass the same clock to the store and the tests' fake clock.
   * @default systemClock
   * @example memoryStore({ clock: fakeClock() })
   */
  clock?: Clock
  /**
   * Most counter windows kept. Past it the least recently used window is forgotten
   * (and its count with it), so size it above your live partitions × rules.
   * Roughly 200 bytes a fixed window, 1 kB a rolling one.
   * @default 1_000_000
   */
  maxCounters?: number
  /**
   * Most reservations kept, open or recently closed (for idempotent settle and release).
   * @default 1_000_000
   */
  maxReservations?: number
  /**
   * How long a settled or released reservation id is remembered, so that a duplicate
   * settle or release is recognised.
   * @default 86_400_000 (24 hours)
   */
  idempotencyMs?: number
  /**
   * How long a closed calendar or rolling window is kept after it ends, so that a late
   * settle still adjusts it in usage reports.
   * @default 3_600_000 (1 hour)
   */
  graceMs?: number
}

/** The memory store; `clock` is exposed so the engine can check it uses the same one. */
export interface MemoryStore extends Store {
  readonly clock: Clock
}

interface Entry {
  key: string
  metric: string
  cellKey: string
  cap: number
  window: WindowSpec
  windowStart: number
  charged: number
  open: number
  expiry: 'keep' | 'release'
}

interface Record {
  id: string
  state: StoredReservation['state']
  expiresAt: number
  meta: ReservationMeta
  entries: Entry[]
}

const SECOND = 1_000

/** An in-process store for one process, tests and the simulator. */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const clock = options.clock ?? systemClock
  const idempotencyMs = options.idempotencyMs ?? 86_400_000
  const graceMs = options.graceMs ?? 3_600_000
  const perf = { now: () => clock.now() }
  // A count bound through maxSize: lru-cache preallocates arrays for `max` (about 200 ms at 1e6), not for maxSize.
  const one = () => 1
  const cells = new LRUCache<string, Cell>({ maxSize: options.maxCounters ?? 1_000_000, sizeCalculation: one, perf, ttlResolution: 0 })
  const records = new LRUCache<string, Record>({
    maxSize: options.maxReservations ?? 1_000_000,
    sizeCalculation: one,
    perf,
    ttlResolution: 0,
  })
  const overrides = new Map<string, number>()
  const trips = new Map<string, number>()
  const blocks = new Map<string, string>()
  const due = new TimeHeap()
  const dueIds = new Map<number, Set<string>>()

  const get = (key: string) => cells.get(key)
  const capOf = (spec: CounterSpec) => overrides.get(spec.key) ?? spec.cap
  const keep = (look: Look, now: number) => {
    const ttl = look.forgetAt === Number.POSITIVE_INFINITY ? 0 : Math.max(1, look.forgetAt - now + graceMs)
    cells.set(look.cellKey, look.cell, { ttl })
  }
  const close = (record: Record, amounts: globalThis.Record<string, number> | null) => {
    const counters: CommitCounter[] = []
    for (const entry of record.entries) {
      const target = amounts === null ? 0 : (amounts[entry.metric] ?? entry.charged)
      const cell = cells.get(entry.cellKey)
      if (cell) charge(entry, cell, { ...entry, id: record.id }, target)
      const cap = overrides.get(entry.key) ?? entry.cap
      const over = cell && entry.window.kind !== 'bucket' && entry.window.kind !== 'lease' ? cell.used - cap : 0
      counters.push({ key: entry.key, metric: entry.metric, held: entry.charged, charged: target, overdraft: Math.max(0, over) })
      entry.charged = target
      entry.open = 0
    }
    records.set(record.id, record, { ttl: idempotencyMs })
    return counters
  }
  const expire = (record: Record) => {
    for (const entry of record.entries) {
      const cell = cells.get(entry.cellKey)
      const release = entry.expiry === 'release' || entry.window.kind === 'lease'
      if (cell) charge(entry, cell, { ...entry, id: record.id }, release ? 0 : entry.charged)
      if (release) entry.charged = 0
      entry.open = 0
    }
    record.state = 'expired'
    records.set(record.id, record, { ttl: idempotencyMs })
  }
  const sweep = (now: number) => {
    for (let second = due.popDue(now); second !== undefined; second = due.popDue(now)) {
      const ids = dueIds.get(second)
      dueIds.delete(second)
      if (!ids) continue
      for (const id of ids) {
        const record = records.peek(id)
        if (record?.state === 'held') expire(record)
      }
    }
  }
  const schedule = (id: string, expiresAt: number) => {
    const second = Math.ceil(expiresAt / SECOND) * SECOND
    let ids = dueIds.get(second)
    if (!ids) {
      ids = new Set()
      dueIds.set(second, ids)
      due.push(second)
    }
    ids.add(id)
  }
  const unschedule = (record: Record) => {
    dueIds.get(Math.ceil(record.expiresAt / SECOND) * SECOND)?.delete(record.id)
  }

  return {
    clock,
    now: () => clock.now(),

    reserve(input: StoreReserve): StoreReserveResult {
      const now = clock.now()
      sweep(now)
      for (const marker of input.blocks) {
        const code = blocks.get(marker)
        if (code !== undefined) return { status: 'blocked', now, block: marker, code }
      }
      // Skew first, before a breaker trips: the engine retries with fresh bounds under the same id.
      if (input.counters.some((s) => s.window.kind === 'fixed' && locate(s.window.bounds, now) < 0)) {
        return { status: 'skew', now }
      }
      const looks: Look[] = []
      const gates: (Look | undefined)[] = []
      const counters: CounterResult[] = []
      let denied = false
      for (const spec of input.counters) {
        const cap = capOf(spec)
        const look = inspect(spec, cap, now, get)
        if (look === null) return { status: 'skew', now }
        const result: CounterResult = {
          cap,
          used: look.used,
          held: look.held,
          resetAt: look.resetAt,
          windowStart: look.windowStart,
          denied: look.denied,
          retryAfterMs: look.retryAfterMs,
          crossed: [],
          tripped: false,
          trippedNow: false,
          throttled: false,
        }
        let gate: Look | undefined
        const trippedUntil = trips.get(spec.key)
        if (trippedUntil !== undefined && trippedUntil > now) {
          result.denied = true
          result.tripped = true
          result.retryAfterMs = trippedUntil - now
        } else if (spec.trip && look.denied && spec.enforce) {
          trips.set(spec.key, now + spec.trip.cooldownMs)
          result.tripped = true
          result.trippedNow = true
          result.retryAfterMs = spec.trip.cooldownMs
        } else if (!look.denied && spec.throttle && look.used + spec.amount >= spec.throttle.at * cap) {
          const throttle = throttleSpec(spec)
          gate = inspect(throttle, throttle.cap, now, get, 't')!
          if (gate.denied) {
            result.denied = true
            result.throttled = true
            result.retryAfterMs = gate.retryAfterMs
          }
        }
        if (result.denied && spec.enforce) denied = true
        looks.push(look)
        gates.push(gate)
        counters.push(result)
      }
      if (denied) return { status: 'denied', now, counters }
      const entries: Entry[] = []
      for (let i = 0; i < input.counters.length; i++) {
        const spec = input.counters[i]!
        const result = counters[i]!
        const look = looks[i]!
        if (result.denied) continue // a shadow counter that would refuse holds nothing
        const gate = gates[i]
        if (gate) {
          hold(throttleSpec(spec), gate, input.id, now)
          keep(gate, now)
        }
        result.resetAt = hold(spec, look, input.id, now)
        keep(look, now)
        result.used = spec.window.kind === 'bucket' ? result.used + spec.amount : look.cell.used
        result.held = look.cell.held
        if (spec.alerts) result.crossed = crossedAlerts(spec, look.cell, result.cap)
        entries.push({
          key: spec.key,
          metric: spec.metric,
          cellKey: look.cellKey,
          cap: spec.cap,
          window: spec.window,
          windowStart: look.windowStart,
          charged: spec.amount,
          open: spec.amount,
          expiry: spec.expiry,
        })
      }
      const expiresAt = now + input.ttlMs
      records.set(input.id, { id: input.id, state: 'held', expiresAt, meta: input.meta, entries }, {
        ttl: input.ttlMs + idempotencyMs,
      })
      schedule(input.id, expiresAt)
      return { status: 'ok', now, counters }
    },

    commit(input: StoreCommit): StoreCommitResult {
      const now = clock.now()
      sweep(now)
      const record = records.get(input.id)
      if (!record) return { status: 'unknown' }
      if (record.state === 'settled' || record.state === 'released') {
        return { status: 'duplicate', previous: record.state }
      }
      const late = record.state === 'expired'
      if (!late) unschedule(record)
      const counters = close(record, input.amounts)
      record.state = input.amounts === null ? 'released' : 'settled'
      return { status: record.state, late, counters }
    },

    read(specs: CounterSpec[]): CounterState[] {
      const now = clock.now()
      sweep(now)
      return specs.map((spec) => {
        const cap = capOf(spec)
        const look = inspect({ ...spec, amount: 0 }, cap, now, get)
        if (!look) return { cap, used: 0, held: 0, resetAt: null, windowStart: now }
        return { cap, used: look.used, held: look.held, resetAt: look.resetAt, windowStart: look.windowStart }
      })
    },

    adjust(spec: CounterSpec, amount: number): CounterState {
      const now = clock.now()
      sweep(now)
      const cap = capOf(spec)
      const look = inspect({ ...spec, amount: 0 }, cap, now, get)
      if (!look) return { cap, used: 0, held: 0, resetAt: null, windowStart: now }
      adjustCell(spec.window, look, amount)
      keep(look, now)
      return { cap, used: look.cell.used, held: look.cell.held, resetAt: look.resetAt, windowStart: look.windowStart }
    },

    setOverride(key: string, cap: number | null) {
      if (cap === null) overrides.delete(key)
      else overrides.set(key, cap)
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
      sweep(clock.now())
      const record = records.get(id)
      return record ? { id, state: record.state, expiresAt: record.expiresAt, meta: record.meta } : null
    },
  }
}

/** The companion bucket a throttle counts in: `limit` requests per `periodMs`, burst `limit`. */
function throttleSpec(spec: CounterSpec): CounterSpec {
  const { limit, periodMs } = spec.throttle!
  return {
    key: `${spec.key}#throttle`,
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
  if (spec.window.kind === 'sliding') while (cell.alerted > 0 && cell.used < alerts[cell.alerted - 1]! * cap) cell.alerted--
  const crossed: number[] = []
  while (cell.alerted < alerts.length && cell.used >= alerts[cell.alerted]! * cap) crossed.push(alerts[cell.alerted++]!)
  return crossed
}
