/**
 * `@tollgate/web/redis` — API keys in Redis, shared by every process: `redisKeyRegistry`. Its own
 * entry point, so that apps without Redis never load it. Revocation is a key in Redis read on every
 * lookup (in the same round trip as the key), so a revoked key is refused at once everywhere.
 *
 * @example
 * import Redis from 'ioredis'
 * import { redisKeyRegistry } from '@tollgate/web/redis'
 * const keys = redisKeyRegistry({ client: new Redis(process.env.REDIS_URL!) })
 */
import { type KeyRegistry, keyRegistry, type StoredKey } from '../identity/keys.js'

/** The few Redis commands the registry uses; an ioredis `Redis` or `Cluster` fits. */
export interface RedisKeyClient {
  mget(...keys: string[]): Promise<(string | null)[]>
  set(key: string, value: string): Promise<unknown>
}

/** Options of {@link redisKeyRegistry}. */
export interface RedisKeyRegistryOptions {
  /** An ioredis client (standalone or Cluster). @example new Redis(process.env.REDIS_URL!) */
  client: RedisKeyClient
  /**
   * Prefix of every key the registry writes. Each key id's entries share a hash tag, so a lookup is
   * one `MGET` on Redis Cluster too.
   * @default 'tollgate:keys:'
   * @example 'myapp:apikeys:'
   */
  prefix?: string
}

/**
 * A key registry in Redis: `<prefix>{<keyId>}:key` holds the stored key (hash and grant, never the
 * key), `<prefix>{<keyId>}:revoked` marks a revocation. Neither expires.
 *
 * @example
 * const keys = redisKeyRegistry({ client: redis })
 * const { key, keyId } = await keys.issue({ subject: { tenant: 'acme' }, plan: 'starter' })
 * await keys.revoke(keyId) // refused at once by every process
 */
export function redisKeyRegistry(options: RedisKeyRegistryOptions): KeyRegistry {
  const { client } = options
  const prefix = options.prefix ?? 'tollgate:keys:'
  const recordKey = (keyId: string) => `${prefix}{${keyId}}:key`
  const revokedKey = (keyId: string) => `${prefix}{${keyId}}:revoked`
  return keyRegistry({
    async find(keyId) {
      const [record, revoked] = await client.mget(recordKey(keyId), revokedKey(keyId))
      if (record === null || record === undefined) return null
      const stored = JSON.parse(record) as StoredKey
      return { ...stored, revoked: revoked !== null && revoked !== undefined }
    },
    async put(record) {
      const { revoked: _, ...rest } = record
      await client.set(recordKey(record.keyId), JSON.stringify(rest))
    },
    async revoke(keyId) {
      await client.set(revokedKey(keyId), String(Date.now()))
    },
  })
}
