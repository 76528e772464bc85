import { fakeClock } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { keyRegistry, memoryKeyRegistry } from './keys.js'
import { memoryNonceStore, NonceStoreFullError } from './nonces.js'
import { signedIdentity } from './signed.js'

describe('memoryNonceStore', () => {
  it('accepts a nonce once until its TTL passes', () => {
    const clock = fakeClock()
    const nonces = memoryNonceStore({ clock })
    expect(nonces.claim('a', 1000)).toBe(true)
    expect(nonces.claim('a', 1000)).toBe(false)
    expect(nonces.claim('b', 1000)).toBe(true)
    clock.advance(999)
    expect(nonces.claim('a', 1000)).toBe(false)
    clock.advance(1)
    expect(nonces.claim('a', 1000)).toBe(true)
  })

  it('is bounded: forgets expired nonces to make room, and refuses (throws) rather than forget a live one', () => {
    const clock = fakeClock()
    const nonces = memoryNonceStore({ clock, maxEntries: 3 })
    expect(nonces.claim('a', 100)).toBe(true)
    expect(nonces.claim('b', 10_000)).toBe(true) // b outlives a
    expect(nonces.claim('c', 100)).toBe(true)
    expect(() => nonces.claim('d', 100)).toThrow(NonceStoreFullError)
    // the refused nonce was not remembered, the live ones are
    expect(nonces.claim('b', 100)).toBe(false)
    clock.advance(100) // a and c expire; b (not the oldest) is still live
    expect(nonces.claim('d', 100)).toBe(true)
    expect(nonces.claim('e', 100)).toBe(true)
    expect(nonces.claim('b', 100)).toBe(false)
    expect(() => nonces.claim('f', 100)).toThrow(NonceStoreFullError)
    expect(() => memoryNonceStore({ maxEntries: 0 })).toThrow(TypeError)
  })
})

describe('identity clocks', () => {
  it('null options from JavaScript are no options (they threw a TypeError)', async () => {
    expect(await memoryNonceStore(null as never).claim('n'.repeat(16), 1000)).toBe(true)
  })

  it('a clock that reads no time is refused when the identity part is made', () => {
    // with one, an expired key never expired (expiresAt <= NaN is false) and any timestamp was fresh
    for (const now of [() => Number.NaN, () => undefined, () => new Date()]) {
      const clock = { now } as never
      expect(() => memoryNonceStore({ clock })).toThrow(
        /^memoryNonceStore: clock.now\(\) must return milliseconds/,
      )
      expect(() => memoryKeyRegistry({ clock })).toThrow(/^keyRegistry: clock.now\(\) must return/)
      expect(() => keyRegistry({ find: () => null, put: () => {}, revoke: () => {} }, { clock })).toThrow(
        /^keyRegistry: clock/,
      )
      expect(() => signedIdentity({ hmac: { secret: 'x'.repeat(32) }, clock })).toThrow(
        /^signedIdentity: clock/,
      )
    }
  })
})
