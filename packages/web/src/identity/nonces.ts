/**
 * Nonce stores for the HMAC-signed identity header: each nonce is accepted once while its
 * signature's timestamp is inside the accepted window, so a captured header cannot be replayed.
 * `memoryNonceStore` covers one process; `redisNonceStore` (`@tollgate/web/redis`) every process
 * sharing a Redis.
 */
import { type Clock, checkClock, systemClock } from '@tollgate/core'

/** Where seen nonces are remembered; implement it to keep them in your own storage. */
export interface NonceStore {
  /**
   * Remember `nonce` for `ttlMs` milliseconds. Answer `true` when it was not seen within that time
   * (the request is accepted), `false` when it was (a replay). Must be atomic across every process
   * that shares the store. Throwing refuses the request with 503 (identity fails closed).
   */
  claim(nonce: string, ttlMs: number): boolean | Promise<boolean>
}

/** Options of {@link memoryNonceStore}. */
export interface MemoryNonceStoreOptions {
  /**
   * Most nonces remembered at once. When every entry is still live, new requests are refused (the
   * store throws, answered 503) rather than forgetting a nonce that could then be replayed. Size it
   * above your peak signed requests per `2 × maxAgeMs`.
   * @default 100000
   * @example 1_000_000
   */
  maxEntries?: number
  /** Time for expiring entries. @default systemClock @example fakeClock() */
  clock?: Clock
}

/** Thrown by {@link memoryNonceStore} when it is full of live nonces. */
export class NonceStoreFullError extends Error {
  constructor(maxEntries: number) {
    super(`memoryNonceStore: ${maxEntries} live nonces; refusing rather than forgetting one`)
    this.name = 'NonceStoreFullError'
  }
}

/**
 * Nonces in this process's memory, each kept until its TTL passes; bounded by `maxEntries`.
 * Enough for one process; with several, use `redisNonceStore` so that a header replayed to
 * another process is refused too.
 *
 * @example
 * signedIdentity({ hmac: { secret, nonces: memoryNonceStore({ maxEntries: 500_000 }) } })
 */
export function memoryNonceStore(given?: MemoryNonceStoreOptions): NonceStore {
  const options = given ?? {} // a JS caller's null is no options, as undefined is
  const maxEntries = options.maxEntries ?? 100_000
  if (!Number.isInteger(maxEntries) || maxEntries < 1)
    throw new TypeError('memoryNonceStore: maxEntries is a positive integer')
  checkClock('memoryNonceStore', options.clock)
  const clock = options.clock ?? systemClock
  /** nonce → expiry (ms since epoch), in insertion order. */
  const seen = new Map<string, number>()
  const sweep = (now: number, all: boolean) => {
    for (const [nonce, expiresAt] of seen) {
      if (expiresAt <= now) seen.delete(nonce)
      else if (!all) return
    }
  }
  return {
    claim(nonce, ttlMs) {
      const now = clock.now()
      const expiresAt = seen.get(nonce)
      if (expiresAt !== undefined && expiresAt > now) return false
      seen.delete(nonce)
      sweep(now, false) // drop the oldest entries while they have expired: cheap, keeps the map small
      if (seen.size >= maxEntries) sweep(now, true)
      if (seen.size >= maxEntries) throw new NonceStoreFullError(maxEntries)
      seen.set(nonce, now + Math.max(1, ttlMs))
      return true
    },
  }
}
