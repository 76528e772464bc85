import { fakeClock } from '@tollgate/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiKeyIdentity } from '../identity/keys.js'
import { signedIdentity, signIdentity } from '../identity/signed.js'
import { redisKeyRegistry, redisNonceStore } from './index.js'

const url = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
const prefix = `tgtest-web-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`
const grant = { subject: { tenant: 'acme', user: 'u1' }, plan: 'pro', environment: 'staging' }

// a second process: its own connection and its own registry instances
const other = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true })
const bearer = (key: string) => new Request('http://x/', { headers: { authorization: `Bearer ${key}` } })

beforeAll(async () => {
  await client.connect()
  await other.connect()
})

afterAll(async () => {
  other.disconnect()
  const keys = await client.keys(`${prefix}*`)
  if (keys.length > 0) await client.del(...keys)
  client.disconnect()
})

describe('the options', () => {
  it('refuse a missing client and a prefix that is no string or holds a brace, when made (every call failed)', () => {
    for (const [make, who] of [
      [redisKeyRegistry, 'redisKeyRegistry'],
      [redisNonceStore, 'redisNonceStore'],
    ] as const) {
      expect(() => make(undefined as never)).toThrow(new RegExp(`^${who} needs \\{ client \\}`))
      expect(() => make({ client: {} as never })).toThrow(/client must be an ioredis client/)
      for (const prefix of [5, Object.create(null), 'app{x}:'])
        expect(() => make({ client, prefix } as never)).toThrow(/prefix must be a string without/)
      expect(() => make({ client, prefix: '' })).not.toThrow()
    }
  })
})

describe('redisKeyRegistry', () => {
  it('stores only the hash, and every instance sees a revocation at once', async () => {
    const one = redisKeyRegistry({ client, prefix })
    const two = redisKeyRegistry({ client: other, prefix })
    {
      const { key, keyId } = await one.issue(grant)
      const stored = await client.get(`${prefix}{${keyId}}:key`)
      expect(stored).not.toBeNull()
      expect(stored).not.toContain(key)
      expect(JSON.parse(stored!)).toMatchObject({ keyId, grant })

      const identify = apiKeyIdentity(two)
      const request = () => new Request('http://x/', { headers: { authorization: `Bearer ${key}` } })
      expect(await identify(request())).toMatchObject({
        ok: true,
        subject: { key: keyId, tenant: 'acme', user: 'u1' },
        attributes: { plan: 'pro', environment: 'staging' },
      })
      await one.revoke(keyId)
      expect(await two.verify(key)).toEqual({ status: 'revoked', keyId })
      expect(await identify(request())).toMatchObject({ ok: false, status: 403, code: 'key_revoked' })
      expect(await two.verify(`${key}0`)).toEqual({ status: 'unknown' })
    }
  })

  it('is one MGET per lookup (one round trip, Cluster-safe hash tags)', async () => {
    const calls: string[][] = []
    const spy = {
      mget: (...keys: string[]) => {
        calls.push(keys)
        return client.mget(...keys)
      },
      set: (key: string, value: string) => client.set(key, value),
      sadd: (key: string, ...members: string[]) => client.sadd(key, ...members),
      smembers: (key: string) => client.smembers(key),
    }
    const keys = redisKeyRegistry({ client: spy, prefix })
    const { key, keyId } = await keys.issue(grant)
    await keys.verify(key)
    expect(calls).toEqual([[`${prefix}{${keyId}}:key`, `${prefix}{${keyId}}:revoked`]])
  })
})

describe('redisKeyRegistry: expiry, rotation, listing', () => {
  it('refuses an expired key with 401 key_expired in every instance (fake clock)', async () => {
    const clock = fakeClock()
    const one = redisKeyRegistry({ client, prefix, clock })
    const two = redisKeyRegistry({ client: other, prefix, clock })
    const { key, keyId } = await one.issue(grant, { expiresAt: clock.now() + 30_000 })
    expect(JSON.parse((await client.get(`${prefix}{${keyId}}:key`))!)).toMatchObject({
      expiresAt: clock.now() + 30_000,
    })
    expect((await apiKeyIdentity(two)(bearer(key))).ok).toBe(true)
    clock.advance('30s')
    expect(await apiKeyIdentity(two)(bearer(key))).toMatchObject({
      ok: false,
      status: 401,
      code: 'key_expired',
    })
  })

  it('a rotation with bad options is refused before it claims the key (it held the key for a minute)', async () => {
    const keys = redisKeyRegistry({ client, prefix })
    const old = await keys.issue(grant)
    for (const options of [{ expiresAt: -1e300 }, { prefix: 'has space ' }]) {
      const error = await keys.rotate(old.keyId, options).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
    }
    const fresh = await keys.rotate(old.keyId)
    expect((await keys.find(old.keyId))?.rotatedTo).toBe(fresh.keyId)
  })

  it('two instances rotating one key at once: exactly one succeeds, no second live key', async () => {
    const one = redisKeyRegistry({ client, prefix })
    const two = redisKeyRegistry({ client: other, prefix })
    for (let round = 0; round < 20; round++) {
      const old = await one.issue(grant)
      const results = await Promise.allSettled([one.rotate(old.keyId), two.rotate(old.keyId)])
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []))
      expect(won).toHaveLength(1)
      expect(lost[0]).toMatch(/already being rotated|already rotated/)
      expect((await two.find(old.keyId))?.rotatedTo).toBe(won[0]!.keyId)
      const live = (await one.list({ tenant: 'acme' })).filter(
        (k) => k.status === 'active' && k.rotatedFrom === old.keyId,
      )
      expect(live.map((k) => k.keyId)).toEqual([won[0]!.keyId])
    }
  })

  it('a rotation whose writes come late, after another finished, fails and leaves no live key', async () => {
    // `two` reads the key before `one` rotates it, and writes only after `one` is done: without a
    // claim, both would succeed (each reads back its own rotation)
    let finished!: () => void
    const oneDone = new Promise<void>((resolve) => (finished = resolve))
    const late = {
      mget: (...keys: string[]) => other.mget(...keys),
      set: async (key: string, value: string, ...rest: unknown[]) => {
        await oneDone
        return (other.set as (...args: unknown[]) => Promise<unknown>)(key, value, ...rest)
      },
      sadd: (key: string, ...members: string[]) => other.sadd(key, ...members),
      smembers: (key: string) => other.smembers(key),
    }
    const one = redisKeyRegistry({ client, prefix })
    const two = redisKeyRegistry({ client: late, prefix })
    const old = await one.issue(grant)
    const second = two.rotate(old.keyId)
    const first = await one.rotate(old.keyId)
    finished()
    await expect(second).rejects.toThrow(/already being rotated/)
    expect((await one.find(old.keyId))?.rotatedTo).toBe(first.keyId)
    const live = (await one.list({ tenant: 'acme' })).filter(
      (k) => k.status === 'active' && k.rotatedFrom === old.keyId,
    )
    expect(live.map((k) => k.keyId)).toEqual([first.keyId])
  })

  it('rotates across instances: the old key works during the grace period, then 401 key_rotated', async () => {
    const clock = fakeClock()
    const one = redisKeyRegistry({ client, prefix, clock })
    const two = redisKeyRegistry({ client: other, prefix, clock })
    const old = await one.issue(grant)
    const fresh = await one.rotate(old.keyId, { graceMs: 60_000 })
    const identify = apiKeyIdentity(two)
    expect(await identify(bearer(fresh.key))).toMatchObject({
      ok: true,
      // the old key's id, kept through the rotation, in every process: per-key limits go on counting
      subject: { key: old.keyId, tenant: 'acme', user: 'u1' },
      attributes: { plan: 'pro', environment: 'staging' },
    })
    clock.advance(59_999)
    expect((await identify(bearer(old.key))).ok).toBe(true)
    clock.advance(1)
    expect(await identify(bearer(old.key))).toMatchObject({ ok: false, status: 401, code: 'key_rotated' })
    expect((await identify(bearer(fresh.key))).ok).toBe(true)
    // a revocation of the new key is seen by the other instance at once
    await one.revoke(fresh.keyId)
    expect(await identify(bearer(fresh.key))).toMatchObject({ ok: false, status: 403, code: 'key_revoked' })
  })

  it('lists by tenant and subject from another instance, without hashes or keys', async () => {
    const clock = fakeClock()
    const listPrefix = `${prefix}list:`
    const one = redisKeyRegistry({ client, prefix: listPrefix, clock })
    const two = redisKeyRegistry({ client: other, prefix: listPrefix, clock })
    const a = await one.issue({ subject: { tenant: 'acme', user: 'u1' }, plan: 'pro' })
    clock.advance(1)
    const b = await one.issue({ subject: { tenant: 'acme', user: 'u2' } }, { expiresAt: clock.now() + 5 })
    clock.advance(1)
    const c = await one.issue({ subject: { tenant: 'a:b', user: 'u1' } }) // ids with separators
    await one.revoke(a.keyId)
    clock.advance(5)
    expect((await two.list({ tenant: 'acme' })).map((k) => [k.keyId, k.status])).toEqual([
      [a.keyId, 'revoked'],
      [b.keyId, 'expired'],
    ])
    expect((await two.list({ subject: { user: 'u1' } })).map((k) => k.keyId)).toEqual([a.keyId, c.keyId])
    expect((await two.list({ tenant: 'a:b' })).map((k) => k.keyId)).toEqual([c.keyId])
    expect((await two.list({ tenant: 'acme', subject: { user: 'u2' } })).map((k) => k.keyId)).toEqual([
      b.keyId,
    ])
    expect(await two.list({ tenant: 'acme:u1' })).toEqual([])
    const all = await two.list()
    expect(all.map((k) => k.keyId)).toEqual([a.keyId, b.keyId, c.keyId])
    expect(all[0]).toEqual({
      keyId: a.keyId,
      grant: { subject: { tenant: 'acme', user: 'u1' }, plan: 'pro' },
      status: 'revoked',
      createdAt: clock.now() - 7,
    })
    const text = JSON.stringify(all)
    for (const { key } of [a, b, c]) expect(text).not.toContain(key)
    expect(text).not.toContain('hash')
  })
})

describe('redisNonceStore', () => {
  const secret = 'a-shared-secret-of-at-least-32-bytes!!'
  const assertion = { subject: { tenant: 'acme', user: 'u9' } }
  const request = (headers: Record<string, string>) => new Request('http://x/', { headers })

  it('refuses a header replayed to another process (SET NX PX under the prefix)', async () => {
    const clock = fakeClock()
    const nonces = `${prefix}nonces:`
    const processA = signedIdentity({
      hmac: { secret, nonces: redisNonceStore({ client, prefix: nonces }) },
      clock,
    })
    const processB = signedIdentity({
      hmac: { secret, nonces: redisNonceStore({ client: other, prefix: nonces }) },
      clock,
    })
    const headers = await signIdentity(assertion, {
      secret,
      now: clock.now() - 20_000,
      nonce: 'nonce-0123456789abcdef',
    })
    expect(await processA(request(headers))).toMatchObject({ ok: true, subject: assertion.subject })
    expect(await processB(request(headers))).toMatchObject({ ok: false, status: 401, message: /replay/ })
    expect(await processA(request(headers))).toMatchObject({ ok: false, message: /replay/ })
    // remembered under the prefix for as long as the timestamp is fresh: 60 s after it, 40 s from now
    const ttl = await client.pttl(`${nonces}nonce-0123456789abcdef`)
    expect(ttl).toBeGreaterThan(39_000)
    expect(ttl).toBeLessThanOrEqual(40_001)
    // a different nonce is accepted by either process
    const fresh = await signIdentity(assertion, { secret, now: clock.now() })
    expect((await processB(request(fresh))).ok).toBe(true)
  })

  it('a store failure throws (the web layer answers 503: identity fails closed)', async () => {
    const broken = redisNonceStore({ client: { set: () => Promise.reject(new Error('ECONNREFUSED')) } })
    await expect(Promise.resolve(broken.claim('nonce-0123456789abcdef', 1000))).rejects.toThrow(
      'ECONNREFUSED',
    )
  })
})
