/**
 * The raw, mergeable state of a simulation: what one replay (or one shard of it) counted.
 * Plain Maps and arrays, so it crosses a worker boundary by structured clone.
 */
import type { Subject } from '@tollgate/core'
import type {
  AlertRow,
  DowngradeRow,
  ErrorRow,
  PartitionSpend,
  RefusalRow,
  SimulationSummary,
} from './types.js'

/** Usage samples of one counter (rule, metric, partition) over time. */
export interface Samples {
  rule: string
  metric: string
  partition: Subject
  cap: number
  shadow: boolean
  peak: number
  /** Bucket starts, ascending. */
  times: number[]
  /** Highest `used` seen in each bucket. */
  values: number[]
  /** Until when each sample's value stands without new decisions (window end, or when it drains). */
  ends: number[]
}

/** Refusals of one cap, by partition. */
export interface Hits {
  rule: string
  metric: string
  firstAt: number
  /** The traffic line of the first hit (breaks ties between shards). */
  firstLine: number
  partition: Subject
  hits: number
  shadow: boolean
  byPartition: Map<string, { partition: Subject; hits: number }>
}

/** The counts of the summary while they are made, with the tables still as maps. */
export interface SimulationState
  extends Pick<
    SimulationSummary,
    | 'requests'
    | 'allowed'
    | 'refused'
    | 'downgraded'
    | 'shadowRefused'
    | 'failed'
    | 'outOfOrder'
    | 'from'
    | 'to'
  > {
  refusals: Map<string, RefusalRow>
  downgrades: Map<string, DowngradeRow>
  hits: Map<string, Hits>
  /** Rule id → partition key → actual usage. */
  spend: Map<string, Map<string, PartitionSpend>>
  alerts: Map<string, AlertRow>
  errors: Map<string, ErrorRow>
  /** Counter key → samples (only when charts are recorded). */
  samples: Map<string, Samples>
  /** Rule id → partition keys seen (only for rules a sharded run must check). */
  seen: Map<string, Set<string>>
}

export function emptyState(rules: readonly string[]): SimulationState {
  return {
    requests: 0,
    allowed: 0,
    refused: 0,
    downgraded: 0,
    shadowRefused: 0,
    failed: 0,
    outOfOrder: 0,
    from: null,
    to: null,
    refusals: new Map(),
    downgrades: new Map(),
    hits: new Map(),
    spend: new Map(rules.map((rule) => [rule, new Map()])),
    alerts: new Map(),
    errors: new Map(),
    samples: new Map(),
    seen: new Map(),
  }
}

const min = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b))
const max = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b))

function mergeMap<V>(into: Map<string, V>, from: Map<string, V>, combine: (a: V, b: V) => void) {
  for (const [key, value] of from) {
    const existing = into.get(key)
    if (existing === undefined) into.set(key, value)
    else combine(existing, value)
  }
}

/**
 * Fold shard `b` into `a` (which it mutates and returns). Shards that share no partition
 * merge into exactly the state one replay of all the traffic would have counted.
 */
export function mergeStates(a: SimulationState, b: SimulationState): SimulationState {
  for (const field of [
    'requests',
    'allowed',
    'refused',
    'downgraded',
    'shadowRefused',
    'failed',
    'outOfOrder',
  ] as const)
    a[field] += b[field]
  a.from = min(a.from, b.from)
  a.to = max(a.to, b.to)
  mergeMap(a.refusals, b.refusals, (x, y) => {
    x.refused += y.refused
    x.shadowRefused += y.shadowRefused
  })
  mergeMap(a.downgrades, b.downgrades, (x, y) => {
    x.count += y.count
  })
  mergeMap(a.hits, b.hits, (x, y) => {
    if (y.firstAt < x.firstAt || (y.firstAt === x.firstAt && y.firstLine < x.firstLine)) {
      x.firstAt = y.firstAt
      x.firstLine = y.firstLine
      x.partition = y.partition
    }
    x.hits += y.hits
    mergeMap(x.byPartition, y.byPartition, (p, q) => {
      p.hits += q.hits
    })
  })
  for (const [rule, partitions] of b.spend) {
    const into = a.spend.get(rule)
    if (!into) a.spend.set(rule, partitions)
    else
      mergeMap(into, partitions, (x, y) => {
        x.requests += y.requests
        x.inputTokens += y.inputTokens
        x.outputTokens += y.outputTokens
        x.cost += y.cost
      })
  }
  mergeMap(a.alerts, b.alerts, (x, y) => {
    x.count += y.count
    x.firstAt = Math.min(x.firstAt, y.firstAt)
  })
  mergeMap(a.errors, b.errors, (x, y) => {
    x.count += y.count
    if (y.line < x.line) {
      x.line = y.line
      x.example = y.example
    }
  })
  mergeMap(a.samples, b.samples, () => {
    // a partition in two shards makes the sharded run invalid; it is replayed in one thread
  })
  for (const [rule, keys] of b.seen) {
    const into = a.seen.get(rule)
    if (!into) a.seen.set(rule, keys)
    else for (const key of keys) into.add(key)
  }
  return a
}

/** Rules whose partitions two shards both counted, proving the sharded run inexact. */
export function overlapping(states: readonly SimulationState[]): string[] {
  const shared: string[] = []
  const rules = new Set(states.flatMap((s) => [...s.seen.keys()]))
  for (const rule of rules) {
    const owner = new Map<string, number>()
    states.forEach((state, shard) => {
      for (const key of state.seen.get(rule) ?? []) {
        const other = owner.get(key)
        if (other !== undefined && other !== shard) shared.push(rule)
        owner.set(key, shard)
      }
    })
  }
  return [...new Set(shared)]
}
