/**
 * The audit table: one row per decision, completed by its settle or release. Columns are real
 * columns (not one JSON blob) so finance can sum, group and join them in plain SQL.
 */
import type { PgQueryable } from './client.js'

/** Options naming the table and the subject dimensions that get their own column. */
export interface AuditTableOptions {
  /**
   * Table name, optionally schema-qualified. Letters, digits and `_` only.
   * @default 'tollgate_audit'
   * @example 'billing.llm_audit'
   */
  table?: string
  /**
   * Subject dimensions copied into text columns `subject_<dimension>` (generated from the
   * `subject` JSON, so they can be indexed and grouped). Used only when the table is created.
   * @default ['org', 'team', 'project', 'user', 'key']
   * @example ['tenant', 'user']
   */
  dimensions?: readonly string[]
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** The table name quoted for SQL, after checking every part is a plain identifier. */
export function quoteTable(table: string): string {
  const parts = typeof table === 'string' ? table.split('.') : []
  if (parts.length === 0 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part)))
    throw new TypeError(
      `audit table name ${typeof table === 'string' ? JSON.stringify(table) : `(${typeof table})`} must be [schema.]name of letters, digits, _`,
    )
  return parts.map((part) => `"${part}"`).join('.')
}

/** Columns the sink writes, in order, with the SQL type of each. */
export const COLUMNS = [
  ['id', 'text'],
  ['decided_at', 'timestamptz'],
  ['decision', 'text'],
  ['code', 'text'],
  ['http_status', 'integer'],
  ['rule', 'text'],
  ['partition', 'jsonb'],
  ['subject', 'jsonb'],
  ['requested_model', 'text'],
  ['model', 'text'],
  ['feature', 'text'],
  ['environment', 'text'],
  ['estimate', 'jsonb'],
  ['shadow', 'boolean'],
  ['shadow_rules', 'text[]'],
  ['flags', 'text[]'],
  ['downgrade', 'jsonb'],
  ['attempt', 'integer'],
  ['settled_at', 'timestamptz'],
  ['settle_event', 'text'],
  ['settle_status', 'text'],
  ['actual', 'jsonb'],
  ['cost', 'bigint'],
  ['overrun', 'jsonb'],
  ['late', 'boolean'],
  ['estimated', 'boolean'],
] as const

export type Column = (typeof COLUMNS)[number][0]

const DEFAULT_DIMENSIONS = ['org', 'team', 'project', 'user', 'key']

/** `CREATE TABLE IF NOT EXISTS` and its index, for a migration of your own. */
export function auditTableSql(given?: AuditTableOptions): string {
  const options = given ?? {} // a JS caller's null is no options, as undefined is
  const table = options.table ?? 'tollgate_audit'
  const name = quoteTable(table)
  const dimensions = options.dimensions ?? DEFAULT_DIMENSIONS
  if (!Array.isArray(dimensions)) throw new TypeError('dimensions must be a list of dimension names')
  for (const dimension of dimensions)
    if (typeof dimension !== 'string' || !IDENTIFIER.test(`subject_${dimension}`))
      throw new TypeError(
        `dimension ${typeof dimension === 'string' ? JSON.stringify(dimension) : `(${typeof dimension})`} must be letters, digits and _`,
      )
  const columns = COLUMNS.map(([column, type]) =>
    column === 'id' ? '  id text PRIMARY KEY' : `  ${column} ${type}`,
  )
  const generated = dimensions.map(
    (d) => `  subject_${d} text GENERATED ALWAYS AS (subject ->> '${d}') STORED`,
  )
  const index = `"${table.replace('.', '_')}_decided_at"`
  return [
    `CREATE TABLE IF NOT EXISTS ${name} (`,
    [...columns, ...generated, '  written_at timestamptz NOT NULL DEFAULT now()'].join(',\n'),
    ');',
    `CREATE INDEX IF NOT EXISTS ${index} ON ${name} (decided_at);`,
  ].join('\n')
}

/**
 * Creates the audit table and its index when missing (PostgreSQL 12 or newer: the subject
 * columns are generated columns).
 * @example await createAuditTable(pool, { table: 'tollgate_audit' })
 */
export async function createAuditTable(pool: PgQueryable, options: AuditTableOptions = {}): Promise<void> {
  try {
    await pool.query(auditTableSql(options))
  } catch (error) {
    // Two processes creating the table at once: the loser sees a duplicate (a catalog row, the
    // relation, or the table's row type, 42710); the winner has committed, so the table exists.
    const code = (error as { code?: unknown }).code
    if (code !== '23505' && code !== '42P07' && code !== '42710') throw error
  }
}
