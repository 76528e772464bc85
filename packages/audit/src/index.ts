/**
 * @tollgate/audit — where Tollgate's audit records and alerts go: a callback, a JSON-lines file
 * or stream, a PostgreSQL table (batched, retried, nothing lost on shutdown), and a signed
 * alerts webhook. Sinks never block or throw into the engine.
 *
 * @example
 * import { auditTo, jsonLinesSink, postgresSink, alertWebhook } from '@tollgate/audit'
 * const sink = postgresSink({ connectionString: process.env.DATABASE_URL! })
 * const gate = createTollgate({ policy, ...auditTo(sink), onAlert: alertWebhook({ url, secret }) })
 */
export { type CallbackSinkOptions, callbackSink } from './callback.js'
export { AuditError, type AuditErrorCode } from './errors.js'
export { type JsonLinesSink, type JsonLinesSinkOptions, jsonLinesSink } from './jsonl.js'
export type { PgQueryable } from './postgres/client.js'
export { type PostgresSink, type PostgresSinkOptions, postgresSink } from './postgres/sink.js'
export { type AuditTableOptions, auditTableSql, createAuditTable } from './postgres/table.js'
export { type Closeable, type CloseOnExitOptions, closeOnExit } from './shutdown.js'
export { type AuditEvent, type AuditHooks, type AuditSink, auditTo } from './sink.js'
export * from './webhook/index.js'
