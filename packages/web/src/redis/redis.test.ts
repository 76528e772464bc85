import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { apiKeyIdentity } from '../identity/keys.js'
import { redisKeyRegistry } from './index.js'

const url = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
const prefix = `tgtest-web-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`
const grant = { subject: { tenant: 'acme', user: 'u1' }, plan: 'pro', environment: 'staging' }

afterAll(async () => {
  const keys = await client.keys(`${prefix}*`)
  if (keys.length > 0) await client.del(...keys)
  client.disconnect()
})

describe('redisKeyRegistry', () => {
  it('stores only the hash, and every instance sees a revocation at once', async () => {
    await client.connect()
    const one = redisKeyRegistry({ client, prefix })
    // a second process: its own client and registry instance
    const other = new Redis(url, { maxRetriesPerRequest: 1 })
    const two = redisKeyRegistry({ client: other, prefix })
    try {
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
    } finally {
      other.disconnect()
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
    }
    const keys = redisKeyRegistry({ client: spy, prefix })
    const { key, keyId } = await keys.issue(grant)
    await keys.verify(key)
    expect(calls).toEqual([[`${prefix}{${keyId}}:key`, `${prefix}{${keyId}}:revoked`]])
  })
})
