/**
 * The PostgreSQL sink: records queue in memory (merged by id), go out in batched multi-row
 * upserts, and a failed write (or one past `writeTimeoutMs`) is retried with backoff without
 * losing its rows. `close()` writes everything that is left, or gives up at its deadline.
 */
import { AuditError, report } from '../errors.js'
import type { AuditSink } from '../sink.js'
import { defaultBackoffMs, waits } from '../timers.js'
import { type Abort, type OwnedPool, openPool, type PgQueryable, queryWithin } from './client.js'
import { MAX_BATCH, merge, mergeUnder, type PendingRow, recordsOf, upsertSql, values } from './rows.js'
import { type AuditTableOptions, createAuditTable, quoteTable } from './table.js'

/**
 * Options of {@link postgresSink}: exactly one of `pool` or `connectionString` (the type refuses
 * none, or both), the table, and how rows are written.
 */
export type PostgresSinkOptions = (
  | {
      /**
       * A `pg` Pool (or anything with its `query`). The sink does not end it: you do, after
       * `close()`. Attach your own `pool.on('error')` handler, as `pg` asks, and give it a
       * `connectionTimeoutMillis` (`pg` waits for ever to connect by default). A write past
       * `writeTimeoutMs` releases its client with the error, so the pool discards it. Not with
       * `connectionString`.
       * @example postgresSink({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 10_000 }) })
       */
      pool: PgQueryable
      /** Not with `pool`: give exactly one of `pool` or `connectionString`. */
      connectionString?: undefined
    }
  | {
      /** Not with `connectionString`: give exactly one of `pool` or `connectionString`. */
      pool?: undefined
      /**
       * A connection string; the sink creates its own `pg` Pool (the `pg` package must be installed)
       * and ends it on `close()`. The pool gives up connecting after `writeTimeoutMs`, and TCP
       * keepalive is on. Not with `pool`.
       * @example postgresSink({ connectionString: 'postgres://audit@db/billing' })
       */
      connectionString: string
    }
) &
  AuditTableOptions & {
    /**
     * Create the table and its index when missing, before the first write. Turn it off when a
     * migration owns the table (`auditTableSql()` gives the statement).
     * @default true
     * @example postgresSink({ pool, createTable: false })
     */
    createTable?: boolean
    /**
     * Most rows in one `INSERT` (at most 2,621: PostgreSQL takes 65,535 parameters).
     * A full batch is written at once; a partial one after `flushIntervalMs`.
     * @default 500
     * @example postgresSink({ pool, batchSize: 1000 })
     */
    batchSize?: number
    /**
     * Longest time a record waits in memory before a write is started.
     * @default 1000
     * @example postgresSink({ pool, flushIntervalMs: 250 })
     */
    flushIntervalMs?: number
    /**
     * Most rows held in memory (queued and being written) while the database is slow or away.
     * When full, a record for a new id drops the oldest queued row, reported to `onError` with
     * code `queue_full` and the dropped records. A decision and its settle share one row.
     * @default 100_000
     * @example postgresSink({ pool, maxQueue: 1_000_000 })
     */
    maxQueue?: number
    /**
     * Wait before retry number `attempt` (1, 2, …) of a failed write. Writes are retried until
     * they succeed (or `close()` times out); rows are never given up on a failed write.
     * @default exponential from 100 ms, doubling, capped at 30 s, with jitter
     * @example postgresSink({ pool, backoffMs: (attempt) => Math.min(60_000, 1_000 * attempt) })
     */
    backoffMs?: (attempt: number) => number
    /**
     * Longest time one write may take, connecting included. A write that has not answered by
     * then (a connection that went silent, a lock held for long) fails: it is reported to
     * `onError` (`write_failed`) and retried with backoff on a fresh connection, its rows kept.
     * With a `pg` Pool (the sink's own, or one you pass) the late write's client is released with
     * the error, so the pool discards it and closes its socket; with anything else that has only
     * `query`, the late statement is left to finish on its own (on a single `Client`, later
     * writes queue behind it: pass a Pool). The server is not told: a statement given up may
     * still land later, which is harmless (the upsert keeps what is stored). Set
     * `statement_timeout` on the database role to have the server cancel it too.
     * @default 10_000
     * @example postgresSink({ pool, writeTimeoutMs: 30_000 })
     */
    writeTimeoutMs?: number
    /**
     * Longest time `close()` keeps retrying. Past it, the rows not written are reported to
     * `onError` (code `close_timeout`, with the records) and `close()` resolves. Rows being
     * written at that moment are reported too, though they may still land. The write in progress
     * is given up (as past `writeTimeoutMs`), and a pool the sink made from `connectionString` is
     * torn down without waiting: its connections' sockets are destroyed, so the process can exit.
     * @default 30_000
     * @example postgresSink({ pool, closeTimeoutMs: 120_000 })
     */
    closeTimeoutMs?: number
    /**
     * Told about every failed write (`write_failed`, retried), dropped row (`queue_full`,
     * `record_rejected` for a row the database refuses, e.g. a NUL character in an id) and
     * `close_timeout`. Never called from the engine's path.
     * @default errors are ignored
     * @example postgresSink({ pool, onError: (e) => log.warn({ code: e.code, err: e.cause }) })
     */
    onError?: (error: AuditError) => void
  }

/** A PostgreSQL sink; `pending` is how many rows are waiting or being written. */
export interface PostgresSink extends AuditSink {
  readonly pending: number
}

/**
 * SQLSTATE classes 22 (data exception), 23 (integrity) and 54 (program limit: a value too large for
 * an index of the table, such as a 9,000-character id): the row itself is refused. Retried, such a
 * row held every later record back for ever.
 */
const refusesRow = (error: unknown) => /^(2[23]|54)/.test(String((error as { code?: unknown })?.code ?? ''))

/** The longest delay a Node timer keeps (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * A sink writing one row per decision into a PostgreSQL table, completed by its settle.
 * @example
 * const sink = postgresSink({ pool, table: 'tollgate_audit' })
 * const gate = createTollgate({ policy, ...auditTo(sink) })
 * // on shutdown
 * await sink.close()
 */
export function postgresSink(options: PostgresSinkOptions): PostgresSink {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('postgresSink needs exactly one of pool or connectionString')
  if (!options.pool === !options.connectionString)
    throw new TypeError('postgresSink needs exactly one of pool or connectionString')
  const table = quoteTable(options.table ?? 'tollgate_audit')
  const batchSize = options.batchSize ?? 500
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH)
    throw new RangeError(`batchSize must be a whole number from 1 to ${MAX_BATCH}`)
  const maxQueue = options.maxQueue ?? 100_000
  if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError('maxQueue must be a whole number ≥ 1')
  const flushIntervalMs = options.flushIntervalMs ?? 1000
  const closeTimeoutMs = options.closeTimeoutMs ?? 30_000
  const writeTimeoutMs = options.writeTimeoutMs ?? 10_000
  // timers with a NaN or an object for a delay fire at once, or throw later, on every write
  for (const [name, ms] of [
    ['flushIntervalMs', flushIntervalMs],
    ['closeTimeoutMs', closeTimeoutMs],
  ] as const)
    if (typeof ms !== 'number' || !(ms >= 0) || ms > MAX_TIMER_MS)
      throw new RangeError(`${name} must be a number of ms from 0 to ${MAX_TIMER_MS}`)
  // 0 would give every write up at once: nothing would ever be written
  if (typeof writeTimeoutMs !== 'number' || !(writeTimeoutMs > 0) || writeTimeoutMs > MAX_TIMER_MS)
    throw new RangeError(`writeTimeoutMs must be a number of ms above 0, at most ${MAX_TIMER_MS}`)
  for (const name of ['backoffMs', 'onError'] as const)
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw new TypeError(`postgresSink: ${name} must be a function`)
  const backoffMs = options.backoffMs ?? defaultBackoffMs
  const fail = (error: AuditError) => report(options.onError, error)

  let queue = new Map<string, PendingRow>()
  let inFlight: PendingRow[] = []
  let pool = options.pool
  let owned: OwnedPool | undefined
  let ready = options.createTable === false
  let draining: Promise<void> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let closing: Promise<void> | undefined
  let givenUp = false
  const timers = waits()
  /** Gives up the statement running now (close() past its deadline). */
  let abort: Abort | undefined
  const stopped = () => new Error('close() gave up before this write')

  /** The pool's `query`, each statement bounded by `writeTimeoutMs` (see `queryWithin`). */
  const bounded = (db: PgQueryable): PgQueryable => ({
    query: async (text, params) => {
      if (givenUp) throw stopped()
      return (await queryWithin(db, text, params ?? [], {
        ms: writeTimeoutMs,
        after: timers.after,
        running: (next) => {
          abort = next
        },
      })) as Awaited<ReturnType<PgQueryable['query']>>
    },
  })

  const prepare = async (): Promise<PgQueryable> => {
    if (!pool) {
      owned = await openPool(options.connectionString!, writeTimeoutMs, (cause) =>
        fail(new AuditError('write_failed', 'an idle PostgreSQL connection failed', { cause })),
      )
      pool = owned.pool
      if (givenUp) owned.destroy() // close() gave up while pg was loading
    }
    const db = bounded(pool)
    if (!ready) {
      await createAuditTable(db, options)
      ready = true
    }
    return db
  }

  const write = async (rows: PendingRow[]) => {
    const db = await prepare()
    await db.query(upsertSql(table, rows.length), rows.flatMap(values))
  }

  /** Puts a batch back at the front, under any newer events for the same ids. */
  const requeue = (rows: PendingRow[]) => {
    const next = new Map<string, PendingRow>()
    for (const row of rows) next.set(row.id, mergeUnder(row, queue.get(row.id)))
    for (const [id, row] of queue) if (!next.has(id)) next.set(id, row)
    queue = next
  }

  const take = () => {
    const rows: PendingRow[] = []
    for (const [id, row] of queue) {
      if (rows.length === batchSize) break
      rows.push(row)
      queue.delete(id)
    }
    return rows
  }

  /** Writes a refused batch row by row, dropping only the rows the database refuses. */
  const isolate = async (rows: PendingRow[]) => {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!
      try {
        await write([row])
      } catch (cause) {
        if (!refusesRow(cause)) {
          inFlight = rows.slice(i)
          throw cause
        }
        fail(
          new AuditError('record_rejected', 'PostgreSQL refused a row', { cause, records: recordsOf(row) }),
        )
      }
    }
  }

  const run = async () => {
    let attempt = 0
    while (queue.size > 0 && !givenUp) {
      inFlight = take()
      try {
        try {
          await write(inFlight)
        } catch (cause) {
          if (!refusesRow(cause)) throw cause
          await isolate(inFlight)
        }
        attempt = 0
      } catch (cause) {
        // past close()'s deadline the rows were reported as given up: nothing more to say or retry
        if (givenUp) return
        requeue(inFlight)
        attempt++
        fail(new AuditError('write_failed', 'an audit write failed; retrying', { cause, attempt }))
        inFlight = []
        await timers.sleep(backoffMs(attempt))
      } finally {
        inFlight = []
      }
    }
  }

  const drain = (): Promise<void> => {
    if (timer) clearTimeout(timer)
    timer = undefined
    draining ??= run().finally(() => {
      draining = undefined
      if (queue.size > 0 && !givenUp) schedule()
    })
    return draining
  }

  function schedule() {
    if (timer || draining) return
    timer = setTimeout(drain, flushIntervalMs)
    if (!closing) timer.unref?.()
  }

  const flush = async () => {
    const release = timers.hold() // an awaited flush holds the process open, as a close does
    try {
      while ((queue.size > 0 || draining) && !givenUp) await drain()
    } finally {
      release()
    }
  }

  const close = async () => {
    timers.keepAlive()
    let deadline: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<boolean>((resolve) => {
      deadline = setTimeout(() => resolve(true), closeTimeoutMs)
    })
    try {
      const late = await Promise.race([flush().then(() => false), timedOut])
      if (late) {
        givenUp = true
        // Rows being written right now are counted as given up, though they may still land.
        const lost = [...inFlight, ...queue.values()].flatMap(recordsOf)
        queue.clear()
        inFlight = []
        fail(
          new AuditError('close_timeout', `close() gave up on ${lost.length} audit records`, {
            records: lost,
          }),
        )
        // the write in progress may never answer: give it up (a pool you passed discards its
        // client), and tear down our own pool without waiting, so nothing keeps the process alive
        abort?.(stopped())
        owned?.destroy()
        timers.wake() // a retry's back-off ends now, instead of holding the process up to 30 s
        return
      }
      // everything is written; a pool whose connections went silent since would not end: the
      // deadline still holds
      if (owned && (await Promise.race([owned.end().then(() => false), timedOut]))) owned.destroy()
    } finally {
      clearTimeout(deadline)
    }
  }

  return {
    get pending() {
      return queue.size + inFlight.length
    },
    write(record) {
      if (closing) {
        fail(new AuditError('closed', 'the sink is closed', { records: [record] }))
        return
      }
      const existing = queue.get(record.id)
      if (!existing && queue.size + inFlight.length >= maxQueue) {
        const oldest = queue.values().next().value as PendingRow | undefined
        const dropped = oldest ? recordsOf(oldest) : [record]
        if (oldest) queue.delete(oldest.id)
        fail(
          new AuditError('queue_full', 'the audit queue is full; dropped the oldest', { records: dropped }),
        )
        if (!oldest) return
      }
      queue.set(record.id, merge(existing, record))
      if (queue.size >= batchSize) void drain()
      else schedule()
    },
    flush,
    close() {
      closing ??= close()
      return closing
    },
  }
}
