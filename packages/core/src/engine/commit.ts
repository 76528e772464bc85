/**
 * Settle and release: close a reservation by id, idempotently, from this process's
 * memory of it or, when another process made it, from the store's record.
 */

import type { Amounts } from '../decision.js'
import { TollgateError } from '../errors.js'
import type {
  CommitCounter,
  Lane,
  ReservationMeta,
  StoreCommit,
  StoreCommitResult,
  StoredReservation,
} from '../store/contract.js'
import { recordTime } from './answers.js'
import type { SettleRecord } from './audit.js'
import type { Engine, Held } from './context.js'
import { actualAmounts } from './models.js'
import type { CommitResult, Usage } from './types.js'
import { readUsage } from './validate.js'

const none: CommitResult = { status: 'unknown', late: false, amounts: {}, overrun: {}, overdraft: [] }

/** Settle with `usage`, or release with `null`. */
export function commit(engine: Engine, id: string, usage: Usage | null): Promise<CommitResult> {
  try {
    const result = commitNow(engine, id, usage)
    return result instanceof Promise ? result : Promise.resolve(result)
  } catch (error) {
    return Promise.reject(error)
  }
}

/** `commit` with no promise in between where the store answers synchronously. */
function commitNow(engine: Engine, id: string, given: Usage | null): Promise<CommitResult> | CommitResult {
  if (typeof id !== 'string' || id.length === 0) {
    throw new TollgateError('invalid_request', 'a reservation id is a non-empty string')
  }
  // a checked copy: what is charged is what was checked, whatever the caller's object does meanwhile
  const usage = given === null ? null : readUsage(given)
  const { store, call, held } = engine
  const entry: Held | undefined = held.size === 0 ? undefined : held.get(id)
  if (entry) return close(engine, id, usage, entry)
  const { lane } = engine
  const meta = lane?.meta(id)
  if (meta) return closeOnLane(engine, lane!, id, usage, heldOf(meta))
  // made by another process, or by the store's lane (which keeps nothing here): the store's record says
  const found = call(() => store.lookup(id), '', null)
  if (found instanceof Promise) return found.then((stored) => closeStored(engine, id, usage, stored))
  return closeStored(engine, id, usage, found)
}

function closeStored(
  engine: Engine,
  id: string,
  usage: Usage | null,
  stored: StoredReservation | null,
): Promise<CommitResult> | CommitResult {
  return stored ? close(engine, id, usage, heldOf(stored.meta)) : none
}

/**
 * What the engine needs of a reservation, from its meta in the store: the meta itself when it is
 * shaped as the engine writes it (`{ model, amounts, units? }`), which saves a settle an object;
 * otherwise a copy of its model and amounts alone. A meta is any JSON a store kept: a key the
 * engine reads of a held entry (`degraded`, `local`) must never come from it.
 */
function heldOf(meta: ReservationMeta): Held {
  const { model, amounts } = meta
  if (
    typeof model === 'string' &&
    typeof amounts === 'object' &&
    amounts !== null &&
    meta.degraded === undefined &&
    meta.local === undefined
  )
    return meta as unknown as Held
  // `units`: the amounts may hold custom units (a settle looks for them)
  return { model: typeof model === 'string' ? model : '', amounts: (amounts ?? {}) as Amounts, units: true }
}

/** Close a reservation this process knows about (`entry`). */
function close(
  engine: Engine,
  id: string,
  usage: Usage | null,
  entry: Held,
): Promise<CommitResult> | CommitResult {
  const { held, policy } = engine
  if (entry.degraded) {
    held.delete(id)
    const degraded: CommitResult = { ...none, status: 'degraded' }
    // nothing was held, but the call was made: its record still says what it used
    const spent = usage === null ? {} : actualAmounts(policy, entry.model || undefined, entry.amounts, usage)
    return record(engine, id, entry, usage, { ...degraded, amounts: spent }).then(() => degraded)
  }
  const amounts =
    usage === null ? null : actualAmounts(policy, entry.model || undefined, entry.amounts, usage)
  return commitAmounts(engine, id, usage, entry, amounts)
}

/**
 * Close a reservation the store's lane has just found (`lane.meta`): in one step on the lane,
 * or by the store's commit when the lane declines.
 */
function closeOnLane(
  engine: Engine,
  lane: Lane,
  id: string,
  usage: Usage | null,
  entry: Held,
): Promise<CommitResult> | CommitResult {
  const amounts =
    usage === null
      ? null
      : actualAmounts(engine.policy, entry.model || undefined, entry.amounts, usage, entry.units === true)
  const counters = lane.close(id, amounts)
  if (counters === undefined) return commitAmounts(engine, id, usage, entry, amounts)
  const status = amounts === null ? 'released' : 'settled'
  return answerOf(engine, id, usage, entry, amounts, status, false, counters)
}

/** Commit `amounts` (`null`: release) to the store holding the reservation. */
function commitAmounts(
  engine: Engine,
  id: string,
  usage: Usage | null,
  entry: Held,
  amounts: Record<string, number> | null,
): Promise<CommitResult> | CommitResult {
  const input: StoreCommit = { id, amounts, brief: true }
  const answer = entry.local ? engine.local!.commit(input) : storeCommit(engine, input)
  if (answer instanceof Promise) return waitClosed(engine, answer, input, usage, entry)
  return closed(engine, id, usage, entry, amounts, answer)
}

/**
 * `close` for a store that answers with a promise (kept apart: its closures would cost every
 * synchronous settle an allocation). A commit that lands after the timeout still closed the
 * reservation: its record is emitted then.
 */
function waitClosed(
  engine: Engine,
  answer: Promise<StoreCommitResult>,
  input: StoreCommit,
  usage: Usage | null,
  entry: Held,
): Promise<CommitResult> {
  const { id, amounts } = input
  const late = (result: StoreCommitResult) => {
    if (result.status !== 'settled' && result.status !== 'released') return
    const answered = closed(engine, id, usage, entry, amounts, result)
    if (answered instanceof Promise) answered.catch(() => {})
  }
  // the local fallback store is in memory: no timeout
  const timed = entry.local ? answer : withLate(engine, answer, late)
  return timed.then((result) => closed(engine, id, usage, entry, amounts, result))
}

/** What a commit answers, from the store's answer. */
function closed(
  engine: Engine,
  id: string,
  usage: Usage | null,
  entry: Held,
  amounts: Record<string, number> | null,
  result: StoreCommitResult,
): Promise<CommitResult> | CommitResult {
  const { held } = engine
  if (held.size > 0) held.delete(id) // an empty map would still hash the id
  if (result.status === 'unknown') return none
  if (result.status === 'duplicate') return { ...none, status: 'duplicate' }
  return answerOf(engine, id, usage, entry, amounts, result.status, result.late, result.counters)
}

/** What a commit that closed the reservation answers. */
function answerOf(
  engine: Engine,
  id: string,
  usage: Usage | null,
  entry: Held,
  amounts: Record<string, number> | null,
  status: 'settled' | 'released',
  late: boolean,
  counters: readonly CommitCounter[],
): Promise<CommitResult> | CommitResult {
  const overrun: Record<string, number> = {}
  if (amounts !== null) {
    // only what usage reports can move past the estimate: tokens, cost and custom units
    const before = entry.amounts
    const { inputTokens, outputTokens, tokens, cost } = amounts
    if (inputTokens !== undefined && inputTokens > (before.inputTokens ?? 0))
      overrun.inputTokens = inputTokens - (before.inputTokens ?? 0)
    if (outputTokens !== undefined && outputTokens > (before.outputTokens ?? 0))
      overrun.outputTokens = outputTokens - (before.outputTokens ?? 0)
    if (tokens !== undefined && tokens > (before.tokens ?? 0)) overrun.tokens = tokens - (before.tokens ?? 0)
    if (cost !== undefined && cost > (before.cost ?? 0)) overrun.cost = cost - (before.cost ?? 0)
    for (const unit in usage?.units) {
      const beyond = (amounts[unit] ?? 0) - (entry.amounts[unit] ?? 0)
      if (beyond > 0) overrun[unit] = beyond
    }
  }
  const answer: CommitResult = {
    status,
    late,
    amounts: amounts ?? {},
    overrun,
    overdraft: [],
  }
  for (const c of counters)
    if (c.overdraft > 0)
      answer.overdraft.push({
        rule: c.key.slice(0, c.key.indexOf(':')),
        metric: c.metric,
        amount: c.overdraft,
      })
  if (engine.options.onSettle) return record(engine, id, entry, usage, answer).then(() => answer)
  return answer
}

/** Whether any rule of the policy limits cost. */
const countsCost = (engine: Engine) =>
  engine.policy.rules.some((r) => r.limits.some((l) => l.metric === 'cost'))

/** Hands the settle record to `onSettle`, when one is set. */
async function record(
  engine: Engine,
  id: string,
  entry: Held,
  usage: Usage | null,
  result: CommitResult,
): Promise<void> {
  const hook = engine.options.onSettle
  if (!hook) return
  const at = await recordTime(engine.store, engine.timeoutMs)
  const actual: Record<string, number> = {}
  for (const metric in entry.amounts) actual[metric] = result.amounts[metric] ?? 0
  for (const metric in result.amounts) actual[metric] = result.amounts[metric]!
  engine.emit(hook, {
    event: usage === null ? 'release' : 'settle',
    id,
    at,
    status: result.status as SettleRecord['status'],
    model: entry.model || null,
    estimate: entry.amounts,
    actual,
    // null when no rule counts cost (amounts always carry a cost, 0 for an unpriced model)
    cost: countsCost(engine) ? (actual.cost ?? 0) : null,
    overrun: result.overrun,
    late: result.late,
    estimated: usage?.estimated === true,
  } satisfies SettleRecord)
}

/** One store commit; a synchronous store answers with no promise in between. */
function storeCommit(engine: Engine, input: StoreCommit): Promise<StoreCommitResult> | StoreCommitResult {
  const { store, call } = engine
  try {
    return store.commit(input)
  } catch (error) {
    return call.fail(error)
  }
}

/**
 * A store commit's answer within the timeout. When the store answers only after the timeout (the
 * caller already told `store_unavailable`), `late` gets that answer.
 */
function withLate(
  engine: Engine,
  answer: Promise<StoreCommitResult>,
  late: (result: StoreCommitResult) => void,
): Promise<StoreCommitResult> {
  return engine.call.wait(answer, '', null).catch((error: unknown) => {
    // timed out: the store's answer, if it still comes, is the late one (a store that failed never calls `late`)
    answer.then(late, () => {})
    throw error
  })
}
