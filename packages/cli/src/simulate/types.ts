/** What a simulation reports. Money is in micro-units of the policy's currency. */
import type { Subject } from '@tollgate/core'

/** Refusals (enforced and shadow) by one rule with one reason code. */
export interface RefusalRow {
  /** Rule id, or the cap / access entry label (`caps.0`, `plans.trial`); `null` for identity blocks. */
  rule: string | null
  code: string
  status: number
  /** Requests this rule refused (as the primary reason). */
  refused: number
  /** Requests this rule would have refused, had it been enforced (shadow or outside its canary). */
  shadowRefused: number
}

/** Model swaps: an access rule's downgrade or a rule's fallback at 100%. */
export interface DowngradeRow {
  from: string
  to: string
  reason: 'access' | 'fallback'
  rule: string
  count: number
}

/** When a rule's cap on one metric was first reached. */
export interface CapHitRow {
  rule: string
  /** Metric of the cap; empty for a fallback served at 100% (the metric is not reported). */
  metric: string
  /** Virtual time of the first refusal (ms since the epoch). */
  firstAt: number
  /** The partition that hit it first. */
  partition: Subject
  /** Distinct partitions that hit it. */
  partitions: number
  /** Requests it refused or would have refused (all violations, not only primary ones). */
  hits: number
  shadow: boolean
  /** The partitions with the most hits, most first (as many as the `top` option). */
  top: { partition: Subject; hits: number }[]
}

/** Actual usage of one partition of a rule over the whole run (settled amounts). */
export interface PartitionSpend {
  partition: Subject
  requests: number
  inputTokens: number
  outputTokens: number
  /** Micro-units. */
  cost: number
}

/** The top partitions of one rule, ranked by `metric`. */
export interface SpendRow {
  rule: string
  metric: 'requests' | 'inputTokens' | 'outputTokens' | 'tokens' | 'cost'
  /** Partitions with any admitted request. */
  partitions: number
  top: PartitionSpend[]
}

/** Alerts raised through `onAlert`: thresholds crossed, breakers tripped. */
export interface AlertRow {
  rule: string
  metric: string
  type: 'threshold' | 'circuit'
  threshold: number | null
  count: number
  firstAt: number
}

/** Requests the engine refused to evaluate (a missing `per` dimension, a bad amount). */
export interface ErrorRow {
  code: string
  count: number
  /** The first message, with its line number. */
  example: string
  /** The line of the first example. */
  line: number
}

/** The result of replaying traffic through a policy. */
export interface SimulationSummary {
  currency: string
  requests: number
  allowed: number
  refused: number
  /** Allowed requests served with another model (included in `allowed`). */
  downgraded: number
  /** Requests with at least one shadow violation (allowed or refused). */
  shadowRefused: number
  /** Requests the engine threw on (see `errors`). */
  failed: number
  /** Lines whose time was before the previous line's; they ran at the previous time. */
  outOfOrder: number
  /** Virtual time of the first and last request, `null` without requests. */
  from: number | null
  to: number | null
  /** Wall-clock time the simulation took. */
  elapsedMs: number
  /** Threads the traffic was replayed on (shards by tenant; see `SimulateOptions.workers`). */
  workers: number
  refusals: RefusalRow[]
  downgrades: DowngradeRow[]
  capsHit: CapHitRow[]
  spend: SpendRow[]
  alerts: AlertRow[]
  errors: ErrorRow[]
}

/** One line of a chart: a partition's usage of one cap over time. */
export interface SeriesLine {
  partition: Subject
  /** Peak `used` seen (for ranking). */
  peak: number
  /** `[time, used]` points, one per sampling bucket with a decision, in time order. */
  points: [number, number][]
}

/** Usage against one cap (rule and metric) over time, for the top partitions. */
export interface Chart {
  rule: string
  metric: string
  /** The cap (the last one seen, after any override). */
  cap: number
  window: string
  shadow: boolean
  lines: SeriesLine[]
}
