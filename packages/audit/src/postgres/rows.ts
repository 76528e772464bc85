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

/**
 * What PostgreSQL cannot hold in `text` or `jsonb`: NUL, and a surrogate without its pair. A
 * request's model or subject id may carry them; refused, its row would vanish from the audit
 * (`record_rejected`), so each such character is stored as U+FFFD instead.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the characters it finds
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** `text` as PostgreSQL can store it (see {@link UNSTORABLE}). */
export const storable = (text: string): string => text.replace(UNSTORABLE, '\uFFFD')

/** A JSON value with every string, keys included, made {@link storable}. */
function clean(value: unknown): unknown {
  if (typeof value === 'string') return storable(value)
  if (Array.isArray(value)) return value.map(clean)
  if (typeof value !== 'object' || value === null) return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    // an own `__proto__` key (an id of that name) stays a key: assigned, it set the prototype
    if (key === '__proto__')
      Object.defineProperty(out, key, {
        value: clean(v),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    else out[storable(key)] = clean(v)
  }
  return out
}

const text = (value: string | null | undefined) =>
  typeof value === 'string' ? storable(value) : (value ?? null)
const texts = (value: readonly string[] | null | undefined) => value?.map(storable) ?? null
const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(clean(value)))

/** Column values of one row; columns an event does not carry are `null` (kept by the upsert). */
export function values(row: PendingRow): unknown[] {
  const d = row.decision
  const s = row.settle
  const value: Record<Column, unknown> = {
    id: storable(row.id),
    decided_at: d ? new Date(d.at) : null,
    decision: d?.decision ?? null,
    code: text(d?.code),
    http_status: d?.status ?? null,
    rule: text(d?.rule),
    partition: json(d?.partition),
    subject: json(d?.subject),
    requested_model: text(d?.requestedModel),
    model: text(d?.model ?? s?.model),
    feature: text(d?.feature),
    environment: text(d?.environment),
    estimate: json(d?.estimate ?? s?.estimate),
    shadow: d?.shadow ?? null,
    shadow_rules: texts(d?.shadowRules),
    flags: texts(d?.flags),
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
