/**
 * Test helpers for the real PostgreSQL: `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE` (default
 * 127.0.0.1:5432, user postgres, database test), a table name unique to this run, and rows
 * turned back into the records they came from.
 */
import type { AuditRecord, SettleRecord } from '@tollgate/core'
import pg from 'pg'

export const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
  password: process.env.PGPASSWORD,
}

/** A connection string to the test database, optionally through another port (a proxy). */
export function connectionString(port = PG.port, host = PG.host): string {
  const auth = PG.password ? `${PG.user}:${encodeURIComponent(PG.password)}` : PG.user
  return `postgres://${auth}@${host}:${port}/${PG.database}`
}

export function testPool(): pg.Pool {
  const pool = new pg.Pool({ ...PG, max: 4 })
  pool.on('error', () => {})
  return pool
}

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
let n = 0

/** `tgtest_<run>_<label>_<n>`: unique per run, so parallel runs never share a table. */
export function tableName(label: string): string {
  return `tgtest_${run}_${label}_${++n}`
}

export async function dropTable(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS "${table}"`)
}

const num = (value: unknown) => (value === null ? null : Number(value))
const ms = (value: unknown) => (value === null ? null : (value as Date).getTime())

/** The decision and settle records a row stores, rebuilt from its columns. */
export function recordsOf(row: Record<string, unknown>): { decision?: AuditRecord; settle?: SettleRecord } {
  const out: { decision?: AuditRecord; settle?: SettleRecord } = {}
  if (row.decision !== null)
    out.decision = {
      event: 'decision',
      id: row.id as string,
      at: ms(row.decided_at)!,
      decision: row.decision as AuditRecord['decision'],
      code: row.code as string | null,
      status: row.http_status as number,
      rule: row.rule as string | null,
      partition: row.partition as AuditRecord['partition'],
      subject: row.subject as AuditRecord['subject'],
      requestedModel: row.requested_model as string,
      model: row.model as string | null,
      feature: row.feature as string | null,
      environment: row.environment as string | null,
      estimate: row.estimate as AuditRecord['estimate'],
      shadowRules: row.shadow_rules as string[],
      shadow: row.shadow as boolean,
      flags: row.flags as string[],
      downgrade: row.downgrade as AuditRecord['downgrade'],
      attempt: row.attempt as number,
    }
  if (row.settle_event !== null)
    out.settle = {
      event: row.settle_event as SettleRecord['event'],
      id: row.id as string,
      at: ms(row.settled_at)!,
      status: row.settle_status as SettleRecord['status'],
      model: row.model as string | null,
      estimate: row.estimate as SettleRecord['estimate'],
      actual: row.actual as SettleRecord['actual'],
      cost: num(row.cost),
      overrun: row.overrun as SettleRecord['overrun'],
      late: row.late as boolean,
      estimated: row.estimated as boolean,
    }
  return out
}

/** Every row of a table, rebuilt as records, keyed by id. */
export async function storedRecords(pool: pg.Pool, table: string) {
  const { rows } = await pool.query(`SELECT * FROM "${table}" ORDER BY id`)
  return new Map(rows.map((row: Record<string, unknown>) => [row.id as string, recordsOf(row)]))
}
