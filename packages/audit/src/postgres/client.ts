/**
 * The few methods of a `pg` Pool (or Client) the sink uses, so any compatible client works and
 * the package's types do not depend on `@types/pg`; the sink's own pool; and statements bounded
 * in time.
 */

/** What the sink needs from a `pg` `Pool`: `query` with parameters. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
}

/** A client checked out of a `pg` Pool: `release(error)` makes the pool discard it. */
interface PoolClient {
  query(text: string, values?: unknown[]): Promise<unknown>
  release(error?: Error | boolean): void
  on(event: 'error', listener: (error: Error) => void): unknown
  off(event: 'error', listener: (error: Error) => void): unknown
}

/** A `pg` Pool, or a pool built on `pg-pool` (its `connect()` hands out clients to release). */
interface PgPool extends PgQueryable {
  connect(): Promise<PoolClient>
  readonly totalCount: number
}

const isPgPool = (db: PgQueryable): db is PgPool =>
  typeof (db as Partial<PgPool>).connect === 'function' &&
  typeof (db as Partial<PgPool>).totalCount === 'number'

/** A pool the sink created itself (from `connectionString`) and ends on `close()`. */
export interface OwnedPool {
  /** The `pg` Pool itself. */
  pool: PgQueryable
  /** Ends the pool gracefully: idle clients say goodbye, busy ones are waited for. */
  end(): Promise<void>
  /** Ends the pool at once: every connection's socket is destroyed, nothing is waited for. */
  destroy(): void
}

/** The parts of a `pg` Client the sink's own pool tracks, to destroy their sockets. */
interface PgClient {
  once(event: 'end', listener: () => void): unknown
  connection?: { stream?: { destroy?(): void } }
}

type PoolConstructor = new (
  config: object,
) => PgQueryable & {
  end(): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
}
type ClientConstructor = new (config: object) => PgClient

/**
 * Creates a `pg` Pool; `pg` is loaded only when a connection string is given. A connection
 * attempt is given up after `timeoutMs` (`connectionTimeoutMillis`), and TCP keepalive finds idle
 * connections that died silently. No `statement_timeout` is sent: a startup parameter PgBouncer
 * does not know makes it refuse the connection (statements are bounded by `queryWithin`).
 */
export async function openPool(
  connectionString: string,
  timeoutMs: number,
  onError: (error: Error) => void,
): Promise<OwnedPool> {
  const pg = (await import('pg')) as unknown as {
    Pool?: PoolConstructor
    Client?: ClientConstructor
    default?: { Pool: PoolConstructor; Client: ClientConstructor }
  }
  const Pool = pg.Pool ?? pg.default?.Pool
  const Client = pg.Client ?? pg.default?.Client
  if (!Pool || !Client) throw new Error('the pg package has no Pool or Client export')
  // every client the pool makes, connecting or connected, so destroy() can reach its socket
  const clients = new Set<PgClient>()
  class TrackedClient extends Client {
    constructor(config: object) {
      super(config)
      clients.add(this)
      this.once('end', () => clients.delete(this))
    }
  }
  const ms = Math.max(1, Math.ceil(timeoutMs))
  const pool = new Pool({
    connectionString,
    Client: TrackedClient,
    connectionTimeoutMillis: ms,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  })
  // An idle client whose connection drops emits 'error' on the pool; unhandled, it would crash.
  let destroyed = false
  pool.on('error', (error) => {
    if (!destroyed) onError(error)
  })
  let ending: Promise<void> | undefined
  const end = () => {
    ending ??= pool.end()
    return ending
  }
  return {
    pool,
    end,
    destroy() {
      destroyed = true
      end().catch(() => {}) // no new clients; idle ones are ended
      for (const client of clients) client.connection?.stream?.destroy?.()
    },
  }
}

/** Gives a statement up early (close() past its deadline). */
export type Abort = (reason: Error) => void

/** How {@link queryWithin} bounds a statement. */
export interface Bound {
  /** Longest time for the statement, connecting included. */
  ms: number
  /** Starts a timer (held open as the sink's other waits are); returns its cancel. */
  after(ms: number, fn: () => void): () => void
  /** Told how to give up the statement running now, then `undefined` once it is over. */
  running(abort: Abort | undefined): void
}

/**
 * Runs one statement, given up after `bound.ms` with an error saying so. On a `pg` Pool it runs
 * on a client checked out for it, and a client given up is released with the error, so the pool
 * discards it (its socket destroyed at once) and the next statement runs on a fresh connection.
 * Anything else only has `query`: a statement given up there is left to finish on its own.
 */
export function queryWithin(
  db: PgQueryable,
  text: string,
  values: unknown[],
  bound: Bound,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let done = false
    let client: PoolClient | undefined
    const onClientError = (error: Error) => finish(true, error)
    function finish(failed: boolean, value: unknown) {
      if (done) return
      done = true
      cancel()
      bound.running(undefined)
      const held = client
      client = undefined
      if (held) {
        held.off('error', onClientError)
        // like pg's own pool.query: a client that failed, or was given up, is not reused
        held.release(failed ? (value instanceof Error ? value : true) : undefined)
      }
      if (failed) reject(value)
      else resolve(value)
    }
    const cancel = bound.after(bound.ms, () => {
      const error = new Error(`the audit write did not finish within ${bound.ms} ms (writeTimeoutMs)`)
      error.name = 'TimeoutError'
      finish(true, error)
    })
    bound.running((reason) => finish(true, reason))
    // a query() or connect() that throws instead of rejecting fails the statement the same way
    const run = (on: { query: PoolClient['query'] }) => {
      try {
        on.query(text, values).then(
          (result) => finish(false, result),
          (error: unknown) => finish(true, error),
        )
      } catch (error) {
        finish(true, error)
      }
    }
    if (!isPgPool(db)) return run(db)
    try {
      db.connect().then(
        (checkedOut) => {
          // connected after the statement was given up: the client is sound, back it goes
          if (done) return checkedOut.release()
          client = checkedOut
          // a checked-out client whose connection drops emits 'error': unhandled, it would crash
          checkedOut.on('error', onClientError)
          run(checkedOut)
        },
        (error: unknown) => finish(true, error),
      )
    } catch (error) {
      finish(true, error)
    }
  })
}
