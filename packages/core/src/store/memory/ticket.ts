/**
 * What the memory store's lane knows of a counters array (a `Ticket`), and the two steps that
 * use it alone: holding again in the cells of the last reservation on the same counters
 * (`holdAgain`), and closing a reservation held that way (`closeHeld`).
 */
import type { CommitCounter, CounterSpec } from '../contract.js'
import { LANE_FIELDS } from '../contract.js'
import type { Cell, Home } from './counters.js'
import type { Record } from './ledger.js'

/**
 * What the lane knows of a counters array: each counter's home, amount and cap (specs never
 * change), and the cells it last held in with their windows' (or slots') starts and ends. While
 * those cells are their homes' current windows (`until`: the first calendar window to end; a
 * rolling window's cell while the time is in the same slot and no slot leaves the window), the
 * next reserve holds in them again without reading the specs (`holdAgain`).
 */
export interface Ticket {
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
  /** A rolling window's slot and window length (`NaN` for other windows). */
  slotMs: number[]
  sizeMs: number[]
  cells: Cell[]
  starts: number[]
  /** Each calendar window's end as the lane reports it (`NaN` for a lifetime window). */
  resets: number[]
  /**
   * The cells may be held in again while the store's time is before this (the first calendar
   * window's end; `holdAgain` checks rolling windows' slots itself).
   */
  until: number
}
const NO_CELLS: Cell[] = []
const NO_STARTS: number[] = []

/**
 * A ticket's lists that only depend on its counters' metrics, amounts, caps and rolling slots:
 * equal for every partition of the same rules (every user's counters under one policy), so one
 * copy is shared. A ticket is kept for each plan the engine sends, thousands at once. Never
 * changed once made.
 */
export type Shared = Pick<Ticket, 'metrics' | 'codes' | 'amounts' | 'caps' | 'slotMs' | 'sizeMs'>
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
  const slotMs = specs.map((spec) => rolling(spec).slotMs)
  const sizeMs = specs.map((spec) => rolling(spec).sizeMs)
  // numbers as `join` writes them (JSON would write NaN and Infinity alike, as null)
  const key = `${JSON.stringify(metrics)}${amounts.join()}|${caps.join()}|${slotMs.join()}|${sizeMs.join()}`
  let found = shared.get(key)
  if (found === undefined) {
    if (shared.size >= MAX_SHARED) shared.clear()
    const codes = metrics.map((metric) => METRIC_CODES[metric] ?? 0)
    found = { metrics, codes, amounts, caps, slotMs, sizeMs }
    shared.set(key, found)
  }
  shared.set(LAST, found)
  return found
}

/** The key under which {@link sharedOf} keeps the lists it answered last (no other key is empty). */
const LAST = ''

/** A counter's rolling slot and window length, `NaN` for any other window. */
function rolling(spec: CounterSpec): { slotMs: number; sizeMs: number } {
  const { window } = spec
  return window.kind === 'sliding' ? window : NOT_ROLLING
}
const NOT_ROLLING = { slotMs: Number.NaN, sizeMs: Number.NaN }

/** Whether `lists` are those of `specs` (in order; NaN equal to NaN). */
function alike(lists: Shared, specs: readonly CounterSpec[]): boolean {
  const { metrics, amounts, caps, slotMs, sizeMs } = lists
  if (metrics.length !== specs.length) return false
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!
    if (metrics[i] !== spec.metric || !Object.is(amounts[i], spec.amount) || !Object.is(caps[i], spec.cap))
      return false
    if (!Object.is(slotMs[i], rolling(spec).slotMs) || !Object.is(sizeMs[i], rolling(spec).sizeMs))
      return false
  }
  return true
}

export function newTicket(specs: readonly CounterSpec[], shared: Map<string, Shared>): Ticket {
  // a literal, not a spread: an object built by a spread is slower to read (bench/README.md)
  const { metrics, codes, amounts, caps, slotMs, sizeMs } = sharedOf(specs, shared)
  return {
    specs,
    owner: shared,
    homes: specs.map(() => undefined),
    fixed: specs.every((spec) => spec.window.kind === 'fixed'),
    metrics,
    codes,
    amounts,
    caps,
    slotMs,
    sizeMs,
    cells: NO_CELLS, // never written to: the first hold makes the arrays
    starts: NO_STARTS,
    resets: specs.map(() => 0),
    until: Number.NEGATIVE_INFINITY,
  }
}

/**
 * Hold again in the cells of a ticket's last reservation at `now` (the caller checked that its
 * calendar windows still run, and that no override or breaker is set): `true` when every cell is
 * still its home's and admits its amount, having held each and written the lane's answer to
 * `out`; `false`, having changed nothing, when the lane's full path must decide. A rolling
 * window's cell is held in again only in the slot it was last held in, and while no slot is due
 * to leave the window (the full path drops such slots first).
 *
 * The homes themselves are not read: a user's homes are rarely in the processor's cache, and reading
 * them was 7% of a reserve+settle. Within the windows the cells were held in, a home keeps its cell
 * unless another window's cell replaces it or the cache drops the home, either of which marks the
 * cell `gone`; a cell held in is marked `seen`, which the cache counts as a read of its home
 * (`homeSeen`).
 */
export function holdAgain(ticket: Ticket, out: number[], now: number): boolean {
  const { cells, amounts, caps, starts, slotMs, sizeMs } = ticket
  const count = cells.length
  for (let i = 0; i < count; i++) {
    const cell = cells[i]!
    if (cell.gone || cell.used + amounts[i]! > caps[i]!) return false
    const { slots } = cell
    // the slot `holdSliding` would hold in, and the oldest slot `dropOldSlots` would keep
    if (
      slots !== undefined &&
      (Math.floor(now / slotMs[i]!) !== Math.round(starts[i]! / slotMs[i]!) ||
        (slots.size > 0 && slots.first! < Math.floor((now - sizeMs[i]!) / slotMs[i]!)))
    )
      return false
  }
  const { resets } = ticket
  for (let i = 0, o = 0; i < count; i++, o += LANE_FIELDS) {
    const cell = cells[i]!
    const amount = amounts[i]!
    const start = starts[i]!
    const { slots } = cell
    if (slots === undefined) out[o + 3] = resets[i]!
    else {
      // what `holdSliding` does in the slot it held in last
      const slot = slotMs[i]!
      const first = slots.first
      out[o + 3] =
        cell.used === 0
          ? start + slot + sizeMs[i]!
          : first === undefined
            ? now
            : (first + 1) * slot + sizeMs[i]!
      slots.add(Math.round(start / slot), amount, amount)
    }
    cell.seen = true
    cell.used += amount
    cell.held += amount
    out[o] = caps[i]!
    out[o + 1] = cell.used
    out[o + 2] = cell.held
    out[o + 4] = start
  }
  return true
}

/**
 * Close a held reservation on calendar windows, no override set (the store's `close` for the
 * common case, from its ticket's arrays rather than its specs): charge each cell the actual
 * amount for its metric in place of the hold, and list the counters past their cap (all when
 * not `brief`).
 */
export function closeHeld(
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
export const NO_COUNTERS: CommitCounter[] = []
