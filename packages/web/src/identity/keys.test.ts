import { createTollgate, fakeClock, memoryStore } from '@tollgate/core'
import { replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
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
    expect(await keys.verify(key)).toEqual({ status: 'active', keyId, lineage: keyId, grant })
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

  it('a key of exactly 512 characters (the longest add takes) verifies; 513 is refused by add and unknown to verify', async () => {
    const keys = memoryKeyRegistry()
    const longest = `sk_${'a'.repeat(509)}`
    expect(longest).toHaveLength(512)
    const { keyId } = await keys.add(longest, grant)
    expect(await keys.verify(longest)).toEqual({ status: 'active', keyId, lineage: keyId, grant })
    expect(await apiKeyIdentity(keys)(bearer(longest))).toMatchObject({ ok: true, subject: { key: keyId } })
    expect((await apiKeyIdentity(keys, { header: 'x-api-key' })(bearer(longest, 'x-api-key'))).ok).toBe(true)
    const tooLong = `${longest}b`
    await expect(keys.add(tooLong, grant)).rejects.toThrow(/20 to 512/)
    // even a record stored under its id (by hand, or another version) is never looked at
    await keys.put({ keyId: await keyIdOf(tooLong), hash: toHex(await sha256(tooLong)), grant, createdAt: 0 })
    expect(await keys.verify(tooLong)).toEqual({ status: 'unknown' })
    // the shortest add takes verifies too
    const shortest = 'k'.repeat(20)
    await keys.add(shortest, grant)
    expect(await keys.verify(shortest)).toMatchObject({ status: 'active' })
  })

  it('refuses to import a key no header can carry (space, control, non-ASCII), and stores nothing', async () => {
    // each was stored and verified as active, yet every request with it over HTTP got 401
    const keys = memoryKeyRegistry()
    const bad = [
      'legacy key with spaces 0123',
      ' leadingspace-abcdefghijklmn',
      'trailingspace-abcdefghijklmn ',
      'tab\tinside-abcdefghijklmnopq',
      'newline-end-abcdefghijklmnop\n',
      'cr\rinside-abcdefghijklmnopqr',
      'nul\0inside-abcdefghijklmnopq',
      'del\x7finside-abcdefghijklmnopq',
      'clé-secrète-0123456789abc',
      'key-🔑-0123456789abcdefg',
      'zero\u200bwidth-abcdefghijklmnop',
      'nbsp\u00a0inside-abcdefghijklmno',
    ]
    for (const key of bad) {
      const error = await keys.add(key, grant).catch((e: unknown) => e)
      expect(error, JSON.stringify(key)).toBeInstanceOf(TypeError)
      expect((error as TypeError).message).toMatch(/printable ASCII/)
      expect((error as TypeError).message).not.toContain(key.trim()) // never echoes the secret
    }
    expect(await keys.list()).toEqual([])
    // every printable ASCII character but the space is fine, and works from either header
    const punctuated = `!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~09AZaz`
    await keys.add(punctuated, grant)
    for (const header of ['authorization', 'x-api-key'])
      expect((await apiKeyIdentity(keys, { header })(bearer(punctuated, header))).ok).toBe(true)
  })

  it('any key it imports can be presented in a header, and works (property)', async () => {
    const keys = memoryKeyRegistry()
    const identify = apiKeyIdentity(keys)
    const viaHeader = apiKeyIdentity(keys, { header: 'x-api-key' })
    const char = fc.oneof(
      { weight: 9, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    )
    await fc.assert(
      fc.asyncProperty(fc.array(char, { minLength: 20, maxLength: 40 }), async (chars) => {
        const key = chars.join('')
        const added = await keys.add(key, grant).then(
          () => true,
          () => false,
        )
        // accepted exactly when a header carries it as it is
        expect(added).toBe(/^[\x21-\x7e]+$/.test(key))
        if (!added) return
        expect((await identify(bearer(key))).ok).toBe(true)
        expect((await viaHeader(bearer(key, 'x-api-key'))).ok).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  it('refuses a grant no request could use, naming the part, and stores nothing', async () => {
    const keys = memoryKeyRegistry()
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    const bad: [unknown, RegExp][] = [
      [undefined, /the grant must be an object/],
      ['acme', /the grant must be an object/],
      [{}, /grant\.subject must be an object/],
      [{ subject: null }, /grant\.subject must be an object/],
      [{ subject: { tenant: 5 } }, /grant\.subject\.tenant must be a non-empty string/],
      [{ subject: { tenant: '' } }, /grant\.subject\.tenant must be/],
      [{ ...grant, plan: 3 }, /grant\.plan must be a non-empty string/],
      [{ ...grant, environment: '' }, /grant\.environment must be/],
      [{ ...grant, name: {} }, /grant\.name must be/],
      [{ ...grant, features: 'chat' }, /grant\.features must be a list/],
      [{ ...grant, features: ['chat', 1] }, /grant\.features must be a list/],
      [{ ...grant, attributes: ['eu'] }, /grant\.attributes must be an object/],
      [{ ...grant, attributes: { region: Number.NaN } }, /grant\.attributes\.region must be/],
      [{ ...grant, attributes: { region: cycle } }, /grant\.attributes\.region must be/],
      [{ ...grant, attributes: { region: [1] } }, /grant\.attributes\.region must be/],
    ]
    for (const [g, message] of bad) {
      await expect(keys.issue(g as never), String(message)).rejects.toThrow(message)
      await expect(keys.add('sk-legacy-0123456789abcdef', g as never)).rejects.toThrow(message)
    }
    expect(await keys.list()).toEqual([])
    // what KeyGrant allows is taken, down to a bare subject
    const fine = { ...grant, attributes: { region: 'eu', seats: 3, trial: false, tags: ['a'], none: null } }
    expect((await keys.issue(fine as never)).keyId).toMatch(/^key_/) // null: from JS or JSON
    expect((await keys.issue({ subject: {} })).keyId).toMatch(/^key_/)
    await expect(keys.rotate(5 as never)).rejects.toThrow(/rotate: keyId must be a key id/)
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

  it('reads "Authorization: Bearer <key>" only when the whole value is that: trailing text is a 401', async () => {
    const keys = memoryKeyRegistry()
    const { key } = await keys.issue(grant)
    const identify = apiKeyIdentity(keys)
    const as = (authorization: string) => identify(new Request('http://x/', { headers: { authorization } }))
    for (const value of [`Bearer ${key}`, `bearer ${key}`, `BEARER \t ${key}`, `Bearer  ${key}  `])
      expect((await as(value)).ok, JSON.stringify(value)).toBe(true)
    for (const value of [
      `Bearer ${key} junk`,
      `Bearer ${key}\tjunk`,
      `Bearer ${key} ${key}`,
      `Bearer ${key},Bearer other`,
      `Bearer${key}`,
      `Token ${key}`,
      `${key}`,
      'Bearer',
    ])
      expect(await as(value), JSON.stringify(value)).toMatchObject({
        ok: false,
        status: 401,
        code: 'unauthenticated',
      })
    // a key another header carries is its whole (trimmed) value, a Bearer prefix included
    const raw = apiKeyIdentity(keys, { header: 'x-api-key' })
    expect((await raw(bearer(key, 'x-api-key'))).ok).toBe(true)
    expect(await raw(bearer(`Bearer ${key}`, 'x-api-key'))).toMatchObject({ ok: false, status: 401 })
  })

  it('the header option names authorization in any case: the Bearer scheme is still read', async () => {
    const keys = memoryKeyRegistry()
    const { key, keyId } = await keys.issue(grant)
    for (const header of ['Authorization', 'AUTHORIZATION', 'authorization']) {
      const identify = apiKeyIdentity(keys, { header })
      expect(await identify(bearer(key)), header).toMatchObject({ ok: true, subject: { key: keyId } })
      // the raw key without the scheme is no credential in authorization, whatever the option's case
      const bare = new Request('http://x/', { headers: { authorization: key } })
      expect(await identify(bare), header).toMatchObject({
        ok: false,
        status: 401,
        message: 'Missing API key: send it as "Authorization: Bearer <key>".',
      })
    }
  })

  it("a grant's own value for the key dimension wins over the key's id", async () => {
    const keys = memoryKeyRegistry({ clock: fakeClock() })
    const shared = { subject: { tenant: 'acme', key: 'shared-ci' } }
    const a = await keys.issue(shared)
    const b = await keys.issue(shared)
    const identify = apiKeyIdentity(keys)
    for (const { key } of [a, b])
      expect(await identify(bearer(key))).toEqual({
        ok: true,
        subject: { tenant: 'acme', key: 'shared-ci' },
        attributes: {},
      })
    // also under a dimension of another name, and for a rotated key
    const owner = await keys.issue({ subject: { tenant: 'acme', owner: 'team-7' } })
    const byOwner = apiKeyIdentity(keys, { keyDimension: 'owner' })
    expect(await byOwner(bearer(owner.key))).toMatchObject({ subject: { tenant: 'acme', owner: 'team-7' } })
    expect(await byOwner(bearer(a.key))).toMatchObject({
      subject: { tenant: 'acme', key: 'shared-ci', owner: a.keyId },
    })
    const rotated = await keys.rotate(a.keyId)
    expect(await identify(bearer(rotated.key))).toMatchObject({
      subject: { tenant: 'acme', key: 'shared-ci' },
    })
  })

  it('refuses, when it is made, a registry without verify, a header name no request can carry and a bad dimension', () => {
    const keys = memoryKeyRegistry()
    expect(() => apiKeyIdentity(undefined as never)).toThrow(/^apiKeyIdentity: registry must have a verify/)
    for (const header of ['', 'x api key', 'x-key:', 'clé'])
      expect(() => apiKeyIdentity(keys, { header }), header).toThrow(
        /^apiKeyIdentity: header must be a header name/,
      )
    for (const keyDimension of ['', 5, true])
      expect(() => apiKeyIdentity(keys, { keyDimension: keyDimension as never })).toThrow(
        /^apiKeyIdentity: keyDimension must be/,
      )
    expect(() => apiKeyIdentity(keys, { header: 'X-API-Key', keyDimension: false })).not.toThrow()
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

describe('expiry, rotation and listing (memory)', () => {
  it('refuses an expired key with 401 key_expired (fake clock)', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const { key, keyId } = await keys.issue(grant, { expiresAt: clock.now() + 60_000 })
    const identify = apiKeyIdentity(keys)
    expect(await keys.verify(key)).toEqual({
      status: 'active',
      keyId,
      lineage: keyId,
      grant,
      expiresAt: clock.now() + 60_000,
    })
    expect((await identify(bearer(key))).ok).toBe(true)
    clock.advance(59_999)
    expect((await identify(bearer(key))).ok).toBe(true)
    clock.advance(1)
    expect(await keys.verify(key)).toEqual({ status: 'expired', keyId, expiresAt: clock.now() })
    expect(await identify(bearer(key))).toEqual({
      ok: false,
      status: 401,
      code: 'key_expired',
      message: 'This API key expired at 2026-01-05T00:01:00.000Z.',
    })
    const imported = await keys.add('sk-legacy-0123456789abcdef', grant, { expiresAt: new Date(clock.now()) })
    expect(await keys.verify('sk-legacy-0123456789abcdef')).toMatchObject({
      status: 'expired',
      keyId: imported.keyId,
    })
    await expect(keys.issue(grant, { expiresAt: Number.NaN })).rejects.toThrow(TypeError)
  })

  it('refuses an expiry no Date can hold, and a stored one does not break the refusal (it threw a RangeError)', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    for (const expiresAt of [-1e300, 1e300, 8.64e15 + 1, '1e3' as never]) {
      const error = await keys.issue(grant, { expiresAt }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as TypeError).message).toBe('expiresAt is a Date or ms since epoch')
    }
    // a record written by another version, or by hand, with such a time
    const key = 'sk-stored-0123456789abcdef'
    const { keyId } = await keys.add(key, grant)
    const record = (await keys.find(keyId))!
    await keys.put({ ...record, expiresAt: -1e300 })
    expect(await apiKeyIdentity(keys)(bearer(key))).toEqual({
      ok: false,
      status: 401,
      code: 'key_expired',
      message: 'This API key expired at -1e+300 ms.',
    })
    // options a JavaScript caller gave as null are no options
    const made = await keys.issue(grant, null as never)
    expect(made.key).toMatch(/^tg_/)
    expect((await apiKeyIdentity(keys, null as never)(bearer(made.key))).ok).toBe(true)
  })

  it('refuses a key prefix a header cannot carry whole (such keys could never be presented)', async () => {
    const keys = memoryKeyRegistry()
    for (const prefix of ['my key ', 'a\nb', 'clé_', 'x'.repeat(65), 5 as never]) {
      const error = await keys.issue(grant, { prefix }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as TypeError).message).toMatch(/^a key prefix is 0 to 64 letters/)
    }
    for (const prefix of ['', 'sk_live_', 'a.b~c-d']) {
      const { key } = await keys.issue(grant, { prefix })
      expect((await apiKeyIdentity(keys)(bearer(key))).ok).toBe(true)
    }
  })

  it('rotates: the new key has the same grant; the old one works for the grace period, then 401 key_rotated', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const old = await keys.issue(grant)
    const identify = apiKeyIdentity(keys)
    const fresh = await keys.rotate(old.keyId, { graceMs: 3_600_000 })
    expect(fresh.key).not.toBe(old.key)
    expect(fresh.graceUntil).toBe(clock.now() + 3_600_000)
    // the new key counts under the old key's id: per-key limits go on counting across a rotation
    expect(await keys.verify(fresh.key)).toEqual({
      status: 'active',
      keyId: fresh.keyId,
      lineage: old.keyId,
      grant,
    })
    expect(await identify(bearer(fresh.key))).toMatchObject({
      ok: true,
      subject: { key: old.keyId, ...grant.subject },
      attributes: { region: 'eu', plan: 'starter', environment: 'production' },
      features: ['chat'],
    })
    // the old key still works during the grace period, and says what replaced it
    expect(await keys.verify(old.key)).toEqual({
      status: 'active',
      keyId: old.keyId,
      lineage: old.keyId,
      grant,
      rotatedTo: fresh.keyId,
      graceUntil: fresh.graceUntil,
    })
    clock.advance(3_599_999)
    expect((await identify(bearer(old.key))).ok).toBe(true)
    clock.advance(1)
    expect(await identify(bearer(old.key))).toMatchObject({ ok: false, status: 401, code: 'key_rotated' })
    expect((await identify(bearer(fresh.key))).ok).toBe(true)

    // only an active, not yet rotated key can be rotated
    await expect(keys.rotate(old.keyId)).rejects.toThrow(/is rotated/)
    await expect(keys.rotate('key_unknown')).rejects.toThrow(/no key/)
    const third = await keys.rotate(fresh.keyId) // default grace: 24 h
    expect(third.graceUntil).toBe(clock.now() + 86_400_000)
    await expect(keys.rotate(fresh.keyId)).rejects.toThrow(/already rotated/)
    await keys.revoke(third.keyId)
    await expect(keys.rotate(third.keyId)).rejects.toThrow(/is revoked/)
  })

  it('a rotation does not reset per-key limits: old and new key count as one', async () => {
    // the new key's own id started its per-key counters at zero: rotating reset a per-key quota
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const gate = createTollgate({
      policy: { rules: [{ id: 'key-day', per: 'key', limits: { requests: 3 }, window: 'day' }] },
      store: memoryStore({ clock }),
    })
    const identify = apiKeyIdentity(keys)
    const call = async (key: string) => {
      const who = await identify(bearer(key))
      if (!who.ok) throw new Error('not identified')
      return (await gate.reserve({ subject: who.subject })).allowed
    }
    const old = await keys.issue(grant)
    expect([await call(old.key), await call(old.key)]).toEqual([true, true])
    const fresh = await keys.rotate(old.keyId)
    expect([await call(fresh.key), await call(fresh.key), await call(old.key)]).toEqual([true, false, false])
    const third = await keys.rotate(fresh.keyId)
    expect(await call(third.key)).toBe(false)
  })

  it('rotation with graceMs 0 refuses the old key at once; the new key keeps the old expiry unless told', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const expiresAt = clock.now() + 86_400_000
    const old = await keys.issue(grant, { expiresAt })
    const fresh = await keys.rotate(old.keyId, { graceMs: 0 })
    expect(await keys.verify(old.key)).toMatchObject({ status: 'rotated', rotatedTo: fresh.keyId })
    expect(await keys.verify(fresh.key)).toMatchObject({ status: 'active', expiresAt })
    const longer = await keys.rotate(fresh.keyId, { expiresAt: null, prefix: 'sk_' })
    expect(longer.key.startsWith('sk_')).toBe(true)
    // a key rotated twice still counts under the first key's id
    expect(await keys.verify(longer.key)).toEqual({
      status: 'active',
      keyId: longer.keyId,
      lineage: old.keyId,
      grant,
    })
  })

  it('concurrent rotations of one key: exactly one succeeds, the other issues no live key', async () => {
    const keys = memoryKeyRegistry({ clock: fakeClock() })
    const old = await keys.issue(grant)
    const results = await Promise.allSettled([keys.rotate(old.keyId), keys.rotate(old.keyId)])
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []))
    expect(won).toHaveLength(1)
    expect(lost).toHaveLength(1)
    expect(lost[0]!.message).toMatch(/already being rotated|already rotated/)
    expect((await keys.find(old.keyId))?.rotatedTo).toBe(won[0]!.keyId)
    const live = (await keys.list()).filter((k) => k.status === 'active' && k.rotatedFrom === old.keyId)
    expect(live.map((k) => k.keyId)).toEqual([won[0]!.keyId])
  })

  it('a revoked old key stays revoked (403) during the grace period', async () => {
    const keys = memoryKeyRegistry({ clock: fakeClock() })
    const old = await keys.issue(grant)
    await keys.rotate(old.keyId)
    await keys.revoke(old.keyId)
    expect(await apiKeyIdentity(keys)(bearer(old.key))).toMatchObject({ status: 403, code: 'key_revoked' })
  })

  it('a key both revoked and expired (or past its grace) answers revoked: 403 key_revoked, listed as revoked', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const identify = apiKeyIdentity(keys)
    const expiring = await keys.issue(grant, { expiresAt: clock.now() + 1000 })
    clock.advance(1)
    const rotating = await keys.issue(grant)
    clock.advance(1)
    const replacement = await keys.rotate(rotating.keyId, { graceMs: 1000 })
    await keys.revoke(expiring.keyId)
    await keys.revoke(rotating.keyId)
    clock.advance(5000)
    for (const { key, keyId } of [expiring, rotating]) {
      expect(await keys.verify(key)).toEqual({ status: 'revoked', keyId })
      expect(await identify(bearer(key))).toEqual({
        ok: false,
        code: 'key_revoked',
        status: 403,
        message: 'This API key has been revoked.',
      })
    }
    expect((await keys.list()).map((k) => [k.keyId, k.status])).toEqual([
      [expiring.keyId, 'revoked'],
      [rotating.keyId, 'revoked'],
      [replacement.keyId, 'active'],
    ])
    // expired and past its grace, not revoked: expired
    const both = await keys.issue(grant, { expiresAt: clock.now() + 1000 })
    await keys.rotate(both.keyId, { graceMs: 10 })
    clock.advance(1000)
    expect(await keys.verify(both.key)).toMatchObject({ status: 'expired', keyId: both.keyId })
  })

  it('a key revoked while it is being rotated leaves no live replacement: rotate throws, the new key is revoked', async () => {
    // another process revokes the old key between this rotation's writes (a storage without claims)
    const records = new Map<string, StoredKey>()
    const revoked = new Set<string>()
    let target: string | undefined
    const keys = keyRegistry(
      {
        find: (id) => {
          const record = records.get(id)
          return record ? { ...record, revoked: revoked.has(id) } : null
        },
        put: (record) => {
          const { revoked: _, ...rest } = record
          records.set(record.keyId, rest)
          if (target !== undefined && record.rotatedFrom === target) revoked.add(target)
        },
        revoke: (id) => void revoked.add(id),
        scan: () => Array.from(records.values(), (r) => ({ ...r, revoked: revoked.has(r.keyId) })),
      },
      { clock: fakeClock() },
    )
    const old = await keys.issue(grant)
    target = old.keyId
    await expect(keys.rotate(old.keyId)).rejects.toThrow(
      `rotate: key ${old.keyId} was revoked during the rotation`,
    )
    const made = [...records.values()].filter((r) => r.rotatedFrom === old.keyId)
    expect(made).toHaveLength(1)
    const newKeyId = made[0]!.keyId
    expect(revoked.has(newKeyId)).toBe(true)
    expect(await keys.verify(old.key)).toEqual({ status: 'revoked', keyId: old.keyId })
    expect((await keys.list()).filter((k) => k.status === 'active')).toEqual([])
  })

  it('lists keys by tenant or subject with their state, never hashes or keys', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const a = await keys.issue(grant, { expiresAt: clock.now() + 1000 })
    clock.advance(1)
    const b = await keys.issue({ ...grant, subject: { ...grant.subject, user: 'owner-2' }, name: 'CI' })
    clock.advance(1)
    const c = await keys.issue({ subject: { tenant: 'other', user: 'owner-1' } })
    await keys.revoke(b.keyId)
    clock.advance(1000)
    const listed = await keys.list({ tenant: 'acme' })
    expect(listed.map((k) => [k.keyId, k.status])).toEqual([
      [a.keyId, 'expired'],
      [b.keyId, 'revoked'],
    ])
    expect(listed[1]).toEqual({
      keyId: b.keyId,
      grant: { ...grant, subject: { ...grant.subject, user: 'owner-2' }, name: 'CI' },
      status: 'revoked',
      createdAt: clock.now() - 1001,
    })
    expect((await keys.list({ subject: { user: 'owner-1' } })).map((k) => k.keyId)).toEqual([
      a.keyId,
      c.keyId,
    ])
    expect((await keys.list({ tenant: 'acme', subject: { user: 'owner-1' } })).map((k) => k.keyId)).toEqual([
      a.keyId,
    ])
    expect(await keys.list({ tenant: 'nobody' })).toEqual([])
    const all = await keys.list()
    expect(all).toHaveLength(3)
    const text = JSON.stringify(all)
    for (const { key } of [a, b, c]) expect(text).not.toContain(key)
    expect(text).not.toContain(toHex(await sha256(a.key)))
    expect(text).not.toContain('"hash"')

    const rotated = await keys.rotate(c.keyId, { graceMs: 10 })
    clock.advance(10)
    expect(await keys.list({ tenant: 'other' })).toMatchObject([
      { keyId: c.keyId, status: 'rotated', rotatedTo: rotated.keyId, graceUntil: clock.now() },
      { keyId: rotated.keyId, status: 'active', rotatedFrom: c.keyId },
    ])
    const noScan = keyRegistry({ find: () => null, put: () => undefined, revoke: () => undefined })
    await expect(noScan.list()).rejects.toThrow(/scan/)
  })
})

describe('hostile grants and options (property)', () => {
  const anything = fc.anything({
    maxDepth: 2,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withNullPrototype: true,
    withBoxedValues: true,
    withSparseArray: true,
  })
  const realistic = {
    grant: {
      subject: { tenant: 't', user: 'u' },
      plan: 'pro',
      attributes: { env: 'prod' },
      features: ['chat'],
    },
    options: { expiresAt: Date.parse('2026-02-01T00:00:00Z'), graceMs: 1000, prefix: 'sk_' },
  }

  it('any value anywhere in a grant or its options: refused with a TypeError, or a key that answers', async () => {
    const clock = fakeClock()
    const keys = memoryKeyRegistry({ clock })
    const identify = apiKeyIdentity(keys)
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(6), { minLength: 1, maxLength: 4 }), anything, async (at, value) => {
        const { grant, options } = replaceAt(realistic, at, value) as typeof realistic
        let issued: { key: string; keyId: string }
        try {
          issued = await keys.issue(grant as never, options as never)
        } catch (error) {
          return error instanceof TypeError && !/Cannot (read|convert)|is not a/.test(error.message)
        }
        // identify answers (never throws), and admits a key that is active; rotate works or says why
        const answer = await identify(bearer(issued.key))
        if ((await keys.verify(issued.key)).status === 'active' && !answer.ok) return false
        const rotated = await keys.rotate(issued.keyId, options as never).then(
          () => true,
          (error: unknown) => error instanceof Error && !/Cannot (read|convert)|is not a/.test(error.message),
        )
        return typeof answer.ok === 'boolean' && rotated
      }),
      { numRuns: 1000 },
    )
  })
})
