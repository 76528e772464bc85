/**
 * The PostgreSQL sink when writes fail: the database goes away (a TCP proxy is cut), stops
 * answering without closing anything (the proxy freezes: a partition), or the table cannot be
 * written (renamed away). Rows are kept and retried; once the database is back, everything is
 * there; `close()` writes what is left, or reports what it gave up and lets the process exit.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { AuditError } from '../errors.js'
import { auditTo } from '../sink.js'
import { connectionString, dropTable, PG, storedRecords, tableName, testPool } from '../test/pg.js'
import { tcpProxy, waitFor, within } from '../test/proxy.js'
import { decisionRecord } from '../test/records.js'
import { playTraffic } from '../test/traffic.js'
import { postgresSink } from './sink.js'

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
const WORKER = fileURLToPath(new URL('../test/partition-worker.ts', import.meta.url))
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

const decision = (id: string) => decisionRecord(id)

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

  for (const given of ['connectionString', 'pool'] as const)
    it(`a write that never answers fails after writeTimeoutMs and is retried on a fresh connection (${given})`, async () => {
      const name = table('partition')
      const proxy = await tcpProxy(PG.host, PG.port)
      cleanups.push(() => proxy.stop())
      const theirs = new pg.Pool({ ...PG, port: proxy.port, max: 2 })
      theirs.on('error', () => {})
      cleanups.push(() => within(theirs.end(), 2_000, 'ending the pool'))
      const failures = waitFor<AuditError>((errors) => errors.length >= 1)
      const sink = postgresSink({
        ...(given === 'pool' ? { pool: theirs } : { connectionString: connectionString(proxy.port) }),
        table: name,
        flushIntervalMs: 5,
        writeTimeoutMs: 300,
        backoffMs: () => 50,
        onError: (e) => {
          failures.push(e)
          proxy.thaw() // the partition heals as soon as the stuck write is reported
        },
      })
      sink.write(decision('before'))
      await sink.flush()

      proxy.freeze() // the connection the sink holds stops answering, and nothing closes it
      for (let i = 0; i < 10; i++) sink.write(decision(`during-${i}`))
      await within(failures.reached, 3_000, 'a write_failed for the write that never answered')
      expect(failures.items[0]).toMatchObject({ code: 'write_failed', attempt: 1, records: [] })
      expect(String((failures.items[0]!.cause as Error).message)).toMatch(/300 ms/)

      // the retry runs on a fresh connection (the frozen one would never answer)
      await within(sink.flush(), 5_000, 'flush() after the partition healed')
      expect(failures.items).toHaveLength(1)
      const stored = await storedRecords(pool, name)
      expect(stored.size).toBe(11)
      expect(stored.get('during-9')?.decision).toEqual(decision('during-9'))
      if (given === 'pool') expect(theirs.totalCount).toBe(theirs.idleCount) // the stuck client is not kept
      await sink.close()
    })

  it('close() past closeTimeoutMs gives up a write that never answers: a pool you passed gets its client back', async () => {
    const name = table('partition_close')
    const proxy = await tcpProxy(PG.host, PG.port)
    cleanups.push(() => proxy.stop())
    const theirs = new pg.Pool({ ...PG, port: proxy.port, max: 2 })
    theirs.on('error', () => {})
    const errors: AuditError[] = []
    const sink = postgresSink({
      pool: theirs,
      table: name,
      flushIntervalMs: 5,
      writeTimeoutMs: 60_000, // the write's own bound is far away: close() must not wait for it
      closeTimeoutMs: 200,
      onError: (e) => errors.push(e),
    })
    sink.write(decision('before'))
    await sink.flush()
    proxy.freeze()
    for (let i = 0; i < 5; i++) sink.write(decision(`lost-${i}`))
    await within(sink.close(), 3_000, 'close()')
    expect(errors.map((e) => e.code)).toEqual(['close_timeout'])
    expect(errors[0]!.records.map((r) => r.id).sort()).toEqual([
      'lost-0',
      'lost-1',
      'lost-2',
      'lost-3',
      'lost-4',
    ])
    // the client stuck in the write was released with an error: the pool dropped it, and can end
    await within(theirs.end(), 3_000, 'ending the pool the sink was given')
    await proxy.closedByClient(2_000)
  })

  for (const mode of ['stuck', 'backoff'] as const)
    it(`close() past closeTimeoutMs tears down a pool it made: the process exits although the database never answers (${mode})`, async () => {
      const name = table('partition_exit')
      const proxy = await tcpProxy(PG.host, PG.port)
      cleanups.push(() => proxy.stop())
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, String(proxy.port), name, mode], {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'inherit'],
      })
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
      let output = ''
      const said = (text: string) =>
        new Promise<void>((resolve) => {
          const check = () => output.includes(text) && resolve()
          child.stdout.on('data', (chunk: Buffer) => {
            output += chunk.toString()
            check()
          })
          check()
        })
      try {
        await within(Promise.race([said('ready'), exited]), 8_000, 'the worker starting')
        expect(output).toContain('ready')
        proxy.freeze()
        child.stdin.end('frozen\n')
        await within(said('closed'), 5_000, 'close() in the worker')
        const [code] = await within(exited, 3_000, 'the worker exiting after close()')
        expect(code).toBe(0)
        // backoff: the write that timed out was reported, then close() gave its rows up
        expect(output).toContain(`errors ${mode === 'backoff' ? 'write_failed:0 ' : ''}close_timeout:10`)
        await proxy.closedByClient(2_000)
      } finally {
        child.kill('SIGKILL')
      }
    }, 20_000)
})
