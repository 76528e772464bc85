import { fakeClock } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { memoryNonceStore, NonceStoreFullError } from './nonces.js'

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
