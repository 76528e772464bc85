/**
 * Pending rows: a decision and its settle merge into one row by id, in the queue and in the
 * table (`INSERT … ON CONFLICT (id) DO UPDATE`), each event filling only the columns it carries.
 */
import type { AuditRecord, SettleRecord } from '@tollgate/core'
import type { AuditEvent } from '../sink.js'
import { COLUMNS, type Column } from './table.js'

/** What is waiting to be written for one id. */
export interface PendingRow {
  id: string
  decision?: AuditRecord
  settle?: SettleRecord
}

/** Adds an event to a pending row (a later event of the same kind replaces the earlier one). */
export function merge(row: PendingRow | undefined, event: AuditEvent): PendingRow {
  const next: PendingRow = row ? { ...row } : { id: event.id }
  if (event.event === 'decision') next.decision = event
  else next.settle = event
  return next
}

/** Merges an older row (a batch put back after a failed write) under a newer one. */
export function mergeUnder(older: PendingRow, newer: PendingRow | undefined): PendingRow {
  if (!newer) return older
  return {
    id: older.id,
    decision: newer.decision ?? older.decision,
    settle: newer.settle ?? older.settle,
  }
}

/** The records a pending row holds (for reporting what was dropped). */
export function recordsOf(row: PendingRow): AuditEvent[] {
  return [row.decision, row.settle].filter((r): r is AuditEvent => r !== undefined)
}

const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value))

/** Column values of one row; columns an event does not carry are `null` (kept by the upsert). */
export function values(row: PendingRow): unknown[] {
  const d = row.decision
  const s = row.settle
  const value: Record<Column, unknown> = {
    id: row.id,
    decided_at: d ? new Date(d.at) : null,
    decision: d?.decision ?? null,
    code: d?.code ?? null,
    http_status: d?.status ?? null,
    rule: d?.rule ?? null,
    partition: json(d?.partition),
    subject: json(d?.subject),
    requested_model: d?.requestedModel ?? null,
    model: d?.model ?? s?.model ?? null,
    feature: d?.feature ?? null,
    environment: d?.environment ?? null,
    estimate: json(d?.estimate ?? s?.estimate),
    shadow: d?.shadow ?? null,
    shadow_rules: d?.shadowRules ?? null,
    flags: d?.flags ?? null,
    downgrade: json(d?.downgrade),
    attempt: d?.attempt ?? null,
    settled_at: s ? new Date(s.at) : null,
    settle_event: s?.event ?? null,
    settle_status: s?.status ?? null,
    actual: json(s?.actual),
    cost: s?.cost ?? null,
    overrun: json(s?.overrun),
    late: s?.late ?? null,
    estimated: s?.estimated ?? null,
  }
  return COLUMNS.map(([column]) => value[column])
}

/** One multi-row upsert; each column keeps its stored value where this write has none. */
export function upsertSql(table: string, rows: number): string {
  const width = COLUMNS.length
  const tuples: string[] = []
  for (let r = 0; r < rows; r++) {
    const params = COLUMNS.map(([, type], c) => `$${r * width + c + 1}::${type}`)
    tuples.push(`(${params.join(', ')})`)
  }
  const names = COLUMNS.map(([column]) => column)
  const updates = names
    .filter((column) => column !== 'id')
    .map((column) => `${column} = COALESCE(EXCLUDED.${column}, t.${column})`)
  return [
    `INSERT INTO ${table} AS t (${names.join(', ')})`,
    `VALUES ${tuples.join(',\n  ')}`,
    `ON CONFLICT (id) DO UPDATE SET ${updates.join(', ')}`,
  ].join('\n')
}

/** Most rows one statement can carry (PostgreSQL takes at most 65,535 parameters). */
export const MAX_BATCH = Math.floor(65_535 / COLUMNS.length)
