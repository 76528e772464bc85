/**
 * The reconciliation queries in docs/audit.md run against a real table filled by real traffic,
 * and the monthly spend they report equals the sum of the settle records' costs.
 */
import { readFileSync } from 'node:fs'
import { afterAll, expect, it } from 'vitest'
import { auditTo } from '../sink.js'
import { dropTable, tableName, testPool } from '../test/pg.js'
import { playTraffic } from '../test/traffic.js'
import { postgresSink } from './sink.js'

const pool = testPool()
const table = tableName('docs')
const usage = `${table}_usage`
afterAll(async () => {
  await dropTable(pool, table)
  await dropTable(pool, usage)
  await pool.end()
})

const doc = readFileSync(new URL('../../../../docs/audit.md', import.meta.url), 'utf8')
const queries = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].flatMap((m) =>
  m[1]!
    .split(/;\s*\n/)
    .map((q) => q.trim())
    .filter(Boolean),
)

it('the documented reconciliation queries run, and the monthly spend matches the settles', async () => {
  expect(queries.length).toBeGreaterThanOrEqual(5)
  const sink = postgresSink({ pool, table })
  const { settles } = await playTraffic(auditTo(sink), 200, 11)
  await sink.close()
  await pool.query(`CREATE TABLE "${usage}" (day timestamptz, model text, cost_usd numeric)`)
  // the traffic is dated 2026-03; shift it to this month so the documented date filter keeps it
  await pool.query(
    `UPDATE "${table}" SET decided_at = decided_at + (date_trunc('month', now()) - timestamptz '2026-03-01'),
                            settled_at = settled_at + (date_trunc('month', now()) - timestamptz '2026-03-01')`,
  )
  const results = []
  for (const query of queries)
    results.push(
      await pool.query(
        query.replaceAll('tollgate_audit', `"${table}"`).replaceAll('provider_usage', `"${usage}"`),
      ),
    )
  const spend = results[0]!.rows.reduce((sum, row) => sum + Number(row.spend ?? 0), 0)
  const expected = settles.reduce((sum, s) => sum + (s.cost ?? 0), 0) / 1e6
  expect(spend).toBeCloseTo(expected, 6)
  expect(expected).toBeGreaterThan(0)
})
