/**
 * Script arguments and answers: counter specs as the 13 arguments `readSpec` reads, and the
 * rows the scripts answer with, as the store contract's types.
 */
import type { CommitCounter, CounterResult, CounterSpec, CounterState } from '@tollgate/core'
import { decodeId, encodeId } from './keys.js'

export type Reply = string | number | null | Reply[]

/** Appends the arguments of one counter: its key, slot tag, metric, amount, cap and window. */
export function pushSpec(args: string[], spec: CounterSpec, amount: number, tag: string, cap = spec.cap) {
  const { window } = spec
  let a = ''
  let b = ''
  switch (window.kind) {
    case 'fixed':
      a = window.bounds.join(',')
      break
    case 'sliding':
      a = String(window.sizeMs)
      b = String(window.slotMs)
      break
    case 'bucket':
      a = String(window.intervalMs)
      break
    case 'lease':
      a = String(window.ttlMs)
      break
  }
  const { throttle } = spec
  args.push(
    encodeId(spec.key),
    tag,
    encodeId(spec.metric),
    String(amount),
    String(cap),
    spec.enforce ? '1' : '0',
    spec.expiry,
    window.kind,
    a,
    b,
    spec.alerts ? spec.alerts.join(',') : '',
    spec.trip ? String(spec.trip.cooldownMs) : '',
    throttle ? `${throttle.at},${throttle.limit},${throttle.periodMs}` : '',
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
 * A reserve row as a counter result. `before`: report the state before this reservation's hold
 * (fields 13–15, sent when asked with the 'p' flag), for a hold that was taken back.
 */
export function counterResult(spec: CounterSpec, row: Reply[], before = false): CounterResult {
  const result: CounterResult = {
    ...state(row),
    denied: row[5] === 1,
    retryAfterMs: row[6] === null ? null : Number(row[6]),
    crossed: spec.alerts ? spec.alerts.slice(row[7] as number, row[8] as number) : [],
    tripped: row[9] === 1,
    trippedNow: row[10] === 1,
    throttled: row[11] === 1,
  }
  if (before) {
    result.used = Number(row[12])
    result.held = Number(row[13])
    result.resetAt = row[14] === null ? null : Number(row[14])
    result.crossed = []
  }
  return result
}

/** A commit row, and the counter's place in its reservation where the record kept it (Cluster). */
export function commitRow(row: Reply[]): { counter: CommitCounter; position: number | undefined } {
  return {
    counter: {
      key: decodeId(row[0] as string),
      metric: decodeId(row[1] as string),
      held: Number(row[2]),
      charged: Number(row[3]),
      overdraft: Number(row[4]),
    },
    position: row[5] === undefined || row[5] === null ? undefined : Number(row[5]),
  }
}
