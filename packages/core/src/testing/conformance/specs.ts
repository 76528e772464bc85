/**
 * Helpers of the store conformance suite: a fresh store and clock per test, keys no other
 * test uses, counter specs for every window kind, and small awaited wrappers around the
 * store's methods (the contract lets a store answer synchronously or with a promise).
 */
import { expect } from 'vitest'
import type {
  CounterResult,
  CounterSpec,
  CounterState,
  Store,
  StoreCommitResult,
  StoreReserve,
  StoreReserveResult,
  WindowSpec,
} from '../../store/contract.js'
import { calendarBounds } from '../../windows/calendar.js'
import { type FakeClock, fakeClock } from '../fake-clock.js'

/** Builds the store under test from a fresh fake clock. */
export type MakeStore = (clock: FakeClock) => Store | Promise<Store>

/** What every part of the suite is given. */
export interface Suite {
  makeStore: MakeStore
  numRuns: number
}

/** What one test works with. */
export interface Harness {
  clock: FakeClock
  store: Store
  /** A counter key (or block marker) no other test, run or call uses. */
  key(label?: string): string
  /** A reservation id no other test, run or call uses. */
  id(label?: string): string
}

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
let tests = 0

/** A fresh fake clock (2026-01-05T00:00:00Z unless `start` says otherwise) and a fresh store on it. */
export async function harness(suite: Suite, start?: number | string): Promise<Harness> {
  const clock = fakeClock(start)
  const store = await suite.makeStore(clock)
  const scope = `tollgate-conformance:${run}:${++tests}`
  let n = 0
  return {
    clock,
    store,
    key: (label = 'counter') => `${scope}:${label}:${++n}`,
    id: (label = 'reservation') => `${scope}:${label}#${++n}`,
  }
}

export const SECOND = 1_000
export const MINUTE = 60_000
export const HOUR = 3_600_000
export const DAY = 86_400_000

/** The UTC calendar minute around `now`, with its neighbours: `[prevStart, start, end, nextEnd]`. */
export const minute = (now: number): WindowSpec & { kind: 'fixed' } => ({
  kind: 'fixed',
  bounds: calendarBounds('minute', 'UTC', now, 1),
})
/** The UTC calendar day around `now`, with its neighbours. */
export const day = (now: number): WindowSpec & { kind: 'fixed' } => ({
  kind: 'fixed',
  bounds: calendarBounds('day', 'UTC', now, 1),
})
/** A window that never ends (budgets, prepaid balances). */
export const lifetime = (): WindowSpec => ({ kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] })
export const sliding = (sizeMs: number, slotMs: number): WindowSpec => ({ kind: 'sliding', sizeMs, slotMs })
export const bucket = (intervalMs: number): WindowSpec => ({ kind: 'bucket', intervalMs })
export const lease = (ttlMs: number): WindowSpec => ({ kind: 'lease', ttlMs })

/** An enforced `tokens` counter holding `amount`, with `expiry: 'keep'` unless `extra` says otherwise. */
export function counter(
  key: string,
  window: WindowSpec,
  cap: number,
  amount = 1,
  extra: Partial<CounterSpec> = {},
): CounterSpec {
  return { key, metric: 'tokens', amount, cap, enforce: true, window, expiry: 'keep', ...extra }
}

/** The same counter asking for another amount. */
export const asking = (spec: CounterSpec, amount: number): CounterSpec => ({ ...spec, amount })

/** A reserve input with a one-hour ttl, no block markers and a small meta unless `extra` says otherwise. */
export function reserveInput(
  id: string,
  counters: CounterSpec[],
  extra: Partial<StoreReserve> = {},
): StoreReserve {
  return { id, counters, ttlMs: HOUR, blocks: [], meta: { model: 'conformance-model' }, ...extra }
}

export async function reserve(
  store: Store,
  id: string,
  counters: CounterSpec[],
  extra: Partial<StoreReserve> = {},
): Promise<StoreReserveResult> {
  return await store.reserve(reserveInput(id, counters, extra))
}

/** The per-counter answers of a reserve, asserting its status first. */
export function countersOf(result: StoreReserveResult, status: 'ok' | 'denied'): CounterResult[] {
  expect(result.status, `reserve answered ${JSON.stringify(result)}`).toBe(status)
  if (result.status !== 'ok' && result.status !== 'denied') throw new Error('unreachable')
  return result.counters
}

/** Reserve, expecting `ok`; returns the per-counter answers. */
export async function reserveOk(
  store: Store,
  id: string,
  specs: CounterSpec[],
  extra: Partial<StoreReserve> = {},
): Promise<CounterResult[]> {
  const answer = countersOf(await reserve(store, id, specs, extra), 'ok')
  expect(answer).toHaveLength(specs.length)
  return answer
}

/** Reserve, expecting `denied`; returns the per-counter answers. */
export async function reserveDenied(
  store: Store,
  id: string,
  specs: CounterSpec[],
  extra: Partial<StoreReserve> = {},
): Promise<CounterResult[]> {
  const answer = countersOf(await reserve(store, id, specs, extra), 'denied')
  expect(answer).toHaveLength(specs.length)
  return answer
}

export async function read(store: Store, specs: CounterSpec[]): Promise<CounterState[]> {
  const states = await store.read(specs)
  expect(states).toHaveLength(specs.length)
  return states
}

export async function readOne(store: Store, spec: CounterSpec): Promise<CounterState> {
  return (await read(store, [spec]))[0]!
}

/** `used` and `held` of each counter, for before/after comparisons. */
export async function snapshot(
  store: Store,
  specs: CounterSpec[],
): Promise<{ used: number; held: number }[]> {
  return (await read(store, specs)).map(({ used, held }) => ({ used, held }))
}

export async function settle(
  store: Store,
  id: string,
  amounts: Record<string, number>,
): Promise<StoreCommitResult> {
  return await store.commit({ id, amounts })
}

export async function release(store: Store, id: string): Promise<StoreCommitResult> {
  return await store.commit({ id, amounts: null })
}

/** Commit and expect `settled` or `released` with the given `late`; returns the per-counter answers. */
export function closed(result: StoreCommitResult, status: 'settled' | 'released', late = false) {
  expect(result, `commit answered ${JSON.stringify(result)}`).toMatchObject({ status, late })
  if (result.status !== 'settled' && result.status !== 'released') throw new Error('unreachable')
  return result.counters
}
