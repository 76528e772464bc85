/**
 * The PostgreSQL sink when writes fail: the database goes away (a TCP proxy is cut), or the
 * table cannot be written (renamed away). Rows are kept and retried; once the database is back,
 * everything is there; `close()` writes what is left, or reports what it gave up.
 */
import type { AuditRecord } from '@tollgate/core'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { AuditError } from '../errors.js'
import { auditTo } from '../sink.js'
import { connectionString, dropTable, PG, storedRecords, tableName, testPool } from '../test/pg.js'
import { tcpProxy, waitFor } from '../test/proxy.js'
import { playTraffic } from '../test/traffic.js'
import { postgresSink } from './sink.js'

const pool = testPool()
const tables: string[] = []
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
  for (const name of tables.splice(0)) {
    await dropTable(pool, name)
    await dropTable(pool, `${name}_away`)
  }
})
afterAll(() => pool.end())

function table(label: string) {
  const name = tableName(label)
  tables.push(name)
  return name
}

const decision = (id: string): AuditRecord => ({
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
})

describe('postgresSink when writes fail', () => {
  it('keeps and retries rows while the database is unreachable; nothing is lost', async () => {
    const name = table('outage')
    const proxy = await tcpProxy(PG.host, PG.port)
    cleanups.push(() => proxy.stop())
    const failures = waitFor<AuditError>((errors) => errors.length >= 3)
    const sink = postgresSink({
      connectionString: connectionString(proxy.port),
      table: name,
      batchSize: 25,
      backoffMs: () => 2,
      onError: (e) => failures.push(e),
    })
    const records = { decisions: 0, settles: 0 }
    const hooks = auditTo(sink)
    const half = await playTraffic(hooks, 150, 3)
    await sink.flush()
    expect(failures.items).toEqual([])

    await proxy.cut()
    const rest = await playTraffic(hooks, 150, 4)
    await failures.reached // the writes failed at least three times
    expect(failures.items.every((e) => e.code === 'write_failed' && e.records.length === 0)).toBe(true)
    expect(failures.items.map((e) => e.attempt).slice(0, 3)).toEqual([1, 2, 3])
    expect(sink.pending).toBeGreaterThan(0)

    await proxy.restore()
    await sink.close()
    const stored = await storedRecords(pool, name)
    for (const run of [half, rest]) {
      records.decisions += run.decisions.length
      records.settles += run.settles.length
      for (const d of run.decisions) expect(stored.get(d.id)?.decision).toEqual(d)
      for (const s of run.settles) expect(stored.get(s.id)?.settle).toEqual(s)
    }
    expect(stored.size).toBe(records.decisions)
    expect(failures.items.some((e) => e.code !== 'write_failed')).toBe(false)
  })

  it('retries while the table cannot be written, and close() flushes once it can', async () => {
    const name = table('renamed')
    const failures = waitFor<AuditError>((errors) => errors.length >= 2)
    const sink = postgresSink({ pool, table: name, backoffMs: () => 1, onError: (e) => failures.push(e) })
    sink.write(decision('before'))
    await sink.flush()
    await pool.query(`ALTER TABLE "${name}" RENAME TO "${name}_away"`)
    try {
      for (let i = 0; i < 10; i++) sink.write(decision(`during-${i}`))
      void sink.close() // close() keeps retrying until the table is back
      await failures.reached
      expect(failures.items[0]!.cause).toMatchObject({ code: '42P01' }) // undefined table
      expect(sink.pending).toBe(10)
    } finally {
      await pool.query(`ALTER TABLE "${name}_away" RENAME TO "${name}"`)
    }
    await sink.close()
    const stored = await storedRecords(pool, name)
    expect(stored.size).toBe(11)
    expect(stored.get('during-9')?.decision).toEqual(decision('during-9'))
  })

  it('close() gives up after closeTimeoutMs and reports every record it did not write', async () => {
    const name = table('timeout')
    const proxy = await tcpProxy(PG.host, PG.port)
    cleanups.push(() => proxy.stop())
    await proxy.cut()
    const errors: AuditError[] = []
    const sink = postgresSink({
      connectionString: connectionString(proxy.port),
      table: name,
      backoffMs: () => 5,
      closeTimeoutMs: 100,
      onError: (e) => errors.push(e),
    })
    for (let i = 0; i < 5; i++) sink.write(decision(`lost-${i}`))
    await sink.close()
    const gaveUp = errors.filter((e) => e.code === 'close_timeout')
    expect(gaveUp).toHaveLength(1)
    expect(gaveUp[0]!.records.map((r) => r.id).sort()).toEqual([
      'lost-0',
      'lost-1',
      'lost-2',
      'lost-3',
      'lost-4',
    ])
    expect(sink.pending).toBe(0)
  })
})
