/**
 * The few methods of a `pg` Pool (or Client) the sink uses, so any compatible client works and
 * the package's types do not depend on `@types/pg`.
 */

/** What the sink needs from a `pg` `Pool`: `query` with parameters. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
}

/** A pool the sink created itself (from `connectionString`) and ends on `close()`. */
export interface OwnedPool extends PgQueryable {
  end(): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
}

/** Creates a `pg` Pool; `pg` is loaded only when a connection string is given. */
export async function openPool(
  connectionString: string,
  onError: (error: Error) => void,
): Promise<OwnedPool> {
  const pg = (await import('pg')) as unknown as {
    Pool?: new (config: object) => OwnedPool
    default?: { Pool: new (config: object) => OwnedPool }
  }
  const Pool = pg.Pool ?? pg.default?.Pool
  if (!Pool) throw new Error('the pg package has no Pool export')
  const pool = new Pool({ connectionString })
  // An idle client whose connection drops emits 'error' on the pool; unhandled, it would crash.
  pool.on('error', onError)
  return pool
}
