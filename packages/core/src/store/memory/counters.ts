/**
 * The window algorithms of the memory store, as plain functions over a counter cell:
 * look at a cell (`inspect`), place a hold on it (`hold`), and move a hold to its
 * final amount (`charge`). The Redis store implements the same maths in Lua.
 */
import type { CounterSpec } from '../contract.js'
import type { Expiring } from './cache.js'

/** The state kept for one counter window. Fields are used by the kinds that need them. */
export interface Cell extends Expiring {
  /** Counted in the window: settled usage plus open holds (fixed, sliding, lease). */
  used: number
  /** Open holds within `used`. */
  held: number
  /** Alert thresholds already fired in this window. */
  alerted: number
  /** Sliding: slot index → amount. */
  slots?: Map<number, number>
  /** Sliding: slot index → open holds in that slot (they leave `held` when the slot leaves the window). */
  holds?: Map<number, number>
  /** Bucket: theoretical arrival time. */
  tat?: number
  /** Lease: reservation id → amount and expiry. */
  leases?: Map<string, { amount: number; expiresAt: number }>
}

/** What `inspect` finds: where the cell lives and what it would say to `amount`. */
export interface Look {
  /** Key of the cell in the cell cache. */
  cellKey: string
  /** The cell is new: the store must add it to its cache when it holds on it. */
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

/** Hint for how long to wait for a concurrency lease. */
const LEASE_RETRY_MS = 1_000
/** Beyond this instant a calendar window counts as never ending (lifetime). */
export const NEVER = Number.MAX_SAFE_INTEGER

/** Index of the interval `[bounds[i], bounds[i+1])` holding `now`, or -1. */
export function locate(bounds: readonly number[], now: number): number {
  for (let i = 0; i + 1 < bounds.length; i++) if (bounds[i]! <= now && now < bounds[i + 1]!) return i
  return -1
}

const fresh = (): Cell => ({ used: 0, held: 0, alerted: 0, forgetAt: 0, seen: false })

/**
 * Look at the counter for `spec` at `now` with effective cap `cap`. `get` reads a cell by key.
 * Returns `null` for a calendar window whose bounds do not hold `now` (clock skew).
 * Cell keys are `<namespace><tag>|<key>` with a tag per window kind (the window start for
 * calendar windows) holding no `|`, so that no two keys, kinds or namespaces share a cell.
 */
export function inspect(
  spec: CounterSpec,
  cap: number,
  now: number,
  get: (key: string) => Cell | undefined,
  namespace = '',
): Look | null {
  const { window, amount } = spec
  const key = (tag: string | number) => `${namespace}${tag}|${spec.key}`
  switch (window.kind) {
    case 'fixed': {
      const i = locate(window.bounds, now)
      if (i < 0) return null
      const start = window.bounds[i]!
      const end = window.bounds[i + 1]!
      const cellKey = key(start)
      const found = get(cellKey)
      const cell = found ?? fresh()
      const denied = cell.used + amount > cap
      const lifetime = end >= NEVER
      return {
        cellKey,
        created: found === undefined,
        cell,
        windowStart: start,
        forgetAt: lifetime ? Number.POSITIVE_INFINITY : end,
        used: cell.used,
        held: cell.held,
        resetAt: lifetime ? null : end,
        denied,
        retryAfterMs: denied && amount <= cap && !lifetime ? end - now : null,
      }
    }
    case 'sliding': {
      const { sizeMs, slotMs } = window
      const cellKey = key('s')
      const found = get(cellKey)
      const cell = found ?? { ...fresh(), slots: new Map(), holds: new Map() }
      const slots = cell.slots!
      const oldest = Math.floor((now - sizeMs) / slotMs)
      for (const [index, value] of slots) {
        if (index >= oldest) continue
        slots.delete(index)
        cell.used -= value
        cell.held -= cell.holds!.get(index) ?? 0
        cell.holds!.delete(index)
      }
      const denied = cell.used + amount > cap
      let retryAfterMs: number | null = null
      if (denied && amount <= cap) {
        let left = cell.used
        for (const [index, value] of slots) {
          left -= value
          if (left + amount <= cap) {
            retryAfterMs = (index + 1) * slotMs + sizeMs - now
            break
          }
        }
      }
      const first = slots.keys().next()
      const slot = Math.floor(now / slotMs)
      return {
        cellKey,
        created: found === undefined,
        cell,
        windowStart: slot * slotMs,
        forgetAt: (slot + 1) * slotMs + sizeMs,
        used: cell.used,
        held: cell.held,
        resetAt: first.done ? now : (first.value + 1) * slotMs + sizeMs,
        denied,
        retryAfterMs,
      }
    }
    case 'bucket': {
      const { intervalMs } = window
      const cellKey = key('b')
      const found = get(cellKey)
      const cell = found ?? fresh()
      const tat = Math.max(cell.tat ?? now, now)
      const next = tat + amount * intervalMs
      const denied = next - now > cap * intervalMs
      const used = Math.ceil((tat - now) / intervalMs)
      return {
        cellKey,
        created: found === undefined,
        cell,
        windowStart: now,
        forgetAt: next,
        used,
        held: 0,
        resetAt: tat,
        denied,
        retryAfterMs: denied && amount <= cap ? next - now - cap * intervalMs : null,
      }
    }
    case 'lease': {
      const cellKey = key('l')
      const found = get(cellKey)
      const cell = found ?? { ...fresh(), leases: new Map() }
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
      return {
        cellKey,
        created: found === undefined,
        cell,
        windowStart: now,
        forgetAt: latest + window.ttlMs,
        used: cell.used,
        held: cell.held,
        resetAt: Number.isFinite(earliest) ? earliest : null,
        denied,
        retryAfterMs: denied && amount <= cap ? Math.min(LEASE_RETRY_MS, earliest - now) : null,
      }
    }
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
      const slot = look.windowStart / window.slotMs
      cell.slots!.set(slot, (cell.slots!.get(slot) ?? 0) + amount)
      cell.holds!.set(slot, (cell.holds!.get(slot) ?? 0) + amount)
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
 * to `target`. Leases are removed whatever the target.
 */
export function charge(
  entry: { window: CounterSpec['window']; windowStart: number; charged: number; open: number },
  cell: Cell,
  id: string,
  target: number,
): void {
  const delta = target - entry.charged
  const { window } = entry
  switch (window.kind) {
    case 'bucket':
      cell.tat = (cell.tat ?? 0) + delta * window.intervalMs
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
      const slot = entry.windowStart / window.slotMs
      const value = cell.slots!.get(slot)
      if (value === undefined) return // the slot, and the hold with it, has left the window
      cell.slots!.set(slot, value + delta)
      cell.used += delta
      cell.held -= entry.open
      cell.holds!.set(slot, cell.holds!.get(slot)! - entry.open)
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
      const slot = look.windowStart / window.slotMs
      cell.slots!.set(slot, (cell.slots!.get(slot) ?? 0) + amount)
      break
    }
    case 'fixed':
      break
  }
  cell.used += amount
}
