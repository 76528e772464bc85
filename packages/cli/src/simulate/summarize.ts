/** From a (merged) {@link SimulationState} to the summary and the charts people read. */
import type { CompiledPolicy } from '@tollgate/core'
import { windowText } from '../lint/hierarchy.js'
import type { Samples, SimulationState } from './state.js'
import type { Chart, PartitionSpend, SeriesLine, SimulationSummary, SpendRow } from './types.js'

type Ranked = SpendRow['metric']

/** Compare text, for stable tie-breaks (results must not depend on the order shards merged in). */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** The `top` entries of a keyed map by `value`, ties broken by key. */
function topOf<V>(map: Map<string, V>, value: (v: V) => number, top: number): V[] {
  return [...map]
    .sort(([ka, a], [kb, b]) => value(b) - value(a) || byText(ka, kb))
    .slice(0, top)
    .map(([, v]) => v)
}
const RANKED: readonly Ranked[] = ['cost', 'tokens', 'inputTokens', 'outputTokens', 'requests']

/** The summary of a replay: `top` partitions per rule, wall time `elapsedMs`. */
export function summarize(
  policy: CompiledPolicy,
  state: SimulationState,
  top: number,
  elapsedMs: number,
  workers = 1,
): SimulationSummary {
  const s = state
  return {
    currency: policy.currency,
    requests: s.requests + s.failed,
    allowed: s.allowed,
    refused: s.refused,
    downgraded: s.downgraded,
    shadowRefused: s.shadowRefused,
    failed: s.failed,
    outOfOrder: s.outOfOrder,
    from: s.from,
    to: s.to,
    elapsedMs,
    workers,
    refusals: topOf(s.refusals, (r) => r.refused + r.shadowRefused, Number.POSITIVE_INFINITY),
    downgrades: topOf(s.downgrades, (d) => d.count, Number.POSITIVE_INFINITY),
    capsHit: [...s.hits]
      .sort(([ka, a], [kb, b]) => a.firstAt - b.firstAt || byText(ka, kb))
      .map(([, { byPartition, firstLine: _, ...row }]) => ({
        ...row,
        partitions: byPartition.size,
        top: topOf(byPartition, (p) => p.hits, top),
      })),
    spend: policy.rules.map((rule) => {
      const metric = RANKED.find((m) => rule.limits.some((l) => l.metric === m)) ?? 'requests'
      const value = (row: PartitionSpend) =>
        metric === 'tokens' ? row.inputTokens + row.outputTokens : row[metric]
      const all = s.spend.get(rule.id) ?? new Map<string, PartitionSpend>()
      // a partition whose only calls were refused at their settle (bad lines) spent nothing
      const partitions = new Map([...all].filter(([, row]) => row.requests > 0))
      return { rule: rule.id, metric, partitions: partitions.size, top: topOf(partitions, value, top) }
    }),
    alerts: [...s.alerts]
      .sort(([ka, a], [kb, b]) => a.firstAt - b.firstAt || byText(ka, kb))
      .map(([, alert]) => alert),
    errors: topOf(s.errors, (e) => e.count, Number.POSITIVE_INFINITY),
  }
}

/** Most points a chart line gets; longer runs merge buckets. */
const MAX_POINTS = 300

/** One chart per rule and metric with the `top` partitions by peak usage, on a common time grid. */
export function chartsOf(
  policy: CompiledPolicy,
  state: SimulationState,
  top: number,
  bucketMs: number,
): Chart[] {
  const { from, to } = state
  if (from === null || to === null || state.samples.size === 0) return []
  const start = from - (from % bucketMs)
  const step = bucketMs * Math.max(1, Math.ceil((Math.floor((to - start) / bucketMs) + 1) / MAX_POINTS))
  const grouped = new Map<string, Map<string, Samples>>()
  for (const [counter, samples] of state.samples) {
    const key = `${samples.rule}\u0000${samples.metric}`
    const group = grouped.get(key)
    if (group) group.set(counter, samples)
    else grouped.set(key, new Map([[counter, samples]]))
  }
  const charts: Chart[] = []
  for (const rule of policy.rules) {
    for (const { metric } of rule.limits) {
      const group = grouped.get(`${rule.id}\u0000${metric}`)
      if (!group) continue
      const chosen = topOf(group, (samples) => samples.peak, top)
      charts.push({
        rule: rule.id,
        metric,
        cap: chosen[0]!.cap,
        window: windowText(rule, metric),
        shadow: chosen.some((s) => s.shadow),
        lines: chosen.map((s) => lineOf(s, start, to, step)),
      })
    }
  }
  return charts
}

/** A partition's samples on the grid `start, start + step, …` up to `to`, gaps filled. */
function lineOf(samples: Samples, start: number, to: number, step: number): SeriesLine {
  const points: [number, number][] = []
  let i = 0
  let value = 0
  let end = Number.NEGATIVE_INFINITY
  for (let cell = start; cell <= to; cell += step) {
    let peak: number | null = null
    while (i < samples.times.length && samples.times[i]! < cell + step) {
      peak = Math.max(peak ?? 0, samples.values[i]!)
      value = samples.values[i]!
      end = samples.ends[i]!
      i++
    }
    points.push([cell, peak ?? (cell < end ? value : 0)])
  }
  return { partition: samples.partition, peak: samples.peak, points }
}
