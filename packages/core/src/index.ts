/**
 * @tollgate/core — decide before an LLM call whether it may spend what it is about to
 * spend, and record what it really spent afterwards. Pure: no HTTP, no Redis, no framework.
 *
 * @example
 * import { createTollgate } from '@tollgate/core'
 * const gate = createTollgate({ policy: { rules: [{ id: 'daily', per: 'user', limits: { tokens: 5000 }, window: 'day' }] } })
 * const decision = await gate.reserve({ subject: { user: 'u1' }, estimate: { inputTokens: 800, maxOutputTokens: 200 } })
 */
export { type Clock, checkClock, clockProblem, systemClock } from './clock.js'
export type {
  AllowedDecision,
  Amounts,
  Decision,
  DecisionBase,
  DeniedDecision,
  Downgrade,
  LimitState,
  Reservation,
  Subject,
  Violation,
  Warning,
  WindowKind,
} from './decision.js'
export { parseDuration, parseRate } from './duration.js'
export type { AuditRecord, SettleRecord } from './engine/audit.js'
export { auditRecord } from './engine/audit.js'
export { sampleOf } from './engine/counters.js'
export { createTollgate } from './engine/gate.js'
export type { PartitionUsage, TopQuery, UsageState } from './engine/report.js'
export type {
  Alert,
  CommitResult,
  CounterRef,
  Estimate,
  LocalFallback,
  ReserveRequest,
  RunContext,
  Tollgate,
  TollgateOptions,
  Usage,
} from './engine/types.js'
export { MAX_AMOUNT } from './engine/validate.js'
export {
  type Issue,
  type ReasonCode,
  statusOf,
  TollgateError,
  type TollgateErrorCode,
  type TollgateErrorOptions,
  type UsageErrorCode,
} from './errors.js'
export { formatResetDuration, type HeaderOptions, rateLimitHeaders, retryHeaders } from './headers.js'
export { callHook } from './hooks.js'
export { blockKey, counterKey, escapeId, parsePartition, partitionKey, unescapeId } from './keys.js'
export { costOf, fromMicros, MICROS, toMicros } from './money.js'
export type {
  AccessEntry,
  CapEntry,
  CompiledPolicy,
  CompiledRule,
  Otherwise,
  Price,
  WindowDef,
} from './policy/compile.js'
export type {
  AccessInput,
  AccessRequirementInput,
  BalanceRequirementInput,
  BaselineInput,
  BucketWindowInput,
  CapInput,
  CircuitInput,
  DefaultsInput,
  DurationInput,
  DurationString,
  DurationUnit,
  HoldsInput,
  MatchInput,
  ModelInput,
  OtherwiseInput,
  PlanInput,
  PolicyInput,
  PriceInput,
  RollingWindowInput,
  RolloutInput,
  RuleInput,
  ThrottleInput,
  UnpricedInput,
  WindowInput,
  WindowUnit,
} from './policy/input.js'
export { definePolicy, parsePolicy } from './policy/load.js'
export type {
  Attributes,
  AttributeValue,
  JsonObject,
  JsonValue,
  MatchContext,
  Matcher,
} from './policy/match.js'
export { policySchema } from './policy/schema.js'
export type * from './store/contract.js'
export { LANE_FIELDS, STORE_OPERATIONS } from './store/contract.js'
export { type MemoryStore, type MemoryStoreOptions, memoryStore } from './store/memory/store.js'
export { type FakeClock, fakeClock } from './testing/fake-clock.js'
export { type CalendarUnit, calendarBounds, calendarWindow } from './windows/calendar.js'
