/** Test helpers: a client on the test Redis, a prefix per store, and clean-up by prefix. */
import { Redis } from 'ioredis'

/** The Redis the tests use: `TOLLGATE_TEST_REDIS` (a redis:// URL) or 127.0.0.1:6379. */
export const REDIS_URL = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'

/** A client as the docs recommend (no offline queue, no resending of unanswered commands), on `url`. */
export function testClient(url = REDIS_URL): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
  })
}

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`

/** Prefixes unique to this run and label: `tgtest-<run>-<label>-<n>`. */
export function prefixes(label: string): { next(): string; pattern: string } {
  let n = 0
  const base = `tgtest-${run}-${label}-`
  return { next: () => `${base}${++n}`, pattern: `{${base}*` }
}

/** Every key matching a SCAN pattern. */
export async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    // a large COUNT: the shared test Redis may hold many other keys, and SCAN walks them all
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** Deletes every key matching a SCAN pattern; returns how many there were. */
export async function deleteKeys(client: Redis, pattern: string): Promise<number> {
  const keys = await scanKeys(client, pattern)
  for (let i = 0; i < keys.length; i += 500) await client.unlink(...keys.slice(i, i + 500))
  return keys.length
}
