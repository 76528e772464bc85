/**
 * The audit record each decision produces: who asked, for what, what was decided and why.
 * It names ids (the key's id, never a key) and never prompt content.
 */
import type { Decision, Subject } from '../decision.js'
import type { ReserveRequest } from './types.js'

export interface AuditRecord {
  event: 'decision'
  /** Decision id (also the reservation id when allowed). */
  id: string
  /** Time of the decision, ms since epoch (store time). */
  at: number
  decision: 'allow' | 'refuse'
  /** Reason code of a refusal, `null` when allowed. */
  code: string | null
  status: number
  /** Rule that refused, `null` when allowed. */
  rule: string | null
  partition: Subject | null
  subject: Subject
  requestedModel: string
  /** Model called after any downgrade, `null` when refused. */
  model: string | null
  feature: string | null
  environment: string | null
  /** Held amounts per metric when allowed. */
  estimate: Readonly<Record<string, number>> | null
  /** Rules in shadow that would have refused. */
  shadowRules: string[]
  /** True when the request would have been refused had shadow rules been enforced. */
  shadow: boolean
  flags: string[]
  /** The decision's model swap, if any: on a refusal, the downgrade model access made before the limits refused. */
  downgrade: { from: string; to: string; reason: string } | null
  /** Which attempt of one original action this was (1 for the first call). */
  attempt: number
}

/**
 * The audit record of a settle or release: what the call really used and what it cost,
 * joined to its {@link AuditRecord} by `id`.
 */
export interface SettleRecord {
  event: 'settle' | 'release'
  /** The reservation (and decision) id. */
  id: string
  /** Time of the settle, ms since epoch (store time). */
  at: number
  /** `degraded` when the reservation was admitted while the store was down (nothing was held). */
  status: 'settled' | 'released' | 'degraded'
  /** The model the reservation was made for, `null` when none was named. */
  model: string | null
  /** What was held per metric (cost in micro-units). */
  estimate: Readonly<Record<string, number>>
  /** What is now charged per metric (cost in micro-units); all zero for a release. */
  actual: Readonly<Record<string, number>>
  /** Money charged in micro-units of the policy's currency, `null` when no rule counts cost. */
  cost: number | null
  /** Usage beyond the estimate, per metric. */
  overrun: Readonly<Record<string, number>>
  /** The reservation had expired before this settle. */
  late: boolean
  /** The usage was an estimate (`usage.estimated`), not the provider's report. */
  estimated: boolean
}

/** The audit record of one decision. */
export function auditRecord(decision: Decision, request: ReserveRequest, at: number): AuditRecord {
  const environment = request.attributes?.environment
  return {
    event: 'decision',
    id: decision.id,
    at,
    decision: decision.allowed ? 'allow' : 'refuse',
    code: decision.allowed ? null : decision.code,
    status: decision.allowed ? 200 : decision.status,
    rule: decision.allowed ? null : decision.rule,
    partition: decision.allowed ? null : decision.partition,
    subject: request.subject,
    requestedModel: decision.requestedModel,
    model: decision.allowed ? decision.model : null,
    feature: request.feature ?? null,
    environment: typeof environment === 'string' ? environment : null,
    estimate: decision.allowed ? decision.reservation.amounts : null,
    shadowRules: decision.shadowViolations.map((v) => v.rule),
    shadow: decision.shadowViolations.length > 0,
    flags: decision.flags,
    downgrade: decision.downgrade ? { ...decision.downgrade } : null,
    attempt: request.attempt ?? 1,
  }
}
