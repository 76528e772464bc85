/** Records and alerts the audit tests and their child processes write. */
import type { Alert, AuditRecord } from '@tollgate/core'

/** An allowed decision `id` of user `user` (the id itself by default), with `changes` applied. */
export function decisionRecord(id: string, changes: Partial<AuditRecord> = {}): AuditRecord {
  return {
    event: 'decision',
    id,
    at: Date.UTC(2026, 0, 5),
    decision: 'allow',
    code: null,
    status: 200,
    rule: null,
    partition: null,
    subject: { user: id },
    requestedModel: 'small',
    model: 'small',
    feature: null,
    environment: null,
    estimate: { requests: 1 },
    shadowRules: [],
    shadow: false,
    flags: [],
    downgrade: null,
    attempt: 1,
    ...changes,
  }
}

/** A threshold alert of rule `team-day` (team t1 past half its daily tokens), with `changes` applied. */
export function thresholdAlert(changes: Partial<Alert> = {}): Alert {
  return {
    type: 'threshold',
    rule: 'team-day',
    owner: 'ml@example.com',
    scope: 'team=t1',
    metric: 'tokens',
    partition: { team: 't1' },
    threshold: 0.5,
    used: 520,
    limit: 1000,
    at: Date.UTC(2026, 0, 5, 12),
    ...changes,
  }
}
