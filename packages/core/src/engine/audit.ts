/**
 * The audit record each decision produces: who asked, for what, what was decided and why.
 * It names ids (the key's id, never a key) and never prompt content.
 */
import type { Decision, Subject } from '../decision.js'
import type { ReserveRequest } from './types.js'

export interface AuditRecord {
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
  downgrade: { from: string; to: string; reason: string } | null
}

/** The audit record of one decision. */
export function auditRecord(decision: Decision, request: ReserveRequest, at: number): AuditRecord {
  const environment = request.attributes?.environment
  return {
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
    downgrade: decision.allowed && decision.downgrade ? { ...decision.downgrade } : null,
  }
}
