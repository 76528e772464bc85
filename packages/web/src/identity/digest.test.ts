import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { equalDigests, sha256, toHex } from './digest.js'
import { keyRegistry, type StoredKey } from './keys.js'
import { signedIdentity, signIdentity } from './signed.js'

/**
 * `equalDigests` compares with Node's `timingSafeEqual` when `process.getBuiltinModule('node:crypto')`
 * gives it, else with its own constant-time loop (Workers, Vercel Edge, browsers). It looks the
 * function up on each call, so a test can take `node:crypto` away, as those runtimes do.
 */
const realGetBuiltinModule = process.getBuiltinModule

/** The two ways a runtime has no `node:crypto`: no `process.getBuiltinModule`, or no such module. */
const edges = {
  'no process.getBuiltinModule': () => {
    Object.defineProperty(process, 'getBuiltinModule', {
      value: undefined,
      configurable: true,
      writable: true,
    })
  },
  'getBuiltinModule without node:crypto': () => {
    vi.spyOn(process, 'getBuiltinModule').mockImplementation(((id: string) =>
      id === 'node:crypto' || id === 'crypto' ? undefined : realGetBuiltinModule(id)) as never)
  },
}
const runtimes = {
  'Node (timingSafeEqual)': () => undefined,
  ...edges,
}

afterEach(() => {
  vi.restoreAllMocks()
  Object.defineProperty(process, 'getBuiltinModule', {
    value: realGetBuiltinModule,
    configurable: true,
    writable: true,
  })
})

/** 32 distinct bytes, like a SHA-256 digest, and a copy with byte `at` changed by `xor`. */
const digest = () => Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)
const changed = (bytes: Uint8Array, at: number, xor = 0x01) => {
  const out = Uint8Array.from(bytes)
  out[at]! ^= xor
  return out
}
const positions = { first: 0, middle: 16, last: 31 }

describe('equalDigests: the compare path taken', () => {
  it('uses Node’s timingSafeEqual on the full digests when node:crypto is there', () => {
    const nodeCrypto = realGetBuiltinModule('node:crypto') as typeof import('node:crypto')
    expect(typeof nodeCrypto.timingSafeEqual).toBe('function')
    const timingSafeEqual = vi.fn(nodeCrypto.timingSafeEqual)
    vi.spyOn(process, 'getBuiltinModule').mockImplementation(((id: string) =>
      id === 'node:crypto' ? { timingSafeEqual } : realGetBuiltinModule(id)) as never)
    const a = digest()
    expect(equalDigests(a, changed(a, 31))).toBe(false)
    expect(timingSafeEqual).toHaveBeenCalledOnce()
    const [x, y] = timingSafeEqual.mock.calls[0]!
    expect([x.byteLength, y.byteLength]).toEqual([32, 32])
  })

  it('looks node:crypto up at each call, so the stubs below really take the fallback loop', () => {
    const timingSafeEqual = vi.fn(() => true)
    vi.spyOn(process, 'getBuiltinModule').mockImplementation(((id: string) =>
      id === 'node:crypto' ? { timingSafeEqual } : realGetBuiltinModule(id)) as never)
    expect(equalDigests(digest(), changed(digest(), 0))).toBe(true) // the stub answered
    edges['getBuiltinModule without node:crypto']()
    expect(equalDigests(digest(), changed(digest(), 0))).toBe(false) // the loop answered
    expect(process.getBuiltinModule).toHaveBeenCalledWith('node:crypto')
    expect(timingSafeEqual).toHaveBeenCalledOnce()
  })
})

for (const [runtime, setUp] of Object.entries(runtimes)) {
  describe(`equalDigests on ${runtime}`, () => {
    it('is true for equal digests, also separate copies', () => {
      setUp()
      const a = digest()
      expect(equalDigests(a, a)).toBe(true)
      expect(equalDigests(a, Uint8Array.from(a))).toBe(true)
      expect(equalDigests(new Uint8Array(32), new Uint8Array(32))).toBe(true)
      expect(equalDigests(new Uint8Array(0), new Uint8Array(0))).toBe(true)
    })

    for (const [where, at] of Object.entries(positions))
      it(`is false for digests that differ only in the ${where} byte (every byte is compared)`, () => {
        setUp()
        const a = digest()
        for (const xor of [0x01, 0x80, 0xff]) {
          expect(equalDigests(a, changed(a, at, xor)), `xor ${xor}`).toBe(false)
          expect(equalDigests(changed(a, at, xor), a), `xor ${xor}, swapped`).toBe(false)
        }
      })

    it('is false when only the last byte is equal, or only the first (a loop that kept one byte said true)', () => {
      setUp()
      const a = digest()
      const lastOnly = new Uint8Array(32)
      lastOnly[31] = a[31]!
      const firstOnly = new Uint8Array(32)
      firstOnly[0] = a[0]!
      expect(equalDigests(a, lastOnly)).toBe(false)
      expect(equalDigests(a, firstOnly)).toBe(false)
      // differences that cancel out if bytes were combined by anything but OR
      expect(equalDigests(Uint8Array.of(1, 2, 0), Uint8Array.of(2, 1, 0))).toBe(false)
      expect(equalDigests(Uint8Array.of(1, 1, 7), Uint8Array.of(0, 0, 7))).toBe(false)
    })

    it('is false for different lengths, even when one is a prefix of the other', () => {
      setUp()
      const a = digest()
      expect(equalDigests(a, a.subarray(0, 16))).toBe(false)
      expect(equalDigests(a.subarray(0, 31), a)).toBe(false)
      expect(equalDigests(a, new Uint8Array(0))).toBe(false)
    })

    it('any one changed byte of any digest makes it unequal (property)', () => {
      setUp()
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.nat(31),
          fc.integer({ min: 1, max: 255 }),
          (a, at, xor) => {
            expect(equalDigests(a, Uint8Array.from(a))).toBe(true)
            expect(equalDigests(a, changed(a, at, xor))).toBe(false)
          },
        ),
        { numRuns: 300 },
      )
    })

    describe('through its callers', () => {
      const secret = 'a-shared-secret-of-at-least-32-bytes!!'

      /** A signed identity header whose MAC (64 hex digits) has byte `at` changed. */
      const withMacByte = (signature: string, at: number) => {
        const mac = signature.slice(-64)
        const bytes = Uint8Array.from(mac.match(/../g)!, (h) => Number.parseInt(h, 16))
        return signature.slice(0, -64) + toHex(changed(bytes, at))
      }

      for (const [where, at] of Object.entries(positions))
        it(`an HMAC identity header with its ${where} MAC byte changed is refused (401)`, async () => {
          setUp()
          const identify = signedIdentity({ hmac: { secret } })
          const headers = await signIdentity({ subject: { tenant: 'victim', user: 'admin' } }, { secret })
          const forged = {
            ...headers,
            'x-tollgate-signature': withMacByte(headers['x-tollgate-signature']!, at),
          }
          expect(await identify(new Request('http://x/', { headers: forged }))).toEqual({
            ok: false,
            code: 'unauthenticated',
            status: 401,
            message: 'Invalid identity signature.',
          })
          // the untouched header is accepted: the refusal was the MAC's
          expect((await identify(new Request('http://x/', { headers }))).ok).toBe(true)
        })

      it('an HMAC identity header whose MAC is zeroed but for its last byte is refused', async () => {
        setUp()
        const identify = signedIdentity({ hmac: { secret } })
        const headers = await signIdentity({ subject: { tenant: 'victim', user: 'admin' } }, { secret })
        const signature = headers['x-tollgate-signature']!
        const forged = `${signature.slice(0, -64)}${'0'.repeat(62)}${signature.slice(-2)}`
        const answer = await identify(
          new Request('http://x/', { headers: { ...headers, 'x-tollgate-signature': forged } }),
        )
        expect(answer).toMatchObject({ ok: false, status: 401, message: 'Invalid identity signature.' })
      })

      for (const [where, at] of Object.entries(positions))
        it(`a key whose stored hash differs in its ${where} byte is unknown`, async () => {
          setUp()
          const records = new Map<string, StoredKey>()
          const keys = keyRegistry({
            find: (id) => records.get(id) ?? null,
            put: (record) => void records.set(record.keyId, record),
            revoke: () => undefined,
          })
          const key = 'sk-imported-0123456789abcdef'
          const { keyId } = await keys.add(key, { subject: { tenant: 'acme' } })
          expect(await keys.verify(key)).toMatchObject({ status: 'active', keyId })
          const record = records.get(keyId)!
          records.set(keyId, { ...record, hash: toHex(changed(await sha256(key), at)) })
          expect(await keys.verify(key)).toEqual({ status: 'unknown' })
        })
    })
  })
}
