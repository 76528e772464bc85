/**
 * The store contract: the few operations a storage adapter must implement.
 *
 * The engine turns a request into a list of {@link CounterSpec}s (one per matched
 * rule and metric) and hands the whole list to {@link Store.reserve}, which must
 * apply every hold or none, atomically. A Redis store does it in one round trip.
 * Every store passes the conformance suite in `@tollgate/core/testing`.
 *
 * A store that fails or does not answer counts as unavailable, and each rule's failure mode
 * applies. A store that answers but cannot work (a server too old for it, a misconfiguration)
 * throws a `TollgateError` with code `store_error` instead: the engine passes it to the caller.
 */

/** How a counter's window is laid out. Computed by the engine, interpreted by the store. */
export type WindowSpec =
  /**
   * Calendar window. `bounds` are ascending instants (ms since epoch); the store picks
   * the interval `[bounds[i], bounds[i + 1])` that holds its own `now`. When `now`
   * lies outside every interval the store answers with `skew` and its time.
   */
  | { kind: 'fixed'; bounds: number[] }
  /**
   * Rolling window of `sizeMs`, counted in slots of `slotMs`. Admission sums every
   * slot that overlaps the last `sizeMs`, so no span of `sizeMs` ever holds more
   * than the cap; it may under-admit by what the oldest slot holds.
   */
  | { kind: 'sliding'; sizeMs: number; slotMs: number }
  /** Token bucket (GCRA): the cap is the burst; one unit refills every `intervalMs`. */
  | { kind: 'bucket'; intervalMs: number }
  /** Concurrency lease: one entry per reservation, freed by settle, release or after `ttlMs`. */
  | { kind: 'lease'; ttlMs: number }

/** A companion rate that applies once a counter is past a fraction of its cap. */
export interface ThrottleSpec {
  /** Fraction of the cap (0–1] from which the throttle applies. */
  at: number
  /** Units admitted per `periodMs` while throttled (counted as requests). */
  limit: number
  periodMs: number
}

/** One counter of one rule for one partition and metric. */
export interface CounterSpec {
  /** Unique, escaped key of rule, metric and partition (no window part). */
  key: string
  /** The metric this counter measures (`requests`, `tokens`, `cost`, a custom unit…). */
  metric: string
  /** What this reservation holds on the counter: a non-negative safe integer. */
  amount: number
  /** Cap from the policy; a runtime override stored under `key` (and `scope`) replaces it. */
  cap: number
  /**
   * `false` for shadow rules: evaluated like any other and reported, but never refusing;
   * a shadow counter that would refuse holds nothing.
   */
  enforce: boolean
  /**
   * The tenant id this counter lives under (the policy's `tenant` dimension), or `undefined`
   * for a counter shared across tenants (a global ceiling, a per-model rule). Counters with the
   * same scope may be stored together (one Redis Cluster slot). Scope and key together name
   * the counter: the same key under two scopes (one user id in two tenants) is two counters,
   * each with its own override (`Store.setOverride` with the scope).
   */
  scope?: string
  window: WindowSpec
  /** What an unsettled hold does when the reservation expires. Leases are always freed. */
  expiry: 'keep' | 'release'
  /** Alert thresholds as fractions of the cap, ascending; each fires once per window. */
  alerts?: number[]
  /** Trip a breaker for `cooldownMs` when the cap would be passed. */
  trip?: { cooldownMs: number }
  throttle?: ThrottleSpec
}

/** Input of {@link Store.reserve}. */
export interface StoreReserve {
  /** Reservation id, unique; the key for settle and release. */
  id: string
  /** The counters to hold on. A store may keep these objects: callers do not change them afterwards. */
  counters: CounterSpec[]
  /** Time after which an unsettled reservation expires. */
  ttlMs: number
  /** Block markers to check first (see {@link Store.block}); any present refuses. */
  blocks: string[]
  /** Opaque JSON data kept with the reservation and returned by {@link Store.lookup}. */
  meta: ReservationMeta
}

/** What the engine keeps with a reservation so that any process can settle it. */
export interface ReservationMeta {
  model: string
  /** Names of the metrics held (for reporting). */
  [extra: string]: unknown
}

/** State of one counter as the store saw it. */
export interface CounterState {
  /** Effective cap (the override where one is set). */
  cap: number
  /** Everything counted in the current window: settled usage plus open holds. */
  used: number
  /** The part of `used` that is open holds (or leases). */
  held: number
  /** When the counter next frees capacity or resets (ms since epoch); `null` for lifetime windows. */
  resetAt: number | null
  /** Start of the window the hold was (or would be) placed in; for settle after rollover. */
  windowStart: number
}

/** Per-counter answer of {@link Store.reserve}. */
export interface CounterResult extends CounterState {
  /** This counter alone would refuse the amount (also reported for shadow counters). */
  denied: boolean
  /** How long until waiting would let the amount through; `null` where waiting does not help. */
  retryAfterMs: number | null
  /** Alert fractions crossed by this hold, each reported once per window. */
  crossed: number[]
  /** Refused because the breaker is open (just tripped, or still cooling down). */
  tripped: boolean
  /** This request tripped the breaker (it was closed until now). */
  trippedNow: boolean
  /** Refused by the throttle companion rate. */
  throttled: boolean
}

/**
 * Answer of {@link Store.reserve}: held on every counter (`ok`) or on none (`denied`, each counter's
 * state saying which refused), refused by a block marker, or `skew` when no window the engine
 * offered holds the store's time.
 */
export type StoreReserveResult =
  | { status: 'ok' | 'denied'; now: number; counters: CounterResult[] }
  | { status: 'blocked'; now: number; block: string; code: string }
  | { status: 'skew'; now: number }

/**
 * Input of {@link Store.commit}: settle with actual amounts per metric, or release (`amounts: null`),
 * or abandon (`amounts: null, abandon: true`).
 */
export interface StoreCommit {
  id: string
  amounts: Record<string, number> | null
  /**
   * Abandon a reservation whose reserve may still be on its way to the store: its answer was lost
   * (a timeout, a dropped connection, a proxy's 5xx), so the reserve may have landed, or may land
   * after this commit. Only with `amounts: null`. It releases the reservation if it is held (or
   * expired), as a release does, and answers as a release would; and it remembers the id as
   * released either way, also when the store does not know it yet (the answer is then `unknown`),
   * for as long as closed ids are remembered, so that a reserve arriving later under the id holds
   * nothing (see {@link Store.reserve}). Idempotent: abandoning again answers `duplicate`.
   * A store without it (or that ignores it) makes it a plain release: the same for a held
   * reservation, but a reserve landing after it then holds until its TTL.
   */
  abandon?: boolean
  /**
   * The caller reads only the counters charged past their cap: a store may leave the others
   * out of `counters`. Stores that ignore it list every counter, as without it.
   */
  brief?: boolean
}

/** One counter of a commit: what it held, what it now charges, and any overdraft. */
export interface CommitCounter {
  key: string
  metric: string
  /** What was held. */
  held: number
  /** What is now charged (0 for a release). */
  charged: number
  /** How far the counter is past its cap after the charge; 0 when within. */
  overdraft: number
}

/** Answer of {@link Store.commit}: closed now, closed before (`duplicate`), or an id the store does not know. */
export type StoreCommitResult =
  | {
      status: 'settled' | 'released'
      /** The reservation had expired before this commit; its true-up was still applied. */
      late: boolean
      counters: CommitCounter[]
    }
  | { status: 'duplicate'; previous: 'settled' | 'released' }
  | { status: 'unknown' }

/** A stored reservation, as {@link Store.lookup} returns it. */
export interface StoredReservation {
  id: string
  state: 'held' | 'settled' | 'released' | 'expired'
  expiresAt: number
  meta: ReservationMeta
}

/** The operations every store has (see {@link Store}), in the contract's order. */
export const STORE_OPERATIONS = [
  'reserve',
  'commit',
  'read',
  'adjust',
  'setOverride',
  'block',
  'blocked',
  'lookup',
  'now',
] as const

/** The storage adapter contract. Every method may answer synchronously or with a promise. */
export interface Store {
  /**
   * Place a hold on every counter or on none, atomically. Idempotent by id: a reserve under the id
   * of an open reservation (a replay) holds nothing more and answers `ok` with each counter as it is
   * now, nothing refusing; one under a closed id (settled, released, expired or abandoned, while the
   * store remembers it) changes nothing and throws an error whose `code` is `'reservation_closed'`
   * (a store server answers it with a 4xx: the reserve did not land). Ids a refused reserve
   * (`denied`, `blocked`, `skew`) used are free: it stored nothing.
   */
  reserve(input: StoreReserve): Promise<StoreReserveResult> | StoreReserveResult
  /** Settle, release or abandon a reservation (see {@link StoreCommit.abandon}). Idempotent by id. */
  commit(input: StoreCommit): Promise<StoreCommitResult> | StoreCommitResult
  /** Read the state of counters without changing them. */
  read(counters: CounterSpec[]): Promise<CounterState[]> | CounterState[]
  /** Add `amount` (may be negative) to a counter's current window, outside any reservation. */
  adjust(counter: CounterSpec, amount: number): Promise<CounterState> | CounterState
  /**
   * Set (or clear with `null`) the runtime cap override of a counter: its key, under `scope` when
   * the counter has one (an override under one scope never applies to another, or to no scope).
   */
  setOverride(key: string, cap: number | null, scope?: string): Promise<void> | void
  /** Set (or clear with `null`) a block marker with the reason code it refuses with. */
  block(marker: string, code: string | null): Promise<void> | void
  /** The first of these block markers that is set, with its code; `null` when none is. */
  blocked(
    markers: string[],
  ): Promise<{ marker: string; code: string } | null> | { marker: string; code: string } | null
  /**
   * A reservation by id, while the store still knows it. Its `meta` is kept while it is
   * held or expired; a settled or released one may answer with its state alone.
   */
  lookup(id: string): Promise<StoredReservation | null> | StoredReservation | null
  /** The store's clock, ms since epoch. */
  now(): Promise<number> | number
  /**
   * Optional, for breakdowns (`gate.top`): up to `max` counters whose key starts with
   * `counter.key`, each in the window `counter.window` lays out, with its cap (override
   * included). Order is unspecified; the engine sorts. A store without it cannot report breakdowns.
   */
  scan?(counter: CounterSpec, max: number): Promise<ScannedCounter[]> | ScannedCounter[]
  /**
   * Optional, for synchronous in-process stores: a reserve that only admits (see {@link Lane}).
   * The memory store has one; the engine uses it first where a request's counters allow.
   */
  lane?: Lane
}

/**
 * A store over the network (`redisStore`, `httpStore`): every operation but `now()` answers with a
 * promise, so calling code can `.then()` or `.catch()` what it gets without `await`.
 */
export interface RemoteStore extends Store {
  reserve(input: StoreReserve): Promise<StoreReserveResult>
  commit(input: StoreCommit): Promise<StoreCommitResult>
  read(counters: CounterSpec[]): Promise<CounterState[]>
  adjust(counter: CounterSpec, amount: number): Promise<CounterState>
  setOverride(key: string, cap: number | null, scope?: string): Promise<void>
  block(marker: string, code: string | null): Promise<void>
  blocked(markers: string[]): Promise<{ marker: string; code: string } | null>
  lookup(id: string): Promise<StoredReservation | null>
}

/**
 * The admit-only path of a synchronous store, for reservations whose counters are all calendar
 * (`fixed`) or rolling (`sliding`) windows with no alerts, breaker or throttle. It must hold exactly what
 * {@link Store.reserve} would hold when that answers `ok`, and change nothing otherwise.
 */
export interface Lane {
  /**
   * The store this lane belongs to. The engine uses a lane only on that very store, so that a
   * wrapper around a store (a proxy, a spread copy with some methods replaced) is never bypassed.
   */
  store: Store
  /** Read the store's clock: {@link Lane.reserve} runs at this time (call it just before). */
  now(): number
  /**
   * Hold every counter of `input` when each admits its amount, keeping `meta` with the new
   * reservation (as {@link StoreReserve.meta}), and write what
   * {@link Store.reserve} would report, {@link LANE_FIELDS} numbers per counter in order:
   * cap, used, held, resetAt (`NaN` for `null`), windowStart. Returns the new reservation's
   * id, which the lane makes (so that it can find the reservation again without hashing it);
   * {@link Store.commit} and {@link Store.lookup} take it like any other.
   * Returns `undefined`, having changed nothing, when the general answer is needed: a counter
   * refuses (shadow counters included), a block or breaker is set, a window's bounds do not
   * hold `now`, or a counter is not such a window. `now` is the time the last
   * {@link Lane.now} read.
   */
  reserve(input: LaneReserve, meta: ReservationMeta, out: number[]): string | undefined
  /**
   * The meta of an open or expired reservation, as {@link Store.lookup} would give it, or
   * `undefined` (closed, unknown: then `lookup` and `commit` say which).
   */
  meta(id: string): ReservationMeta | undefined
  /**
   * Settle (`amounts`) or release (`null`) the reservation `id` that {@link Lane.meta} has just
   * found, when it is still held: what {@link Store.commit} does with `brief: true`, answering
   * its `counters` (its status follows from `amounts`; it is never late). Returns `undefined`,
   * having changed nothing, when anything else came in between, or the reservation expired at
   * this call's time: then {@link Store.commit} decides.
   */
  close(id: string, amounts: Record<string, number> | null): CommitCounter[] | undefined
}

/**
 * What {@link Lane.reserve} is given besides the meta: a store reserve's counters, TTL and blocks.
 * A caller that holds the same counters again sends the same object again, so that the lane finds
 * what it worked out for them the last time in `memo` rather than looking it up.
 */
export interface LaneReserve extends Omit<StoreReserve, 'id' | 'meta'> {
  /** The lane's own note on these counters: `undefined` at first, never read or written by the caller. */
  memo: unknown
}

/** Numbers per counter in the answer of {@link Lane.reserve}. */
export const LANE_FIELDS = 5

/** One counter found by {@link Store.scan}. */
export interface ScannedCounter {
  /** The counter's full key (`rule:metric:partition`). */
  key: string
  /** The scope (tenant) the counter lives under, when it has one: the same key may come once per scope. */
  scope?: string
  state: CounterState
}
