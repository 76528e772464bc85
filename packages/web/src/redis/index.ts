/**
 * `@tollgate/web/redis` — identity state in Redis, shared by every process: `redisKeyRegistry` (API
 * keys) and `redisNonceStore` (nonces of HMAC-signed identity headers). Its own entry point, so that
 * apps without Redis never load it. Revocation is a key in Redis read on every lookup (in the same
 * round trip as the key), so a revoked key is refused at once everywhere; a nonce is claimed with
 * `SET NX PX`, so a replayed header is refused by every process.
 *
 * @example
 * import Redis from 'ioredis'
 * import { redisKeyRegistry, redisNonceStore } from '@tollgate/web/redis'
 * const redis = new Redis(process.env.REDIS_URL!)
 * const keys = redisKeyRegistry({ client: redis })
 * const nonces = redisNonceStore({ client: redis })
 */
import type { Clock, Subject } from '@tollgate/core'
import { type KeyRegistry, keyRegistry, type StoredKey } from '../identity/keys.js'
import type { NonceStore } from '../identity/nonces.js'

/** The few Redis commands the registry uses; an ioredis `Redis` or `Cluster` fits. */
export interface RedisKeyClient {
  mget(...keys: string[]): Promise<(string | null)[]>
  set(key: string, value: string): Promise<unknown>
  set(key: string, value: string, px: 'PX', milliseconds: number, nx: 'NX'): Promise<unknown>
  sadd(key: string, ...members: string[]): Promise<unknown>
  smembers(key: string): Promise<string[]>
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
  /** Time for `createdAt`, expiry and rotation (not Redis `TIME`). @default systemClock @example fakeClock() */
  clock?: Clock
}

const indexPart = (text: string) => encodeURIComponent(text)

/**
 * The client and prefix, checked when the registry or store is made (a missing client, or a prefix
 * that is no string, failed every call): `methods` are the commands it needs, and a prefix holds
 * no brace, which would take the hash tag from the key ids.
 */
function checkOptions(who: string, options: unknown, methods: readonly string[], fallback: string): string {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${who} needs { client }`)
  const { client, prefix = fallback } = options as { client?: Record<string, unknown>; prefix?: unknown }
  if (methods.some((method) => typeof client?.[method] !== 'function'))
    throw new TypeError(`${who}: client must be an ioredis client (Redis or Cluster)`)
  if (typeof prefix !== 'string' || /[{}]/.test(prefix))
    throw new TypeError(`${who}: prefix must be a string without "{" or "}"`)
  return prefix
}

/**
 * A key registry in Redis: `<prefix>{<keyId>}:key` holds the stored key (hash, grant, expiry and
 * rotation, never the key), `<prefix>{<keyId>}:revoked` marks a revocation. Sets
 * `<prefix>index` (every key id) and `<prefix>by:<dimension>=<id>` (key ids by subject dimension)
 * serve `list`. Nothing expires: an expired or rotated key stays listed with its state. A rotation
 * claims its key with `SET <prefix>{<keyId>}:rotating <newKeyId> PX 60000 NX`, so that of two
 * processes rotating one key at once exactly one succeeds.
 *
 * @example
 * const keys = redisKeyRegistry({ client: redis })
 * const { key, keyId } = await keys.issue({ subject: { tenant: 'acme' }, plan: 'starter' })
 * await keys.revoke(keyId) // refused at once by every process
 */
export function redisKeyRegistry(options: RedisKeyRegistryOptions): KeyRegistry {
  const methods = ['mget', 'set', 'sadd', 'smembers']
  const prefix = checkOptions('redisKeyRegistry', options, methods, 'tollgate:keys:')
  const { client } = options
  const recordKey = (keyId: string) => `${prefix}{${keyId}}:key`
  const revokedKey = (keyId: string) => `${prefix}{${keyId}}:revoked`
  const rotatingKey = (keyId: string) => `${prefix}{${keyId}}:rotating`
  const allKey = `${prefix}index`
  const byKey = (dimension: string, id: string) => `${prefix}by:${indexPart(dimension)}=${indexPart(id)}`
  async function find(keyId: string): Promise<StoredKey | null> {
    const [record, revoked] = await client.mget(recordKey(keyId), revokedKey(keyId))
    if (record === null || record === undefined) return null
    const stored = JSON.parse(record) as StoredKey
    return { ...stored, revoked: revoked !== null && revoked !== undefined }
  }
  return keyRegistry(
    {
      find,
      async put(record) {
        const { revoked: _, ...rest } = record
        await client.set(recordKey(record.keyId), JSON.stringify(rest))
        await Promise.all([
          client.sadd(allKey, record.keyId),
          ...Object.entries(record.grant.subject).map(([dim, id]) =>
            client.sadd(byKey(dim, id), record.keyId),
          ),
        ])
      },
      async revoke(keyId) {
        await client.set(revokedKey(keyId), String(Date.now()))
      },
      async claimRotation(keyId, newKeyId, ttlMs) {
        return (await client.set(rotatingKey(keyId), newKeyId, 'PX', ttlMs, 'NX')) === 'OK'
      },
      async scan(subject: Subject) {
        // the smallest index set among the filter's dimensions (or every key)
        const sets = Object.entries(subject).map(([dim, id]) => byKey(dim, id))
        const members = await Promise.all((sets.length > 0 ? sets : [allKey]).map((k) => client.smembers(k)))
        const ids = members.reduce((a, b) => (b.length < a.length ? b : a))
        const records = await Promise.all(ids.map(find))
        return records.filter((r): r is StoredKey => r !== null)
      },
    },
    options.clock ? { clock: options.clock } : {},
  )
}

/** The Redis command the nonce store uses; an ioredis `Redis` or `Cluster` fits. */
export interface RedisNonceClient {
  set(key: string, value: string, px: 'PX', milliseconds: number, nx: 'NX'): Promise<unknown>
}

/** Options of {@link redisNonceStore}. */
export interface RedisNonceStoreOptions {
  /** An ioredis client (standalone or Cluster). @example new Redis(process.env.REDIS_URL!) */
  client: RedisNonceClient
  /**
   * Prefix of every nonce key.
   * @default 'tollgate:nonces:'
   * @example 'myapp:identity-nonces:'
   */
  prefix?: string
}

/**
 * Nonces of HMAC-signed identity headers in Redis, shared by every process: each claim is one
 * `SET <prefix><nonce> 1 PX <ttl> NX`, so exactly one process accepts a given nonce, and Redis
 * forgets it once the signature's timestamp is stale anyway. A Redis error refuses the request
 * (503): identity fails closed.
 *
 * @example
 * signedIdentity({ hmac: { secret, nonces: redisNonceStore({ client: redis }) } })
 */
export function redisNonceStore(options: RedisNonceStoreOptions): NonceStore {
  const prefix = checkOptions('redisNonceStore', options, ['set'], 'tollgate:nonces:')
  const { client } = options
  return {
    async claim(nonce, ttlMs) {
      const reply = await client.set(`${prefix}${nonce}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')
      return reply === 'OK'
    },
  }
}
