/**
 * Reports for dashboards and operators: the state of a subject's limits with utilization
 * and a projection to the window's end (`gate.usage`), and the busiest partitions of a
 * rule (`gate.top`). Both only read the store.
 */

import type { LimitState, Subject } from '../decision.js'
import { TollgateError } from '../errors.js'
import { counterKey, escapeId, parsePartition } from '../keys.js'
import type { MatchContext } from '../policy/match.js'
import type { CounterSpec, CounterState } from '../store/contract.js'
import { readAnswer, timeOf } from './answers.js'
import type { Engine } from './context.js'
import { buildSlots, limitState, matchRules } from './counters.js'
import { resolveModel, tierOf } from './models.js'
import type { ReserveRequest } from './types.js'
import { checkIdMap, checkRequest, checkRuleRef, readEstimate, snapshotRequest } from './validate.js'

/** A limit's state in a usage report. */
export interface UsageState extends LimitState {
  /** `used / limit`, past 1 after an overrun; `null` for a zero limit (no ratio to give). */
  utilization: number | null
  /**
   * What the window will have counted when it ends if use goes on at the rate seen since it
   * started (calendar windows); `null` for rolling windows, buckets, concurrency and lifetime.
   */
  projected: number | null
  /** When the limit would be reached at that rate, if before the window ends; else `null`. */
  exhaustsAt: number | null
}

/** One partition of a rule in a breakdown. */
export interface PartitionUsage {
  /**
   * The partition's ids by dimension. With a policy `tenant`, a partition counted within a tenant
   * names it too (`{ user: 'u1', org: 'a' }`): the same id in two tenants is two rows.
   */
  partition: Subject
  used: number
  held: number
  limit: number
  remaining: number
  utilization: number
  resetAt: number | null
}

/** What `gate.top` reports on. */
export interface TopQuery {
  rule: string
  /** @default the rule's only metric, or `cost` for balances (a rule of several metrics asks for one) */
  metric?: string
  /**
   * Only partitions with these ids, e.g. `{ project: 'p1' }` for the users of one project, or
   * `{ org: 'a' }` for the users of one tenant (the policy's `tenant` dimension).
   */
  where?: Subject
  /** @default 10 */
  limit?: number
}

/** The state of a limit with its utilization and projection, from what the store read. */
export function usageState(limit: LimitState, state: CounterState, now: number): UsageState {
  // no share of a zero limit (as documented): 0 or Infinity read as "idle" or broke JSON (null)
  const utilization = limit.limit > 0 ? limit.used / limit.limit : null
  let projected: number | null = null
  let exhaustsAt: number | null = null
  if (limit.kind === 'calendar' && limit.resetAt !== null) {
    const elapsed = now - state.windowStart
    const length = limit.resetAt - state.windowStart
    projected = elapsed > 0 ? Math.round((limit.used * length) / elapsed) : limit.used
    if (limit.used >= limit.limit) exhaustsAt = limit.used > 0 || limit.limit === 0 ? now : null
    else if (limit.used > 0 && elapsed > 0) {
      const at = now + Math.ceil(((limit.limit - limit.used) * elapsed) / limit.used)
      exhaustsAt = at < limit.resetAt ? at : null
    }
  }
  return { ...limit, utilization, projected, exhaustsAt }
}

/** State of every rule that applies to a subject; model and feature may be left out. */
export async function usage(
  engine: Engine,
  request: Omit<ReserveRequest, 'estimate'>,
): Promise<UsageState[]> {
  request = snapshotRequest(request as ReserveRequest) // read once: checked is what is used
  checkRequest(request, engine.maxIdLength)
  readEstimate((request as ReserveRequest).estimate) // checked, not used
  const { slots, states, now } = await readLimits(engine, request)
  return slots.map((slot, i) => usageState(limitState(slot, states[i]!), states[i]!, now))
}

/** The state of every rule that applies to a checked request, as a decision lists its limits. */
export async function limitsNow(
  engine: Engine,
  request: Omit<ReserveRequest, 'estimate'>,
): Promise<LimitState[]> {
  const { slots, states } = await readLimits(engine, request)
  return slots.map((slot, i) => limitState(slot, states[i]!))
}

/** The counters of every rule that applies to a checked request, read from the store. */
async function readLimits(engine: Engine, request: Omit<ReserveRequest, 'estimate'>) {
  const { policy, store } = engine
  const model = resolveModel(policy, request.model)
  const context: MatchContext = {
    subject: request.subject,
    attributes: request.attributes ?? {},
    model,
    tier: tierOf(policy, model),
    feature: request.feature,
  }
  const matched = matchRules(policy, context, true)
  const now = timeOf(await engine.call(() => store.now(), '', null))
  const slots = buildSlots(policy, request.subject, matched, {}, now, engine.windows, true)
  const states = readAnswer(
    await engine.call(() => store.read(slots.map((s) => s.spec)), '', null),
    slots.length,
  )
  return { slots, states, now }
}

/** The partitions of a rule that used the most of one metric in the current window. */
export async function top(engine: Engine, query: TopQuery): Promise<PartitionUsage[]> {
  const { policy, store } = engine
  checkRuleRef(query, 'the query')
  if (query.where !== undefined && query.where !== null) checkIdMap(query.where, engine.maxIdLength, 'where')
  const rule = policy.rulesById.get(query.rule)
  if (!rule) throw new TollgateError('unknown_rule', `No rule "${query.rule}" in the policy.`)
  if (!store.scan) throw new TollgateError('invalid_request', 'This store cannot list partitions (no scan).')
  const metric =
    query.metric ?? (rule.limits.length === 1 ? rule.limits[0]!.metric : rule.balance ? 'cost' : undefined)
  const limit = rule.limits.find((l) => l.metric === metric)
  if (!limit) {
    const what = metric === undefined ? 'several metrics: name one' : `no "${metric}" limit`
    throw new TollgateError('invalid_request', `Rule "${rule.id}" has ${what}.`)
  }
  const count = query.limit ?? 10
  if (!Number.isInteger(count) || count < 1 || count > 10_000)
    throw new TollgateError('invalid_request', 'limit must be a whole number from 1 to 10000')
  const where = query.where ?? {}
  // the first `per` dimension narrows the scan when it is asked for
  const first = rule.per[0]
  const narrowed =
    first !== undefined && where[first] !== undefined ? `${escapeId(first)}=${escapeId(where[first])}` : ''
  const prefix = counterKey(rule.id, limit.metric, narrowed)
  const now = timeOf(await engine.call(() => store.now(), '', null))
  const probe: CounterSpec = {
    key: rule.per.length > 1 && narrowed !== '' ? `${prefix},` : prefix,
    metric: limit.metric,
    amount: 0,
    cap: limit.cap,
    enforce: true,
    window: engine.windows.spec(rule, limit.metric, limit.cap, now),
    expiry: 'keep',
  }
  const found = await engine.call(() => store.scan!(probe, 100_000), '', null)
  const base = counterKey(rule.id, limit.metric, '')
  const rows: PartitionUsage[] = []
  const { tenant } = policy
  for (const { key, scope, state } of found) {
    const partition = parsePartition(key.slice(base.length))
    // counted within a tenant: the row names it (one id in two tenants is two partitions)
    if (tenant !== undefined && scope !== undefined) partition[tenant] = scope
    if (Object.entries(where).some(([d, id]) => partition[d] !== id)) continue
    rows.push({
      partition,
      used: state.used,
      held: state.held,
      limit: state.cap,
      remaining: Math.max(0, state.cap - state.used),
      utilization: state.cap > 0 ? state.used / state.cap : 0,
      resetAt: state.resetAt,
    })
  }
  rows.sort((a, b) => b.used - a.used)
  return rows.slice(0, count)
}
