/**
 * Script arguments and answers: counter specs as the 8 arguments `readSpec` reads, and the
 * rows the scripts answer with, as the store contract's types.
 */
import type { CommitCounter, CounterResult, CounterSpec, CounterState, StoreCommit } from '@tollgate/core'
import { decodeId, encodeId } from './keys.js'

export type Reply = string | number | null | Reply[]

/**
 * A reserve under an id that is closed already (settled, released, expired, or abandoned after its
 * answer was lost): the scripts hold nothing and answer `again`. The engine never reuses an id that
 * way (it tries an id again only after `skew`, which stores nothing); the answer reaches a caller of
 * the store's own that does, or nobody (a reserve ioredis resent after its caller was told it failed).
 */
export function replayed(id: string): Error {
  // `code` as the store contract names it, so that a store server answers it as a refusal (4xx)
  return Object.assign(
    new Error(
      `tollgate: reservation id ${JSON.stringify(id)} was used before and is closed; nothing was held`,
    ),
    { code: 'reservation_closed' },
  )
}

/**
 * The commit script's mode for a contract commit: `settle`, `release`, or `abandon` (the contract's
 * `abandon: true` with `amounts: null`: the mode the store's own clean-up of a lost reserve sends).
 */
export function commitMode(input: StoreCommit): 'settle' | 'release' | 'abandon' {
  if (input.amounts !== null) return 'settle'
  return input.abandon === true ? 'abandon' : 'release'
}

/** Arguments per counter (see {@link pushSpec} and the scripts' `readSpec`). */
export const SPEC_FIELDS = 8

/** Window kinds, expiry and enforcement as the letters of a counter's mode argument. */
const KIND = { fixed: 'f', sliding: 's', bucket: 'g', lease: 'l' } as const

/** The text of calendar bounds by their array, which the engine reuses until the window ends. */
const joined = new WeakMap<readonly number[], { values: number[]; text: string }>()

function boundsText(bounds: readonly number[]): string {
  const known = joined.get(bounds)
  // Checked value by value: a caller may change an array it passed before.
  if (known && known.values.length === bounds.length && known.values.every((v, i) => v === bounds[i]))
    return known.text
  const text = bounds.join(',')
  joined.set(bounds, { values: [...bounds], text })
  return text
}

/**
 * Appends the 8 arguments of one counter: key, slot tag, metric, amount, cap, mode (window kind
 * letter, `k`eep or `r`elease, `1` enforce or `0` shadow), window (calendar bounds, `size,slot`,
 * bucket interval or lease TTL) and extras (`alerts|cooldown|throttle`, empty when none of them).
 */
export function pushSpec(args: string[], spec: CounterSpec, amount: number, tag: string, cap = spec.cap) {
  const { window, alerts, trip, throttle } = spec
  let text: string
  switch (window.kind) {
    case 'fixed':
      text = boundsText(window.bounds)
      break
    case 'sliding':
      text = `${window.sizeMs},${window.slotMs}`
      break
    case 'bucket':
      text = String(window.intervalMs)
      break
    case 'lease':
      text = String(window.ttlMs)
      break
  }
  const extras =
    alerts || trip || throttle
      ? `${alerts ? alerts.join(',') : ''}|${trip ? trip.cooldownMs : ''}|${throttle ? `${throttle.at},${throttle.limit},${throttle.periodMs}` : ''}`
      : ''
  args.push(
    encodeId(spec.key),
    tag,
    encodeId(spec.metric),
    String(amount),
    String(cap),
    `${KIND[window.kind]}${spec.expiry === 'release' ? 'r' : 'k'}${spec.enforce ? '1' : '0'}`,
    text,
    extras,
  )
}

/** Arguments per counter of the lean reserve (see {@link pushFast} and lua/fast.ts). */
export const FAST_FIELDS = 7

/**
 * Whether the lean reserve (lua/fast.ts) can take these counters: calendar or lifetime windows only,
 * none with alerts, breaker or throttle, no key twice. It answers as the reserve script would.
 */
export function fastEligible(specs: readonly CounterSpec[]): boolean {
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!
    if (spec.window.kind !== 'fixed' || spec.alerts || spec.trip || spec.throttle) return false
    for (let j = 0; j < i; j++) if (specs[j]!.key === spec.key) return false
  }
  return true
}

/**
 * Appends the 7 arguments of one counter of the lean reserve: key, slot tag, metric, amount, cap,
 * mode (`k`eep or `r`elease, then `1` enforce or `0` shadow) and calendar bounds.
 */
export function pushFast(args: string[], spec: CounterSpec, tag: string) {
  const { window } = spec
  args.push(
    encodeId(spec.key),
    tag,
    encodeId(spec.metric),
    String(spec.amount),
    String(spec.cap),
    spec.expiry === 'release' ? (spec.enforce ? 'r1' : 'r0') : spec.enforce ? 'k1' : 'k0',
    window.kind === 'fixed' ? boundsText(window.bounds) : '',
  )
}

/** A counter's state row: cap, used, held, resetAt, windowStart. */
export const state = (row: Reply[]): CounterState => ({
  cap: Number(row[0]),
  used: Number(row[1]),
  held: Number(row[2]),
  resetAt: row[3] === null ? null : Number(row[3]),
  windowStart: Number(row[4]),
})

/**
 * Values per counter in a reserve answer: cap, used, held, resetAt, windowStart, flags, retry. The flags
 * carry the alerts crossed too (from: bits 5–20, to: from bit 21).
 */
export const ROW = 7
/** With the 'p' flag (Cluster), each row also carries the state before the hold: used, held, resetAt. */
export const ROW_BEFORE = ROW + 3

/** Bits of a reserve row's flags. */
const DENIED = 1
const TRIPPED = 2
const TRIPPED_NOW = 4
const THROTTLED = 8
/** A calendar window read straight: resetAt and windowStart are not sent (see {@link fixedWindow}). */
const DERIVED = 16

/** The calendar window of `bounds` holding `now`: its start, and its end unless it never ends. */
function fixedWindow(spec: CounterSpec, now: number): { windowStart: number; resetAt: number | null } {
  const bounds = spec.window.kind === 'fixed' ? spec.window.bounds : []
  for (let i = 0; i < bounds.length - 1; i++) {
    const start = bounds[i]!
    const stop = bounds[i + 1]!
    // The script answers this way only for a window it found at now; NEVER as in the scripts.
    if (start <= now && now < stop)
      return { windowStart: start, resetAt: stop < Number.MAX_SAFE_INTEGER ? stop : null }
  }
  throw new Error('tollgate: no calendar window at the time of the answer')
}

/**
 * The counter result at `at` in a flat reserve answer (see the reserve script). `before`: report the
 * state before this reservation's hold (sent when asked with the 'p' flag), for a hold that was taken back.
 */
export function counterResult(spec: CounterSpec, reply: Reply[], at: number, before = false): CounterResult {
  const flags = reply[at + 5] as number
  const retry = reply[at + 6]
  const from = Math.floor(flags / 32) % 65536
  const to = Math.floor(flags / 2097152)
  let resetAt: number | null
  let windowStart: number
  if (flags & DERIVED) ({ windowStart, resetAt } = fixedWindow(spec, Number(reply[1])))
  else {
    resetAt = reply[at + 3] === null ? null : Number(reply[at + 3])
    windowStart = Number(reply[at + 4])
  }
  const result: CounterResult = {
    cap: Number(reply[at]),
    used: Number(reply[at + 1]),
    held: Number(reply[at + 2]),
    resetAt,
    windowStart,
    denied: (flags & DENIED) !== 0,
    retryAfterMs: retry === null ? null : Number(retry),
    crossed: spec.alerts && to > from ? spec.alerts.slice(from, to) : [],
    tripped: (flags & TRIPPED) !== 0,
    trippedNow: (flags & TRIPPED_NOW) !== 0,
    throttled: (flags & THROTTLED) !== 0,
  }
  if (before) {
    const then = reply[at + ROW + 2]
    result.used = Number(reply[at + ROW])
    result.held = Number(reply[at + ROW + 1])
    result.resetAt = then === null ? null : Number(then)
    result.crossed = []
  }
  return result
}

/** Values per counter in a commit answer: key, metric, held, charged, overdraft, position. */
export const COMMIT_ROW = 6

/** The commit rows of a flat list, each with the counter's place in its reservation (Cluster). */
export function commitRows(rows: Reply[]): { counter: CommitCounter; position: number | undefined }[] {
  const out: { counter: CommitCounter; position: number | undefined }[] = []
  for (let at = 0; at + COMMIT_ROW <= rows.length; at += COMMIT_ROW) {
    const position = rows[at + 5]
    out.push({
      counter: {
        key: decodeId(rows[at] as string),
        metric: decodeId(rows[at + 1] as string),
        held: Number(rows[at + 2]),
        charged: Number(rows[at + 3]),
        overdraft: Number(rows[at + 4]),
      },
      position: position === null || position === undefined ? undefined : Number(position),
    })
  }
  return out
}
