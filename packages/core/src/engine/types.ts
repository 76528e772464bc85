/**
 * Public shapes of the engine: requests, usage, results, options.
 */

import type { Clock } from '../clock.js'
import type { AllowedDecision, Amounts, Decision, Subject } from '../decision.js'
import type { HeaderOptions } from '../headers.js'
import type { CompiledPolicy } from '../policy/compile.js'
import type { Attributes } from '../policy/match.js'
import type { PolicyInput } from '../policy/schema.js'
import type { Store } from '../store/contract.js'
import type { AuditRecord, SettleRecord } from './audit.js'
import type { PartitionUsage, TopQuery, UsageState } from './report.js'

/** What a call is expected to use. Every amount is a non-negative whole number. */
export interface Estimate {
  /**
   * Input (prompt) tokens.
   * @default 0
   * @example estimateChatCompletion(body).inputTokens // from @tollgate/llm
   */
  inputTokens?: number
  /**
   * Most output tokens the call may produce.
   * @default the policy's `defaults.maxOutputTokens`
   * @example body.max_tokens
   */
  maxOutputTokens?: number
  /**
   * Custom units, e.g. images or seconds of audio.
   * @default {} (none)
   * @example { image_final: 1 }
   */
  units?: Readonly<Record<string, number>>
}

/** One call about to be made. */
export interface ReserveRequest {
  /**
   * Who is asking, from a trusted source: dimension → id.
   * @example { org: 'acme', team: 'search', user: 'u-42' }
   */
  subject: Subject
  /**
   * Plan, environment, flags and any other attribute rules may match on.
   * @default {} (none)
   * @example { plan: 'pro', environment: 'production' }
   */
  attributes?: Attributes
  /**
   * Model to call (an alias is resolved through the policy).
   * @default undefined
   * @example 'gpt-4o-mini'
   */
  model?: string
  /**
   * Product feature the call serves.
   * @default undefined
   * @example 'chat'
   */
  feature?: string
  /**
   * What the call is expected to use; held on every matched counter until the settle.
   * @default {} (no input tokens, the policy's `defaults.maxOutputTokens` of output)
   * @example { inputTokens: 1_200, maxOutputTokens: 500 }
   */
  estimate?: Estimate
  /**
   * Which attempt of one original action this is (1 for the first call, 2 for its first retry
   * or fallback…). Recorded in the audit record; the policy does not read it.
   * @default 1
   * @example 2 // the first retry
   */
  attempt?: number
}

/** What a call really used. Absent fields keep their estimate. */
export interface Usage {
  /**
   * Input (prompt) tokens the provider billed.
   * @default the estimate's `inputTokens`
   * @example completion.usage.prompt_tokens
   */
  inputTokens?: number
  /**
   * Of `inputTokens`, how many were served from the provider's cache (priced at `cachedInput`).
   * @default 0
   * @example completion.usage.prompt_tokens_details.cached_tokens
   */
  cachedInputTokens?: number
  /**
   * Output tokens the provider billed.
   * @default the estimate's `maxOutputTokens`
   * @example completion.usage.completion_tokens
   */
  outputTokens?: number
  /**
   * Custom units really used.
   * @default the estimate's `units`
   * @example { image_final: 2 }
   */
  units?: Readonly<Record<string, number>>
  /**
   * Exact cost in micro-units, when the caller knows it better than the price table.
   * @default computed from the tokens and the model's price
   * @example 1_250 // $0.00125
   */
  cost?: number
  /**
   * The usage is an estimate (e.g. counted from the text of a stream that broke before the
   * provider reported its usage). Charged like any usage; flagged in the settle record.
   * @default false
   * @example true
   */
  estimated?: boolean
}

/** An alert: a soft threshold crossed, or a breaker tripped. */
export interface Alert {
  type: 'threshold' | 'circuit'
  rule: string
  /** The rule's `owner` from the policy, `null` when it names none. */
  owner: string | null
  /** The partition as text, e.g. `team=t1, user=u2` (`global` for a rule without `per`). */
  scope: string
  metric: string
  partition: Subject
  /** The fraction crossed (threshold alerts). */
  threshold: number | null
  used: number
  limit: number
  at: number
}

/** What `settle` and `release` report. */
export interface CommitResult {
  /** `duplicate` for a second settle or release of the same id; `unknown` when no store knows the id; `degraded` for a reservation made while the store was down. */
  status: 'settled' | 'released' | 'duplicate' | 'unknown' | 'degraded'
  /** The reservation had expired before the settle; its true-up was applied anyway. */
  late: boolean
  /** What was charged per metric (cost in micro-units). */
  amounts: Amounts
  /** Usage beyond the estimate, per metric. */
  overrun: Amounts
  /** Counters now past their caps because of this charge. */
  overdraft: { rule: string; metric: string; amount: number }[]
}

/**
 * Options of {@link createTollgate}. `P` is what `policy` may be: any of the three forms unless
 * narrowed (`TollgateOptions<PolicyInput>` is what an object written in the call is checked against).
 */
export interface TollgateOptions<
  P extends PolicyInput | CompiledPolicy | string = PolicyInput | CompiledPolicy | string,
> {
  /**
   * The policy: an object, JSON or YAML text, or the result of `parsePolicy`.
   * @example createTollgate({ policy: { rules: [{ id: 'rpm', per: 'user', limits: { requests: 60 }, window: '60s' }] } })
   */
  policy: P
  /**
   * Where counters live.
   * @default memoryStore({ clock })
   * @example redisStore({ client: new Redis({ enableOfflineQueue: false }), prefix: 'tollgate' })
   */
  store?: Store
  /**
   * Clock for the default memory store. With another store, time comes from the store.
   * @default systemClock
   * @example fakeClock('2026-01-01T00:00:00Z') // from @tollgate/core/testing
   */
  clock?: Clock
  /**
   * Called with one audit record per decision; not awaited. Errors it throws, and the rejection of
   * a promise it returns, are dropped.
   * @default undefined (no records)
   * @example (record) => auditQueue.push(record)
   */
  onDecision?: (record: AuditRecord) => void
  /**
   * Called with one record per settle or release this process makes (what was really used and
   * what it cost), to reconcile with the decision's record by `id`; not awaited. Errors it throws,
   * and the rejection of a promise it returns, are dropped.
   * @default undefined (no records)
   * @example (record) => billing.record(record)
   */
  onSettle?: (record: SettleRecord) => void
  /**
   * Called when a soft threshold is crossed (once per window and partition) or a breaker trips; not
   * awaited, and its failure (a throw or a rejected promise) is dropped.
   * @default undefined (alerts are dropped)
   * @example alertWebhook({ url, secret })
   */
  onAlert?: (alert: Alert) => void
  /**
   * While the store is unavailable, enforce rules on a local store instead of letting them
   * through: each counter at `share` of its cap (every process enforces its own share, so size
   * it as about 1 / processes). Rules that fail closed still refuse unless `closed: 'enforce'`.
   * Holds made locally are settled locally; nothing is carried over when the store returns.
   * @default undefined (the rules' failure modes decide while the store is down)
   * @example { localFallback: { share: 0.25 } } // four processes
   */
  localFallback?: LocalFallback
  /**
   * Called when the store fails or times out; the rules' failure modes then apply. Not awaited; its
   * failure (a throw or a rejected promise) is dropped.
   * @default undefined
   * @example (error) => log.warn({ error }, 'quota store unavailable')
   */
  onStoreError?: (error: unknown) => void
  /**
   * Longest wait for the store before its failure counts as an outage: more than 0 and at most
   * 2,147,483,647 ms (the longest a timer waits).
   * @default 1000
   * @example 250
   */
  timeoutMs?: number
  /**
   * Which rate-limit headers decisions carry.
   * @default { ietf: true, openai: true }
   * @example { openai: false } // IETF RateLimit headers only
   */
  headers?: HeaderOptions
  /**
   * Longest id accepted in a subject; longer ids are refused with `invalid_subject`.
   * @default 16384
   * @example 256
   */
  maxIdLength?: number
  /**
   * Most request shapes (model, feature, subject ids) whose plan the gate remembers. Past it every
   * plan is forgotten at once and made again on the next call of each shape: a process with more
   * shapes in turn than this makes a plan on every call, about ten times slower. Size it above the
   * partitions active at once in one process (a plan takes about 3 kB with its counters). Beyond
   * it the gate still decides right, only slower.
   * @default 50000
   * @example 200_000 // up to about 650 MB of plans, for 200,000 users active at once per process
   */
  maxPlans?: number
}

/** Options of {@link TollgateOptions.localFallback}. */
export interface LocalFallback {
  /** Fraction of each cap enforced locally, in (0, 1]. */
  share: number
  /**
   * Where local counts live.
   * @default memoryStore({ clock }) with the gate's clock
   */
  store?: Store
  /**
   * Rules that fail closed (budgets, balances): keep refusing (`refuse`) or enforce their share
   * locally (`enforce`).
   * @default 'refuse'
   */
  closed?: 'refuse' | 'enforce'
}

/** Context passed to the function given to `run`. */
export interface RunContext {
  decision: AllowedDecision
  /** The model to call (after any downgrade). */
  model: string
  /**
   * Report what the call really used; it is settled with this when the function returns or throws.
   * A report with a bad amount throws `invalid_amount` here; the reservation is then settled at its
   * estimate (the call was made) unless a later report replaces it.
   */
  report(usage: Usage): void
}

/** Selects one counter for admin operations. */
export interface CounterRef {
  rule: string
  /** @default the rule's only metric, or `cost` for balances */
  metric?: string
  /** Ids for the rule's `per` dimensions. */
  subject: Subject
}

/** A gate, made by `createTollgate`: reserve before a call, settle after it. */
export interface Tollgate {
  /** The policy it enforces, validated and compiled. */
  readonly policy: CompiledPolicy
  /** Decide, and hold the estimate on every matched counter when allowed. */
  reserve(request: ReserveRequest): Promise<Decision>
  /** Turn a reservation's holds into what the call really used. Idempotent. */
  settle(id: string, usage?: Usage): Promise<CommitResult>
  /** Return a reservation's holds in full (the call failed before anything was billed). Idempotent. */
  release(id: string): Promise<CommitResult>
  /** Reserve, call `fn`, then settle (or release when it throws before reporting usage). Throws a `TollgateError` on refusal. */
  run<T>(request: ReserveRequest, fn: (context: RunContext) => Promise<T> | T): Promise<T>
  /**
   * State of every rule that applies to this subject (model and feature optional), with
   * utilization and a projection to each calendar window's end at the current rate.
   */
  usage(request: Omit<ReserveRequest, 'estimate'>): Promise<UsageState[]>
  /**
   * The partitions of a rule that used the most in the current window (top users of a
   * project, models by spend). Needs a store with `scan` (memory and Redis stores have it).
   */
  top(query: TopQuery): Promise<PartitionUsage[]>
  /** Set (or clear with `null`) a runtime cap for one partition of a rule. Money in currency units. */
  override(counter: CounterRef, cap: number | null): Promise<void>
  /** Add money (currency units) to a prepaid balance rule's partition. */
  credit(counter: Omit<CounterRef, 'metric'>, amount: number): Promise<{ balance: number }>
  /**
   * Refuse every request whose subject has this id, at once, in every process sharing the store.
   * `code` (default `blocked`) is what the refusals carry: 1 to 128 letters, digits, `_`, `.` or `-`.
   */
  block(dimension: string, id: string, code?: string): Promise<void>
  unblock(dimension: string, id: string): Promise<void>
}
