/**
 * The sink contract and `auditTo`, which turns sinks into the `onDecision` / `onSettle`
 * options of `createTollgate`.
 */
import type { AuditRecord, SettleRecord } from '@tollgate/core'

/** Either audit record: a decision, or the settle or release that closes it (same `id`). */
export type AuditEvent = AuditRecord | SettleRecord

/**
 * Where audit records go. `write` is called on the engine's path: it must not block or throw,
 * so a sink queues and writes in the background; `flush` and `close` wait for that.
 */
export interface AuditSink {
  /** Accepts one record. Never throws; failures go to the sink's `onError`. */
  write(record: AuditEvent): void
  /** Resolves once every record written so far is stored. */
  flush(): Promise<void>
  /** Flushes, then releases what the sink opened (a file, a pool). Later writes are dropped. */
  close(): Promise<void>
}

/** The audit hooks of `createTollgate`, feeding every sink. */
export interface AuditHooks {
  onDecision: (record: AuditRecord) => void
  onSettle: (record: SettleRecord) => void
}

/**
 * Sends every decision and settle record to each sink. Spread the result into the gate's options.
 * A sink that throws does not keep the record from the others.
 * @example
 * const file = jsonLinesSink('audit.jsonl')
 * const gate = createTollgate({ policy, ...auditTo(file, postgresSink({ pool })) })
 */
export function auditTo(...sinks: AuditSink[]): AuditHooks {
  const write = (record: AuditEvent) => {
    for (const sink of sinks) {
      try {
        sink.write(record)
      } catch {
        // A sink's write must not throw; if one does, the others still get the record.
      }
    }
  }
  return { onDecision: write, onSettle: write }
}
