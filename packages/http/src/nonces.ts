/**
 * Replay protection for signed store requests: each nonce is accepted once while its timestamp is
 * inside the accepted window. The memory cache covers one server process; with several store
 * servers behind a load balancer, pass a shared {@link NonceStore} (for example `redisNonceStore`
 * from `@tollgate/web/redis`, which has this shape).
 */

/** Where seen nonces are remembered. */
export interface NonceStore {
  /**
   * Remember `nonce` for `ttlMs`. `true` when it was not seen within that time (accept), `false`
   * when it was (a replay). Throwing refuses the request with 503.
   */
  claim(nonce: string, ttlMs: number): boolean | Promise<boolean>
}

/** Thrown when the memory nonce cache is full of live nonces: refusing beats forgetting one. */
export class NonceCacheFullError extends Error {
  override readonly name = 'NonceCacheFullError'
}

/** Nonces in this process's memory, each until its TTL passes, at most `maxEntries` live ones. */
export function memoryNonces(maxEntries: number, now: () => number): NonceStore {
  /** nonce → expiry, in insertion order (expiries are nearly ascending: one TTL for all). */
  const seen = new Map<string, number>()
  const sweep = (at: number, all: boolean) => {
    for (const [nonce, expiresAt] of seen) {
      if (expiresAt <= at) seen.delete(nonce)
      else if (!all) return
    }
  }
  return {
    claim(nonce, ttlMs) {
      const at = now()
      const expiresAt = seen.get(nonce)
      if (expiresAt !== undefined && expiresAt > at) return false
      seen.delete(nonce)
      sweep(at, false)
      if (seen.size >= maxEntries) sweep(at, true)
      if (seen.size >= maxEntries)
        throw new NonceCacheFullError(`${maxEntries} live nonces; refusing rather than forgetting one`)
      seen.set(nonce, at + Math.max(1, ttlMs))
      return true
    },
  }
}
