/**
 * @tollgate/redis — the Redis store for Tollgate: every hold of a request in one atomic
 * round trip, time from Redis, shared by every process that points at the same Redis.
 * A Redis Cluster client works too: a request whose counters span slots is held slot by
 * slot, with compensation (see docs/redis.md).
 *
 * @example
 * import Redis from 'ioredis'
 * import { createTollgate } from '@tollgate/core'
 * import { redisStore } from '@tollgate/redis'
 *
 * const client = new Redis({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
 * const gate = createTollgate({ policy, store: redisStore({ client, prefix: 'tollgate' }) })
 */
export { decodeId, encodeId } from './keys.js'
export { type RedisStore, RedisStoreError, type RedisStoreOptions, redisStore } from './store.js'
