/**
 * Folding decisions, settles and alerts into a {@link SimulationState}: counts per rule
 * and reason, spend per partition, cap hits, and (for reports) usage over time.
 */
import type {
  Alert,
  AllowedDecision,
  Amounts,
  CompiledPolicy,
  Decision,
  LimitState,
  Subject,
} from '@tollgate/core'
import { emptyState } from './state.js'
import type { PartitionSpend } from './types.js'

/** Options of {@link createCollector}. */
export interface CollectorOptions {
  /**
   * Partitions listed per rule in `spend` and `capsHit`, and lines per chart.
   * @default 5
   * @example { top: 10 }
   */
  top?: number
  /**
   * Record usage over time for charts (one sample per partition, metric and bucket).
   * @default false
   * @example { series: true } // then renderReport({ summary, charts })
   */
  series?: boolean
  /**
   * Width of a sampling bucket for charts, in ms.
   * @default 300_000 (5 minutes)
   * @example { bucketMs: 60_000 }
   */
  bucketMs?: number
}

/**
 * The values of a partition, joined: a key unique within one rule (its `per` order is fixed).
 * A one-dimension partition is keyed by its id itself, which needs no new string.
 */
export function keyOf(partition: Subject): string {
  let key: string | undefined
  for (const dimension in partition) {
    const id = partition[dimension]!
    key = key === undefined ? id : `${key}\u0000${id}`
  }
  return key ?? ''
}

const bump = <V>(map: Map<string, V>, key: string, make: () => V): V => {
  let value = map.get(key)
  if (value === undefined) {
    value = make()
    map.set(key, value)
  }
  return value
}

function endOf(state: LimitState, at: number): number {
  if (state.kind === 'calendar') return state.resetAt ?? Number.POSITIVE_INFINITY
  if (state.kind === 'concurrency') return at
  return at + (state.windowMs ?? 0)
}

export type Collector = ReturnType<typeof createCollector>

/**
 * A collector for one replay of `policy`. `track` names rules whose partition keys are
 * recorded in `state.seen`, for a sharded run to prove its shards independent.
 */
export function createCollector(
  policy: CompiledPolicy,
  options: CollectorOptions = {},
  track: string[] = [],
) {
  const state = emptyState(policy.rules.map((rule) => rule.id))
  const bucketMs = options.bucketMs ?? 300_000
  const tracked = new Map(track.map((rule) => [rule, new Set<string>()]))
  state.seen = tracked

  // With a tenant, a rule per subject dimensions counts each partition within the request's tenant
  // (user u1 of two orgs is two users, as the engine's scopeOf): its rows name the tenant too, as
  // `gate.top` does.
  const { tenant } = policy
  const rules = new Map(policy.rules.map((r) => [r.id, r]))
  /** The partition of `rule`, with the tenant of `subject` when the rule counts within one. */
  const within = (rule: string, partition: Subject, subject: Subject | undefined): Subject => {
    const id = tenant === undefined || subject === undefined ? undefined : subject[tenant]
    if (id === undefined || partition[tenant!] !== undefined) return partition
    const per = rules.get(rule)?.per ?? []
    return per.some((d) => subject![d] !== undefined) ? { ...partition, [tenant!]: id } : partition
  }

  const refusal = (rule: string | null, code: string, status: number) =>
    bump(state.refusals, `${rule}\u0000${code}`, () => ({ rule, code, status, refused: 0, shadowRefused: 0 }))

  function hit(rule: string, metric: string, partition: Subject, at: number, line: number, shadow: boolean) {
    const row = bump(state.hits, `${rule}\u0000${metric}`, () => ({
      rule,
      metric,
      firstAt: at,
      firstLine: line,
      partition,
      hits: 0,
      shadow,
      byPartition: new Map(),
    }))
    row.hits++
    bump(row.byPartition, keyOf(partition), () => ({ partition, hits: 0 })).hits++
  }

  function sample(limit: LimitState, partition: Subject, key: string, at: number) {
    const samples = bump(state.samples, `${limit.rule}\u0000${limit.metric}\u0000${key}`, () => ({
      rule: limit.rule,
      metric: limit.metric,
      partition,
      cap: limit.limit,
      shadow: limit.shadow,
      peak: 0,
      times: [],
      values: [],
      ends: [],
    }))
    const bucket = at - (at % bucketMs)
    const last = samples.times.length - 1
    samples.cap = limit.limit
    if (limit.used > samples.peak) samples.peak = limit.used
    if (last >= 0 && samples.times[last] === bucket) {
      if (limit.used >= samples.values[last]!) {
        samples.values[last] = limit.used
        samples.ends[last] = endOf(limit, at)
      }
    } else {
      samples.times.push(bucket)
      samples.values.push(limit.used)
      samples.ends.push(endOf(limit, at))
    }
  }

  /**
   * A request the engine threw on (at virtual time `at`), or a traffic line skipped (no time), at
   * traffic line `line`. A request with a time is within the run's span like any other.
   */
  function failed(code: string, message: string, line = 0, at?: number) {
    state.failed++
    if (at !== undefined) {
      if (state.from === null) state.from = at
      state.to = at
    }
    bump(state.errors, code, () => ({ code, count: 0, example: message, line })).count++
  }

  return {
    state,

    /**
     * Count one decision made at virtual time `at` for traffic line `line`, for a request of
     * `subject`; returns the partitions its settle is charged to.
     */
    decision(decision: Decision, at: number, line = 0, subject?: Subject): PartitionSpend[] {
      state.requests++
      if (state.from === null) state.from = at
      state.to = at
      if (decision.shadowViolations.length > 0) {
        state.shadowRefused++
        for (const v of decision.shadowViolations) {
          refusal(v.rule, String(v.code), v.status).shadowRefused++
          if (v.metric !== '') hit(v.rule, v.metric, within(v.rule, v.partition, subject), at, line, true)
        }
      }
      if (!decision.allowed) {
        state.refused++
        refusal(decision.rule, String(decision.code), decision.status).refused++
        for (const v of decision.violations)
          if (v.metric !== '') hit(v.rule, v.metric, within(v.rule, v.partition, subject), at, line, false)
      } else {
        state.allowed++
        const { downgrade } = decision
        if (downgrade) {
          state.downgraded++
          const { from, to, reason, rule } = downgrade
          bump(state.downgrades, `${from}\u0000${to}\u0000${reason}\u0000${rule}`, () => ({
            from,
            to,
            reason,
            rule,
            count: 0,
          })).count++
          // the refusal that led to the fallback is not in the decision: its metric and partition are unknown
          if (reason === 'fallback') hit(rule, '', {}, at, line, false)
        }
      }
      const charged: PartitionSpend[] = []
      let previous: Subject | undefined
      let partition: Subject = {}
      let key = ''
      for (const limit of decision.limits) {
        if (limit.partition !== previous) {
          previous = limit.partition
          partition = within(limit.rule, limit.partition, subject)
          key = keyOf(partition)
          tracked.get(limit.rule)?.add(key)
          const partitions = decision.allowed ? state.spend.get(limit.rule) : undefined
          if (partitions) {
            let row = partitions.get(key)
            if (row === undefined) {
              row = { partition, requests: 0, inputTokens: 0, outputTokens: 0, cost: 0 }
              partitions.set(key, row)
            }
            charged.push(row)
          }
        }
        if (options.series) sample(limit, partition, key, at)
      }
      return charged
    },

    /** Charge a settled call's actual amounts to the partitions it was admitted in. */
    settle(charged: readonly PartitionSpend[], amounts: Amounts) {
      const input = amounts.inputTokens ?? 0
      const output = amounts.outputTokens ?? 0
      const cost = amounts.cost ?? 0
      for (const row of charged) {
        row.requests++
        row.inputTokens += input
        row.outputTokens += output
        row.cost += cost
      }
    },

    /**
     * An allowed request whose usage the engine refused at its settle (its hold released): a bad
     * line, counted as failed (`invalid_line`) instead of allowed. What it held while in flight stays
     * in the charts; its spend is never charged.
     */
    unsettled(decision: AllowedDecision, message: string, line: number) {
      state.requests--
      state.allowed--
      const { downgrade } = decision
      if (downgrade) {
        state.downgraded--
        const { from, to, reason, rule } = downgrade
        const key = `${from}\u0000${to}\u0000${reason}\u0000${rule}`
        const row = state.downgrades.get(key)
        if (row && --row.count === 0) state.downgrades.delete(key)
      }
      failed('invalid_line', message, line)
    },

    alert(alert: Alert) {
      const key = `${alert.rule}\u0000${alert.metric}\u0000${alert.type}\u0000${alert.threshold}`
      bump(state.alerts, key, () => ({
        rule: alert.rule,
        metric: alert.metric,
        type: alert.type,
        threshold: alert.threshold,
        count: 0,
        firstAt: alert.at,
      })).count++
    },

    /** A request the engine threw on, or a bad traffic line: see `failed`. */
    error: failed,

    outOfOrder() {
      state.outOfOrder++
    },
  }
}
