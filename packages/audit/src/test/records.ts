/** Records the audit tests and their child processes write: a plain allowed decision. */
import type { AuditRecord } from '@tollgate/core'

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
