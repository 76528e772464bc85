/**
 * Folding decisions, settles and alerts into a {@link SimulationSummary}: counts per rule
 * and reason, spend per partition, first cap hits, and (for reports) usage over time.
 */
import type { Alert, Amounts, CompiledPolicy, Decision, Subject } from '@tollgate/core'
import { createSeries } from './series.js'
import type {
  AlertRow,
  CapHitRow,
  DowngradeRow,
  ErrorRow,
  PartitionSpend,
  RefusalRow,
  SimulationSummary,
  SpendRow,
} from './types.js'

/** Options of {@link createCollector}. */
export interface CollectorOptions {
  /** Partitions listed per rule in `spend`, and lines per chart. @default 5 */
  top?: number
  /** Record usage over time for charts (costs memory: one sample per partition, metric and bucket). @default false */
  series?: boolean
  /** Width of a sampling bucket for charts, in ms. @default 300_000 (5 minutes) */
  bucketMs?: number
}

type Ranked = SpendRow['metric']
const RANKED: readonly Ranked[] = ['cost', 'tokens', 'inputTokens', 'outputTokens', 'requests']

/** The values of a partition, joined: a key unique within one rule (its `per` order is fixed). */
function keyOf(partition: Subject): string {
  let key = ''
  for (const dimension in partition) key += `${partition[dimension]}\u0000`
  return key
}

const bump = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  let value = map.get(key)
  if (value === undefined) map.set(key, (value = make()))
  return value
}

export type Collector = ReturnType<typeof createCollector>

/** A collector for one simulation of `policy`. */
export function createCollector(policy: CompiledPolicy, options: CollectorOptions = {}) {
  const top = options.top ?? 5
  const series = options.series ? createSeries(options.bucketMs ?? 300_000, top) : null
  const counts = { requests: 0, allowed: 0, refused: 0, downgraded: 0, shadowRefused: 0, failed: 0 }
  let outOfOrder = 0
  let from: number | null = null
  let to: number | null = null
  const refusals = new Map<string, RefusalRow>()
  const downgrades = new Map<string, DowngradeRow>()
  type Hits = Omit<CapHitRow, 'top'> & { seen: Map<string, { partition: Subject; hits: number }> }
  const hits = new Map<string, Hits>()
  const spend = new Map<string, Map<string, PartitionSpend>>(policy.rules.map((r) => [r.id, new Map()]))
  const alerts = new Map<string, AlertRow>()
  const errors = new Map<string, ErrorRow>()

  const refusal = (rule: string | null, code: string, status: number) =>
    bump(refusals, `${rule}\u0000${code}`, () => ({ rule, code, status, refused: 0, shadowRefused: 0 }))

  function hit(rule: string, metric: string, partition: Subject, at: number, shadow: boolean) {
    const row = bump(hits, `${rule}\u0000${metric}`, () => ({
      rule,
      metric,
      firstAt: at,
      partition,
      partitions: 0,
      hits: 0,
      shadow,
      seen: new Map(),
    }))
    row.hits++
    bump(row.seen, keyOf(partition), () => ({ partition, hits: 0 })).hits++
  }

  return {
    /** Count one decision made at virtual time `at`; returns the partitions its settle is charged to. */
    decision(decision: Decision, at: number): PartitionSpend[] {
      counts.requests++
      if (from === null) from = at
      to = at
      if (decision.shadowViolations.length > 0) {
        counts.shadowRefused++
        for (const v of decision.shadowViolations) {
          refusal(v.rule, String(v.code), v.status).shadowRefused++
          if (v.metric !== '') hit(v.rule, v.metric, v.partition, at, true)
        }
      }
      if (!decision.allowed) {
        counts.refused++
        refusal(decision.rule, String(decision.code), decision.status).refused++
        for (const v of decision.violations) if (v.metric !== '') hit(v.rule, v.metric, v.partition, at, false)
      } else {
        counts.allowed++
        const { downgrade } = decision
        if (downgrade) {
          counts.downgraded++
          const { from: was, to: now, reason, rule } = downgrade
          bump(downgrades, `${was}\u0000${now}\u0000${reason}\u0000${rule}`, () => ({
            from: was,
            to: now,
            reason,
            rule,
            count: 0,
          })).count++
          if (reason === 'fallback') hit(rule, '', {}, at, false)
        }
      }
      const charged: PartitionSpend[] = []
      let previous: unknown
      for (const state of decision.limits) {
        series?.sample(state, at)
        if (!decision.allowed || state.partition === previous) continue
        previous = state.partition
        const partitions = spend.get(state.rule)
        if (!partitions) continue
        charged.push(
          bump(partitions, keyOf(state.partition), () => ({
            partition: state.partition,
            requests: 0,
            inputTokens: 0,
            outputTokens: 0,
            cost: 0,
          })),
        )
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

    alert(alert: Alert) {
      const key = `${alert.rule}\u0000${alert.metric}\u0000${alert.type}\u0000${alert.threshold}`
      bump(alerts, key, () => ({
        rule: alert.rule,
        metric: alert.metric,
        type: alert.type,
        threshold: alert.threshold,
        count: 0,
        firstAt: alert.at,
      })).count++
    },

    /** A request the engine threw on. */
    error(code: string, message: string) {
      counts.failed++
      bump(errors, code, () => ({ code, count: 0, example: message })).count++
    },

    outOfOrder() {
      outOfOrder++
    },

    summary(elapsedMs: number): SimulationSummary {
      return {
        currency: policy.currency,
        ...counts,
        requests: counts.requests + counts.failed,
        outOfOrder,
        from,
        to,
        elapsedMs,
        refusals: [...refusals.values()].sort(
          (a, b) => b.refused + b.shadowRefused - (a.refused + a.shadowRefused),
        ),
        downgrades: [...downgrades.values()].sort((a, b) => b.count - a.count),
        capsHit: [...hits.values()]
          .map(({ seen, ...row }) => ({
            ...row,
            partitions: seen.size,
            top: [...seen.values()].sort((a, b) => b.hits - a.hits).slice(0, top),
          }))
          .sort((a, b) => a.firstAt - b.firstAt),
        spend: policy.rules.map((rule) => {
          const metric = RANKED.find((m) => rule.limits.some((l) => l.metric === m)) ?? 'requests'
          const value = (row: PartitionSpend) =>
            metric === 'tokens' ? row.inputTokens + row.outputTokens : row[metric]
          const rows = [...spend.get(rule.id)!.values()]
          return {
            rule: rule.id,
            metric,
            partitions: rows.length,
            top: rows.sort((a, b) => value(b) - value(a)).slice(0, top),
          }
        }),
        alerts: [...alerts.values()].sort((a, b) => a.firstAt - b.firstAt),
        errors: [...errors.values()],
      }
    },

    /** Usage against each cap over time (empty unless `series` was asked for). */
    charts() {
      return series && from !== null && to !== null ? series.charts(policy, from, to) : []
    },
  }
}
