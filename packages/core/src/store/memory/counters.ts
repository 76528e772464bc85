/**
 * The window algorithms of the memory store, as plain functions over a counter cell:
 * look at a cell (`inspect`), place a hold on it (`hold`), and move a hold to its
 * final amount (`charge`). The Redis store implements the same maths in Lua.
 * They write into caller-owned objects rather than allocate: this is the hot path.
 */
import type { CounterSpec, WindowSpec } from '../contract.js'
import type { Expiring } from './cache.js'
import { SlotRing } from './slot-ring.js'

/** The state kept for one counter window. Fields are used by the kinds that need them. */
export interface Cell {
  /** Counted in the window: settled usage plus open holds (fixed, sliding, lease). */
  used: number
  /** Open holds within `used`. */
  held: number
  /** Alert thresholds already fired in this window. */
  alerted: number
  /**
   * Held in by the lane without reading its home (see `holdAgain`) since the cache's last eviction
   * pass: the home counts as read.
   */
  seen: boolean
  /**
   * No longer its home's: the home keeps another window's cell now, or was dropped from the cache.
   * (A hold placed in it still settles in it.)
   */
  gone: boolean
  /** Sliding: what each slot still in the window counts and holds. */
  slots: SlotRing | undefined
  /** Bucket: theoretical arrival time. */
  tat: number | undefined
  /** Lease: reservation id → amount and expiry. */
  leases: Map<string, { amount: number; expiresAt: number }> | undefined
}

/**
 * Everything the store keeps for one counter key: the current cell of each window kind
 * (a key has one kind in practice; a changed policy may bring another). A calendar
 * window's cell is replaced when a new window starts; a hold placed in the old one keeps
 * a reference to it, so a late settle still lands where its hold was.
 */
export interface Home extends Expiring {
  /** Start of the calendar window `fixed` counts. */
  start: number
  fixed: Cell | undefined
  sliding: Cell | undefined
  bucket: Cell | undefined
  lease: Cell | undefined
}

export const newHome = (): Home => ({
  start: 0,
  fixed: undefined,
  sliding: undefined,
  bucket: undefined,
  lease: undefined,
  forgetAt: 0,
  seen: false,
})

/**
 * Whether a home was read since the homes cache's last eviction pass, directly or through its
 * calendar or rolling cell (see `holdAgain`); clears all three.
 */
export function homeSeen(home: Home): boolean {
  const { fixed, sliding } = home
  const seen = home.seen || fixed?.seen === true || sliding?.seen === true
  home.seen = false
  if (fixed !== undefined) fixed.seen = false
  if (sliding !== undefined) sliding.seen = false
  return seen
}

/** A home dropped from the cache: its cells are no longer any home's (`holdAgain` reads that). */
export function homeGone(home: Home): void {
  for (const cell of [home.fixed, home.sliding, home.bucket, home.lease])
    if (cell !== undefined) cell.gone = true
}

/** What `inspect` finds: the cell a hold goes into and what it would say to the amount. */
export interface Look {
  /** The home looked in (set by the store, for `keep`). */
  home: Home | undefined
  /** The cell is new: `hold` attaches it to its home. */
  created: boolean
  cell: Cell
  /** Start of the window (fixed) or slot (sliding) a hold goes into. */
  windowStart: number
  /** When the cell may be forgotten (ms since epoch), `Infinity` for never. */
  forgetAt: number
  used: number
  held: number
  resetAt: number | null
  denied: boolean
  retryAfterMs: number | null
}

export const newLook = (): Look => ({
  home: undefined,
  created: false,
  cell: newCell(),
  windowStart: 0,
  forgetAt: 0,
  used: 0,
  held: 0,
  resetAt: null,
  denied: false,
  retryAfterMs: null,
})

/**
 * How early (ms) a token bucket may admit what exact arithmetic would admit a moment later. The
 * bucket's time (`tat`, ms since epoch) is a sum of fractional intervals (a 5-minute period over 11
 * requests is 27,272.7… ms each), and each sum rounds at that magnitude (a ten-thousandth of a ms):
 * eleven requests at once then counted a hair over 11, and the 11th was refused. The slack absorbs
 * that rounding and is far below a millisecond, so on a millisecond clock a bucket whose interval
 * is a whole number of ms never admits early; under a 100 ms interval it is a thousandth of the
 * interval instead, so it never amounts to a unit. A refusal's `retryAfterMs` is counted without
 * it: the exact moment. The Redis store's Lua uses the same figures.
 */
export const bucketSlackMs = (intervalMs: number): number => Math.min(0.1, intervalMs * 1e-3)

/** Hint for how long to wait for a concurrency lease. */
const LEASE_RETRY_MS = 1_000
/** Beyond this instant a calendar window counts as never ending (lifetime). */
export const NEVER = Number.MAX_SAFE_INTEGER

/** Index of the interval `[bounds[i], bounds[i+1])` holding `now`, or -1. */
export function locate(bounds: readonly number[], now: number): number {
  for (let i = 0; i + 1 < bounds.length; i++) if (bounds[i]! <= now && now < bounds[i + 1]!) return i
  return -1
}

/** An empty cell. */
export function newCell(): Cell {
  return {
    used: 0,
    held: 0,
    alerted: 0,
    seen: false,
    gone: false,
    slots: undefined,
    tat: undefined,
    leases: undefined,
  }
}

/**
 * Look at the counter of `home` for a window layout at `now` with effective cap `cap`, as
 * asked for `amount`, and write what it finds into `look`. Returns `false` for a calendar
 * window whose bounds do not hold `now` (clock skew).
 */
export function inspect(
  window: WindowSpec,
  amount: number,
  cap: number,
  now: number,
  home: Home,
  look: Look,
): boolean {
  switch (window.kind) {
    case 'fixed': {
      const i = locate(window.bounds, now)
      if (i < 0) return false
      const start = window.bounds[i]!
      const end = window.bounds[i + 1]!
      const found = home.fixed !== undefined && home.start === start ? home.fixed : undefined
      const cell = found ?? newCell()
      const denied = cell.used + amount > cap
      const lifetime = end >= NEVER
      look.created = found === undefined
      look.cell = cell
      look.windowStart = start
      look.forgetAt = lifetime ? Number.POSITIVE_INFINITY : end
      look.used = cell.used
      look.held = cell.held
      look.resetAt = lifetime ? null : end
      look.denied = denied
      look.retryAfterMs = denied && amount <= cap && !lifetime ? end - now : null
      return true
    }
    case 'sliding': {
      const { sizeMs, slotMs } = window
      let cell = home.sliding
      const created = cell === undefined
      if (cell === undefined) {
        cell = newCell()
        cell.slots = new SlotRing()
      }
      const slots = cell.slots!
      dropOldSlots(cell, window, now)
      const denied = cell.used + amount > cap
      let retryAfterMs: number | null = null
      if (denied && amount <= cap) {
        // the first slot whose leaving makes room for the amount
        const leaving = slots.leaving(cell.used, cap - amount)
        if (leaving !== undefined) retryAfterMs = (leaving + 1) * slotMs + sizeMs - now
      }
      const first = slots.first
      const slot = Math.floor(now / slotMs)
      look.created = created
      look.cell = cell
      look.windowStart = slot * slotMs
      look.forgetAt = (slot + 1) * slotMs + sizeMs
      look.used = cell.used
      look.held = cell.held
      look.resetAt = first === undefined ? now : (first + 1) * slotMs + sizeMs
      look.denied = denied
      look.retryAfterMs = retryAfterMs
      return true
    }
    case 'bucket': {
      const { intervalMs } = window
      const cell = home.bucket ?? newCell()
      const tat = Math.max(cell.tat ?? now, now)
      const next = tat + amount * intervalMs
      const slack = bucketSlackMs(intervalMs)
      const room = cap * intervalMs
      const denied = next - now > room + slack
      look.created = home.bucket === undefined
      look.cell = cell
      look.windowStart = now
      look.forgetAt = next
      look.used = Math.max(0, Math.ceil((tat - now - slack) / intervalMs))
      look.held = 0
      look.resetAt = tat
      look.denied = denied
      look.retryAfterMs = denied && amount <= cap ? next - now - room : null
      return true
    }
    case 'lease': {
      let cell = home.lease
      const created = cell === undefined
      if (cell === undefined) {
        cell = newCell()
        cell.leases = new Map()
      }
      let earliest = Number.POSITIVE_INFINITY
      let latest = now
      for (const [id, lease] of cell.leases!) {
        if (lease.expiresAt <= now) {
          cell.leases!.delete(id)
          cell.used -= lease.amount
          cell.held -= lease.amount
        } else {
          earliest = Math.min(earliest, lease.expiresAt)
          latest = Math.max(latest, lease.expiresAt)
        }
      }
      const denied = cell.used + amount > cap
      look.created = created
      look.cell = cell
      look.windowStart = now
      look.forgetAt = latest + window.ttlMs
      look.used = cell.used
      look.held = cell.held
      look.resetAt = Number.isFinite(earliest) ? earliest : null
      look.denied = denied
      look.retryAfterMs = denied && amount <= cap ? Math.min(LEASE_RETRY_MS, earliest - now) : null
      return true
    }
  }
}

/** Drop the slots of a rolling window's cell that have left the window at `now`. */
export function dropOldSlots(cell: Cell, window: { sizeMs: number; slotMs: number }, now: number): void {
  cell.slots!.drop(Math.floor((now - window.sizeMs) / window.slotMs), dropped)
  cell.used -= dropped.counted
  cell.held -= dropped.held
}
/** What {@link dropOldSlots} last dropped (one object for every call: calls never interleave). */
const dropped = { counted: 0, held: 0 }

/** Attach a newly created cell to its home. */
export function attach(window: WindowSpec, look: Look, home: Home): void {
  if (!look.created) return
  look.created = false
  switch (window.kind) {
    case 'fixed':
      if (home.fixed !== undefined) home.fixed.gone = true
      home.fixed = look.cell
      home.start = look.windowStart
      return
    case 'sliding':
      home.sliding = look.cell
      return
    case 'bucket':
      home.bucket = look.cell
      return
    case 'lease':
      home.lease = look.cell
  }
}

/** Place a hold of `spec.amount` on the looked-at cell for reservation `id`; returns the new reset time. */
export function hold(spec: CounterSpec, look: Look, id: string, now: number): number | null {
  const { cell } = look
  const { amount, window } = spec
  switch (window.kind) {
    case 'bucket':
      cell.tat = Math.max(cell.tat ?? now, now) + amount * window.intervalMs
      return cell.tat
    case 'lease':
      cell.leases!.set(id, { amount, expiresAt: now + window.ttlMs })
      cell.used += amount
      cell.held += amount
      return look.resetAt ?? now + window.ttlMs
    case 'sliding': {
      cell.slots!.add(look.windowStart / window.slotMs, amount, amount)
      cell.used += amount
      cell.held += amount
      return look.used === 0 ? look.windowStart + window.slotMs + window.sizeMs : look.resetAt
    }
    case 'fixed':
      cell.used += amount
      cell.held += amount
      return look.resetAt
  }
}

/**
 * Move a hold on `cell` from `charged` (currently counted, of which `open` is still a hold)
 * to `target`, at `now`. Leases are removed whatever the target.
 */
export function charge(
  entry: { window: CounterSpec['window']; windowStart: number; charged: number; open: number },
  cell: Cell,
  id: string,
  target: number,
  now: number,
): void {
  const delta = target - entry.charged
  const { window } = entry
  switch (window.kind) {
    case 'bucket':
      cell.tat = bucketCharge(cell.tat ?? 0, entry, delta, window.intervalMs, now)
      return
    case 'lease': {
      const lease = cell.leases!.get(id)
      if (lease) {
        cell.leases!.delete(id)
        cell.used -= lease.amount
        cell.held -= lease.amount
      }
      return
    }
    case 'sliding': {
      // a slot no longer there has left the window, and the hold with it
      if (!cell.slots!.charge(entry.windowStart / window.slotMs, delta, entry.open)) return
      cell.used += delta
      cell.held -= entry.open
      return
    }
    case 'fixed':
      cell.used += delta
      cell.held -= entry.open
  }
}

/** Add `amount` (may be negative) to the looked-at window outside any reservation. Leases cannot be adjusted. */
export function adjustCell(window: CounterSpec['window'], look: Look, amount: number): void {
  const { cell } = look
  switch (window.kind) {
    case 'bucket':
      cell.tat = Math.max(cell.tat ?? 0, look.windowStart) + amount * window.intervalMs
      return
    case 'lease':
      throw new Error('a concurrency counter cannot be adjusted')
    case 'sliding': {
      cell.slots!.add(look.windowStart / window.slotMs, amount, 0)
      break
    }
    case 'fixed':
      break
  }
  cell.used += amount
}

/**
 * The lane's hold on a calendar window (interval `at` of its bounds): the cell's new window is made
 * when the window has moved on, the home kept until the window ends plus `graceMs`. Writes resetAt
 * (`NaN` for a lifetime window) and windowStart at `out[o + 3]` and `out[o + 4]`, as `inspect` then
 * `hold` would report them.
 */
export function holdFixed(
  spec: CounterSpec,
  home: Home,
  at: number,
  graceMs: number,
  out: number[],
  o: number,
): Cell {
  const { bounds } = spec.window as { bounds: number[] }
  const start = bounds[at]!
  const end = bounds[at + 1]!
  let cell = home.fixed
  if (cell === undefined || home.start !== start) {
    if (cell !== undefined) cell.gone = true
    cell = newCell()
    home.fixed = cell
    home.start = start
  }
  cell.used += spec.amount
  cell.held += spec.amount
  const lifetime = end >= NEVER
  const forgetAt = lifetime ? Number.POSITIVE_INFINITY : end + graceMs
  if (forgetAt > home.forgetAt) home.forgetAt = forgetAt
  out[o + 3] = lifetime ? Number.NaN : end
  out[o + 4] = start
  return cell
}

/**
 * The lane's hold on a rolling window, in the slot of `now` (its old slots already dropped). Writes
 * resetAt and windowStart at `out[o + 3]` and `out[o + 4]`, as `inspect` then `hold` would report them.
 */
export function holdSliding(
  spec: CounterSpec,
  home: Home,
  now: number,
  graceMs: number,
  out: number[],
  o: number,
): Cell {
  const { sizeMs, slotMs } = spec.window as { sizeMs: number; slotMs: number }
  let cell = home.sliding
  if (cell === undefined) {
    cell = newCell()
    cell.slots = new SlotRing()
    home.sliding = cell
  }
  const slots = cell.slots!
  const first = slots.first
  const slot = Math.floor(now / slotMs)
  const start = slot * slotMs
  // from the oldest slot, or from the new slot when nothing is counted
  out[o + 3] =
    cell.used === 0 ? start + slotMs + sizeMs : first === undefined ? now : (first + 1) * slotMs + sizeMs
  out[o + 4] = start
  slots.add(slot, spec.amount, spec.amount)
  cell.used += spec.amount
  cell.held += spec.amount
  const forgetAt = (slot + 1) * slotMs + sizeMs + graceMs
  if (forgetAt > home.forgetAt) home.forgetAt = forgetAt
  return cell
}

/**
 * A token bucket's arrival time after charging `delta` units (a refund when negative) at `now`, for
 * a hold of `charged` units placed at `windowStart`. A refund gives back only what of that hold the
 * bucket has not refilled since (at most what a hold placed then has left, `windowStart + charged ×
 * interval − now`), and never makes the bucket fuller than full: a hold refilled long ago, given
 * back, let a burst pass the cap. A charge past the estimate counts from `now` when the bucket has
 * refilled meanwhile, as a new hold would.
 */
export function bucketCharge(
  tat: number,
  hold: { windowStart: number; charged: number },
  delta: number,
  intervalMs: number,
  now: number,
): number {
  if (delta >= 0) return Math.max(tat, now) + delta * intervalMs
  const left = Math.max(0, hold.windowStart + hold.charged * intervalMs - now)
  const back = Math.min(-delta * intervalMs, left)
  return tat > now ? Math.max(now, tat - back) : tat
}
