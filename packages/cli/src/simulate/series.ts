/**
 * Usage over time, for charts: per rule, metric and partition, the highest `used` seen in
 * each sampling bucket, and until when that value holds when no decision comes by.
 */
import type { CompiledPolicy, LimitState, Subject } from '@tollgate/core'
import { windowText } from '../lint/hierarchy.js'
import type { Chart, SeriesLine } from './types.js'

interface Samples {
  rule: string
  metric: string
  partition: Subject
  cap: number
  shadow: boolean
  peak: number
  times: number[]
  values: number[]
  /** Until when each sample's value stands without new decisions (window end, or when it drains). */
  ends: number[]
}

/** Most points a chart line gets; longer runs merge buckets. */
const MAX_POINTS = 300

function endOf(state: LimitState, at: number): number {
  if (state.kind === 'calendar') return state.resetAt ?? Number.POSITIVE_INFINITY
  if (state.kind === 'concurrency') return at
  return at + (state.windowMs ?? 0)
}

/** A recorder of usage over time in buckets of `bucketMs`, keeping `top` partitions per chart. */
export function createSeries(bucketMs: number, top: number) {
  const all = new Map<string, Samples>()

  return {
    sample(state: LimitState, at: number) {
      let key = `${state.rule}\u0000${state.metric}\u0000`
      for (const dimension in state.partition) key += `${state.partition[dimension]}\u0000`
      let samples = all.get(key)
      if (!samples) {
        samples = {
          rule: state.rule,
          metric: state.metric,
          partition: state.partition,
          cap: state.limit,
          shadow: state.shadow,
          peak: 0,
          times: [],
          values: [],
          ends: [],
        }
        all.set(key, samples)
      }
      const bucket = at - (at % bucketMs)
      const last = samples.times.length - 1
      samples.cap = state.limit
      if (state.used > samples.peak) samples.peak = state.used
      if (last >= 0 && samples.times[last] === bucket) {
        if (state.used >= samples.values[last]!) {
          samples.values[last] = state.used
          samples.ends[last] = endOf(state, at)
        }
      } else {
        samples.times.push(bucket)
        samples.values.push(state.used)
        samples.ends.push(endOf(state, at))
      }
    },

    /** One chart per rule and metric, with the `top` partitions by peak usage, on a common time grid. */
    charts(policy: CompiledPolicy, from: number, to: number): Chart[] {
      const start = from - (from % bucketMs)
      const buckets = Math.floor((to - start) / bucketMs) + 1
      const step = bucketMs * Math.max(1, Math.ceil(buckets / MAX_POINTS))
      const grouped = new Map<string, Samples[]>()
      for (const samples of all.values()) bump(grouped, `${samples.rule}\u0000${samples.metric}`).push(samples)
      const charts: Chart[] = []
      for (const rule of policy.rules) {
        for (const { metric } of rule.limits) {
          const group = grouped.get(`${rule.id}\u0000${metric}`)
          if (!group) continue
          const chosen = group.sort((a, b) => b.peak - a.peak).slice(0, top)
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
    },
  }
}

function bump<V>(map: Map<string, V[]>, key: string): V[] {
  let list = map.get(key)
  if (!list) map.set(key, (list = []))
  return list
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
