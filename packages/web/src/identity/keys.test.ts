import { describe, expect, it } from 'vitest'
import { sha256, toHex } from './digest.js'
import { apiKeyIdentity, keyIdOf, keyRegistry, memoryKeyRegistry, type StoredKey } from './keys.js'

const grant = {
  subject: { tenant: 'acme', project: 'chatbot', user: 'owner-1' },
  plan: 'starter',
  environment: 'production',
  features: ['chat'],
  attributes: { region: 'eu' },
}
const bearer = (key: string, header = 'authorization') =>
  new Request('http://x/v1/chat', {
    headers: { [header]: header === 'authorization' ? `Bearer ${key}` : key },
  })

describe('memoryKeyRegistry', () => {
  it('issues random keys and stores only their SHA-256 hash', async () => {
    const records: StoredKey[] = []
    const keys = keyRegistry({ find: () => null, put: (r) => void records.push(r), revoke: () => undefined })
    const a = await keys.issue(grant)
    const b = await keys.issue(grant, { prefix: 'sk_live_' })
    expect(a.key).toMatch(/^tg_[A-Za-z0-9_-]{43}$/)
    expect(b.key.startsWith('sk_live_')).toBe(true)
    expect(a.key).not.toBe(b.key)
    expect(a.keyId).toBe(await keyIdOf(a.key))
    expect(records[0]).toMatchObject({ keyId: a.keyId, hash: toHex(await sha256(a.key)), grant })
    const stored = JSON.stringify(records)
    expect(stored).not.toContain(a.key)
    expect(stored).not.toContain(a.key.slice(3))
    // the id is not the stored hash, nor a part of it
    expect(records[0]!.hash).not.toContain(a.keyId.slice(4))
  })

  it('verifies a key to its grant; unknown, altered and revoked keys are refused', async () => {
    const keys = memoryKeyRegistry()
    const { key, keyId } = await keys.issue(grant)
    expect(await keys.verify(key)).toEqual({ status: 'active', keyId, grant })
    expect(await keys.verify(`${key}x`)).toEqual({ status: 'unknown' })
    expect(await keys.verify(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'))).toEqual({
      status: 'unknown',
    })
    expect(await keys.verify('')).toEqual({ status: 'unknown' })
    expect(await keys.verify('x'.repeat(10_000))).toEqual({ status: 'unknown' })
    await keys.revoke(keyId)
    expect(await keys.verify(key)).toEqual({ status: 'revoked', keyId })
  })

  it('refuses a record whose hash does not match, even under the right id', async () => {
    const keys = memoryKeyRegistry()
    const key = 'tg_imported_key_0123456789'
    const { keyId } = await keys.add(key, grant)
    await keys.put({ keyId, hash: toHex(await sha256('another key entirely')), grant, createdAt: 0 })
    expect(await keys.verify(key)).toEqual({ status: 'unknown' })
  })

  it('imports existing keys, refusing short ones', async () => {
    const keys = memoryKeyRegistry()
    await expect(keys.add('short', grant)).rejects.toThrow(/20 to 512/)
    const { keyId } = await keys.add('sk-legacy-0123456789abcdef', grant)
    expect(await keys.verify('sk-legacy-0123456789abcdef')).toMatchObject({ status: 'active', keyId })
  })
})

describe('apiKeyIdentity', () => {
  it('maps a key to its subject (with the key id) and attributes', async () => {
    const keys = memoryKeyRegistry()
    const { key, keyId } = await keys.issue(grant)
    expect(await apiKeyIdentity(keys)(bearer(key))).toEqual({
      ok: true,
      subject: { key: keyId, tenant: 'acme', project: 'chatbot', user: 'owner-1' },
      attributes: { region: 'eu', plan: 'starter', environment: 'production' },
      features: ['chat'],
    })
    const raw = apiKeyIdentity(keys, { header: 'x-api-key', keyDimension: false })
    expect(await raw(bearer(key, 'x-api-key'))).toMatchObject({ ok: true, subject: grant.subject })
  })

  it('refuses a missing key, a wrong scheme, an unknown key (401) and a revoked key (403)', async () => {
    const keys = memoryKeyRegistry()
    const { key, keyId } = await keys.issue(grant)
    const identify = apiKeyIdentity(keys)
    expect(await identify(new Request('http://x/'))).toMatchObject({
      ok: false,
      status: 401,
      code: 'unauthenticated',
    })
    const basic = new Request('http://x/', { headers: { authorization: `Basic ${key}` } })
    expect(await identify(basic)).toMatchObject({ ok: false, status: 401 })
    expect(await identify(bearer('tg_guessed_0000000000000000000000000000000000000'))).toMatchObject({
      ok: false,
      status: 401,
      message: 'Invalid API key.',
    })
    await keys.revoke(keyId)
    expect(await identify(bearer(key))).toMatchObject({ ok: false, status: 403, code: 'key_revoked' })
  })

  it('ignores forged identity headers: the subject comes from the key alone', async () => {
    const keys = memoryKeyRegistry()
    const { key } = await keys.issue(grant)
    const forged = new Request('http://x/', {
      headers: { authorization: `Bearer ${key}`, 'x-user-id': 'admin', 'x-tenant-id': 'victim' },
    })
    const identity = await apiKeyIdentity(keys)(forged)
    expect(identity).toMatchObject({ ok: true, subject: { tenant: 'acme', user: 'owner-1' } })
    const onlyForged = new Request('http://x/', {
      headers: { 'x-user-id': 'admin', 'x-tenant-id': 'victim' },
    })
    expect(await apiKeyIdentity(keys)(onlyForged)).toMatchObject({ ok: false, status: 401 })
  })
})
