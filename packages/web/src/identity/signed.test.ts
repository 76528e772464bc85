import { createHmac } from 'node:crypto'
import { fakeClock } from '@tollgate/core/testing'
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { handleRequest } from '../request.js'
import { testGate } from '../test/fixtures.js'
import type { NonceStore } from './nonces.js'
import { type Assertion, type SignIdentityOptions, signedIdentity, signIdentity } from './signed.js'
import type { Identify } from './types.js'

const secret = 'a-shared-secret-of-at-least-32-bytes!!'
const clock = fakeClock('2026-01-05T00:00:00Z')
const nowSec = () => Math.floor(clock.now() / 1000)
const claims: JWTPayload = {
  sub: 'u1',
  org: 'acme',
  plan: 'pro',
  features: ['chat'],
  iss: 'auth',
  aud: 'tollgate',
}

const hs256 = (payload: JWTPayload = claims, key = secret, ttl = 300) =>
  new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(nowSec())
    .setExpirationTime(nowSec() + ttl)
    .sign(new TextEncoder().encode(key))
const asBearer = (token: string) =>
  new Request('http://x/', { headers: { authorization: `Bearer ${token}` } })
const call = (identify: Identify, token: string) => identify(asBearer(token))

describe('signedIdentity: JWT', () => {
  const identify = signedIdentity({ jwt: { secret, issuer: 'auth', audience: 'tollgate' }, clock })

  it('accepts a valid HS256 token and maps its claims', async () => {
    expect(await call(identify, await hs256())).toEqual({
      ok: true,
      subject: { user: 'u1', org: 'acme' },
      attributes: { plan: 'pro' },
      features: ['chat'],
    })
  })

  it('reads a features claim that is no list as allowing no feature, never as every feature', async () => {
    for (const features of ['chat', { chat: true }, 1, null]) {
      expect(await call(identify, await hs256({ ...claims, features }))).toMatchObject({
        ok: true,
        features: [],
      })
    }
    const { features: _, ...without } = claims
    expect(await call(identify, await hs256(without))).not.toHaveProperty('features')
    // entries that are no feature name are left out of a list
    expect(await call(identify, await hs256({ ...claims, features: ['chat', '', 1] }))).toMatchObject({
      ok: true,
      features: ['chat'],
    })
  })

  it('refuses with 401, naming the field, what a claims mapping returns with malformed features or attributes', async () => {
    const mapped = (extra: Record<string, unknown>) =>
      signedIdentity({
        jwt: { secret, claims: (p) => ({ subject: { user: String(p.sub) }, ...extra }) as never },
        clock,
      })
    expect(await call(mapped({ features: 'chat' }), await hs256())).toMatchObject({
      ok: false,
      status: 401,
      message: /features must be a list of non-empty strings/,
    })
    expect(await call(mapped({ attributes: { plan: ['a', 1] } }), await hs256())).toMatchObject({
      ok: false,
      status: 401,
      message: /attributes\.plan must be/,
    })
    // a claim that is missing maps to an undefined attribute: absent, as before
    expect(await call(mapped({ attributes: { plan: undefined } }), await hs256())).toMatchObject({ ok: true })
  })

  it('refuses a tampered token, a wrong secret, and "alg: none"', async () => {
    const token = await hs256()
    const [header, payload, signature] = token.split('.')
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'admin', exp: nowSec() + 300 })).toString(
      'base64url',
    )
    expect(await call(identify, `${header}.${forged}.${signature}`)).toMatchObject({
      ok: false,
      status: 401,
      message: 'Invalid identity token (ERR_JWS_SIGNATURE_VERIFICATION_FAILED).',
    })
    expect(await call(identify, await hs256(claims, 'another secret of the same kind....'))).toMatchObject({
      ok: false,
      status: 401,
    })
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    expect(await call(identify, `${none}.${payload}.`)).toMatchObject({ ok: false, status: 401 })
    expect(await call(identify, 'not-a-jwt')).toMatchObject({ ok: false, status: 401 })
    expect(await identify(new Request('http://x/'))).toMatchObject({ ok: false, status: 401 })
  })

  it('refuses an expired token (fake clock), a token without exp, wrong issuer or audience, no sub', async () => {
    const token = await hs256(claims, secret, 60)
    expect((await call(identify, token)).ok).toBe(true)
    clock.advance('66s') // past exp and the 5 s tolerance
    expect(await call(identify, token)).toMatchObject({
      ok: false,
      status: 401,
      message: 'The identity token has expired.',
    })
    const noExp = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret))
    expect(await call(identify, noExp)).toMatchObject({ ok: false, status: 401 })
    expect(await call(identify, await hs256({ ...claims, iss: 'evil' }))).toMatchObject({
      ok: false,
      status: 401,
    })
    expect(await call(identify, await hs256({ ...claims, aud: 'other' }))).toMatchObject({
      ok: false,
      status: 401,
    })
    const { sub: _, ...anonymous } = claims
    expect(await call(identify, await hs256(anonymous))).toMatchObject({
      ok: false,
      status: 401,
      message: 'The identity assertion names no subject.',
    })
  })

  describe('RS256', () => {
    let keys: Awaited<ReturnType<typeof generateKeyPair>>
    let other: Awaited<ReturnType<typeof generateKeyPair>>
    beforeAll(async () => {
      keys = await generateKeyPair('RS256', { extractable: true })
      other = await generateKeyPair('RS256', { extractable: true })
    })
    const rs256 = (key: CryptoKey, kid?: string) =>
      new SignJWT(claims)
        .setProtectedHeader(kid ? { alg: 'RS256', kid } : { alg: 'RS256' })
        .setExpirationTime(nowSec() + 60)
        .sign(key)

    it('verifies with a PEM public key; refuses another key and an HS256 token signed with the PEM', async () => {
      const pem = await exportSPKI(keys.publicKey)
      const identify = signedIdentity({ jwt: { publicKey: pem }, clock })
      expect(await call(identify, await rs256(keys.privateKey))).toMatchObject({
        ok: true,
        subject: { user: 'u1' },
      })
      expect(await call(identify, await rs256(other.privateKey))).toMatchObject({ ok: false, status: 401 })
      // algorithm confusion: the public key used as an HMAC secret
      expect(await call(identify, await hs256(claims, pem))).toMatchObject({ ok: false, status: 401 })
    })

    it('verifies with a local JWKS, picking the key by kid', async () => {
      const jwks = {
        keys: [
          { ...(await exportJWK(other.publicKey)), kid: 'old', alg: 'RS256' },
          { ...(await exportJWK(keys.publicKey)), kid: 'current', alg: 'RS256' },
        ],
      }
      const identify = signedIdentity({ jwt: { jwks }, clock })
      expect((await call(identify, await rs256(keys.privateKey, 'current'))).ok).toBe(true)
      expect((await call(identify, await rs256(other.privateKey, 'old'))).ok).toBe(true)
      expect(await call(identify, await rs256(other.privateKey, 'current'))).toMatchObject({
        ok: false,
        status: 401,
      })
      expect(await call(identify, await rs256(keys.privateKey, 'unknown'))).toMatchObject({
        ok: false,
        status: 401,
      })
    })
  })

  it('needs exactly one key and one mode', () => {
    // the type refuses these too (index.test-d.ts); a JavaScript caller gets a TypeError
    expect(() => signedIdentity({ jwt: {} as never })).toThrow(/exactly one/)
    expect(() => signedIdentity({ jwt: { secret, jwks: { keys: [] } } as never })).toThrow(/exactly one/)
    expect(() => signedIdentity({} as never)).toThrow(/exactly one/)
    expect(() => signedIdentity(undefined as never)).toThrow(/exactly one/)
    // jose refused these on every request (a TypeError out of each): refused once, up front
    expect(() => signedIdentity({ jwt: { secret, algorithms: 'HS256' as never } })).toThrow(
      /algorithms is a list/,
    )
    expect(() => signedIdentity({ jwt: { secret, issuer: 5 as never } })).toThrow(/issuer is a string/)
    expect(() => signedIdentity({ jwt: { secret, audience: [1] as never } })).toThrow(/audience is a string/)
    expect(() => signedIdentity({ jwt: { secret, claims: {} as never } })).toThrow(/claims is a function/)
    // jose refuses these on every request instead (each request failing): refused once, up front
    for (const clockTolerance of [
      Number.NaN,
      -1,
      Number.POSITIVE_INFINITY,
      '1h' as never,
      Object.create(null),
    ])
      expect(() => signedIdentity({ jwt: { secret, clockTolerance } })).toThrow(/clockTolerance is a number/)
  })

  it('refuses short shared secrets and header names no request can carry, when it is made', async () => {
    // a short HMAC secret can be guessed offline from one captured header or token, and then forged
    for (const short of ['x', 'x'.repeat(31), new Uint8Array(16)]) {
      expect(() => signedIdentity({ hmac: { secret: short } })).toThrow(/secret must be at least 32 bytes/)
      expect(() => signedIdentity({ jwt: { secret: short } })).toThrow(/secret must be at least 32 bytes/)
      await expect(signIdentity({ subject: { user: 'u' } }, { secret: short })).rejects.toBeInstanceOf(
        TypeError,
      )
    }
    expect(() => signedIdentity({ hmac: { secret: 'é'.repeat(16) } })).not.toThrow() // 32 bytes of UTF-8
    for (const header of ['', 'x identity', 'x:id', 'naïve'])
      for (const options of [
        { jwt: { secret, header } },
        { hmac: { secret, header } },
        { hmac: { secret, signatureHeader: header } },
      ])
        expect(() => signedIdentity(options), `${JSON.stringify(options)}`).toThrow(/must be a header name/)
  })
})

/** Headers signed as an upstream of its own would sign them: any JSON, no checks. */
function foreignSigned(body: unknown, at: number, nonce: string): Record<string, string> {
  const value = Buffer.from(JSON.stringify(body)).toString('base64url')
  const mac = createHmac('sha256', secret).update(`${at}.${nonce}.${value}`).digest('hex')
  return { 'x-tollgate-identity': value, 'x-tollgate-signature': `t=${at},n=${nonce},v1=${mac}` }
}

describe('signedIdentity: HMAC header', () => {
  const hmacClock = fakeClock('2026-01-05T00:00:00Z')
  const assertion = { subject: { tenant: 'acme', user: 'u9' }, attributes: { plan: 'pro' } }
  const request = (headers: Record<string, string>) => new Request('http://x/', { headers })
  const sign = (a: Assertion = assertion, extra: Partial<SignIdentityOptions> = {}) =>
    signIdentity(a, { secret, now: hmacClock.now(), ...extra })

  it('accepts a fresh signature and refuses tampered, stale, future and foreign ones', async () => {
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    const headers = await sign()
    expect(headers['x-tollgate-signature']).toMatch(/^t=\d+,n=[A-Za-z0-9_-]{22},v1=[0-9a-f]{64}$/)
    expect(await identify(request(headers))).toEqual({ ok: true, ...assertion })

    const other = await signIdentity(
      { subject: { tenant: 'victim', user: 'u9' } },
      { secret: 'another-shared-secret-of-32-bytes-or-more', now: hmacClock.now() },
    )
    const swapped = { ...headers, 'x-tollgate-identity': other['x-tollgate-identity']! }
    expect(await identify(request(swapped))).toMatchObject({
      ok: false,
      status: 401,
      message: 'Invalid identity signature.',
    })
    expect(await identify(request(other))).toMatchObject({ ok: false, status: 401 })

    const fresh = await sign()
    const signature = fresh['x-tollgate-signature']!
    const retimed = signature.replace(/t=\d+/, `t=${hmacClock.now() + 1}`)
    expect(await identify(request({ ...fresh, 'x-tollgate-signature': retimed }))).toMatchObject({
      ok: false,
      message: 'Invalid identity signature.',
    })
    // a new nonce under the old MAC: the nonce is signed too
    const renonced = signature.replace(/n=[^,]+/, 'n=AAAAAAAAAAAAAAAAAAAAAA')
    expect(await identify(request({ ...fresh, 'x-tollgate-signature': renonced }))).toMatchObject({
      ok: false,
      message: 'Invalid identity signature.',
    })
    // the untampered one was not burnt by the failed attempts
    expect((await identify(request(fresh))).ok).toBe(true)

    expect(await identify(request({ 'x-tollgate-identity': headers['x-tollgate-identity']! }))).toMatchObject(
      { ok: false, status: 401 },
    )
    expect(await identify(request({ ...headers, 'x-tollgate-signature': 'v1=abc' }))).toMatchObject({
      ok: false,
      message: 'Malformed identity signature.',
    })
  })

  it('refuses a stale timestamp (default window ±60 s) and one from the future', async () => {
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    const headers = await sign()
    hmacClock.advance('60001ms') // one ms past the window, never used before: stale all the same
    expect(await identify(request(headers))).toMatchObject({ ok: false, status: 401, message: /too old/ })
    const edge = await sign(assertion, { now: hmacClock.now() - 60_000 })
    expect((await identify(request(edge))).ok).toBe(true) // exactly 60 s old is still inside
    const future = await sign(assertion, { now: hmacClock.now() + 60_001 })
    expect(await identify(request(future))).toMatchObject({ ok: false, status: 401, message: /future/ })
    const near = await sign(assertion, { now: hmacClock.now() + 59_000 })
    expect((await identify(request(near))).ok).toBe(true)

    const strict = signedIdentity({ hmac: { secret, maxAgeMs: 5_000 }, clock: hmacClock })
    const five = await sign()
    hmacClock.advance('5001ms')
    expect(await strict(request(five))).toMatchObject({ ok: false, message: /too old/ })
  })

  it('refuses a replayed header: each nonce is accepted once within the window', async () => {
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    const headers = await sign()
    expect((await identify(request(headers))).ok).toBe(true)
    expect(await identify(request(headers))).toMatchObject({
      ok: false,
      status: 401,
      code: 'unauthenticated',
      message: 'This identity signature was already used (a replay).',
    })
    hmacClock.advance('59s')
    expect((await identify(request(headers))).ok).toBe(false) // still remembered
    hmacClock.advance('2s')
    expect(await identify(request(headers))).toMatchObject({ ok: false, message: /too old/ }) // and then stale

    // the same nonce over another assertion is a replay too (the nonce is the unit, not the body)
    const nonce = 'fixed-nonce-0123456789'
    expect((await identify(request(await sign(assertion, { nonce })))).ok).toBe(true)
    const again = await sign({ subject: { tenant: 'acme', user: 'u10' } }, { nonce })
    expect(await identify(request(again))).toMatchObject({ ok: false, message: /replay/ })
  })

  it('refuses the format without a nonce (t=…,v1=…), even with a valid MAC, and says why', async () => {
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    const value = Buffer.from(JSON.stringify(assertion)).toString('base64url')
    const at = hmacClock.now()
    const { createHmac } = await import('node:crypto')
    const mac = createHmac('sha256', secret).update(`${at}.${value}`).digest('hex')
    const legacy = { 'x-tollgate-identity': value, 'x-tollgate-signature': `t=${at},v1=${mac}` }
    expect(await identify(request(legacy))).toMatchObject({ ok: false, status: 401, message: /no nonce/ })
  })

  it('uses the given nonce store; a store failure propagates (answered 503 by the web layer)', async () => {
    const claims: [string, number][] = []
    const seen = new Set<string>()
    const nonces: NonceStore = {
      claim(nonce, ttl) {
        claims.push([nonce, ttl])
        if (seen.has(nonce)) return false
        seen.add(nonce)
        return true
      },
    }
    const identify = signedIdentity({ hmac: { secret, nonces }, clock: hmacClock })
    const headers = await sign(assertion, { nonce: 'n-0123456789abcdef', now: hmacClock.now() - 10_000 })
    expect((await identify(request(headers))).ok).toBe(true)
    // remembered until the timestamp goes stale: 60 s after it, 50 s from now (+1 ms)
    expect(claims).toEqual([['n-0123456789abcdef', 50_001]])
    expect((await identify(request(headers))).ok).toBe(false)
    // a forged header never reaches the store
    const forged = {
      ...headers,
      'x-tollgate-identity': (await sign({ subject: { user: 'x' } }))['x-tollgate-identity']!,
    }
    expect((await identify(request(forged))).ok).toBe(false)
    expect(claims).toHaveLength(2)

    const down = signedIdentity({
      hmac: { secret, nonces: { claim: () => Promise.reject(new Error('store down')) } },
      clock: hmacClock,
    })
    await expect(down(request(await sign()))).rejects.toThrow('store down')
  })

  it('refuses a signed assertion without a usable subject (signed by an upstream of its own)', async () => {
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    // signIdentity refuses to sign it, so sign it as another upstream would
    const value = Buffer.from(JSON.stringify({ subject: { user: '' } })).toString('base64url')
    const at = hmacClock.now()
    const nonce = 'n'.repeat(16)
    const mac = createHmac('sha256', secret).update(`${at}.${nonce}.${value}`).digest('hex')
    const headers = { 'x-tollgate-identity': value, 'x-tollgate-signature': `t=${at},n=${nonce},v1=${mac}` }
    expect(await identify(request(headers))).toMatchObject({ ok: false, status: 401 })
    expect(await identify(request(await sign()))).toMatchObject({ ok: true }) // the same, well made
  })

  it('refuses, with 401 naming the field, a signed assertion with malformed features or attributes', async () => {
    // signed by an upstream of its own (signIdentity refuses them); each was answered 503 "try again
    // shortly", so clients retried for ever
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    const subject = { user: 'u1' }
    const cases: [unknown, RegExp][] = [
      [{ subject, features: 'chat' }, /features must be a list of non-empty strings/],
      [{ subject, features: ['chat', 1] }, /features must be a list of non-empty strings/],
      [{ subject, features: ['chat', ''] }, /features must be a list of non-empty strings/],
      [{ subject, features: null }, /features must be a list of non-empty strings/],
      [{ subject, features: { chat: true } }, /features must be a list of non-empty strings/],
      [{ subject, attributes: 'pro' }, /attributes must be an object of name → value/],
      [{ subject, attributes: ['pro'] }, /attributes must be an object of name → value/],
      [{ subject, attributes: { plan: ['a', 1] } }, /attributes\.plan must be a string, a finite number/],
      [{ subject, attributes: { plan: { tier: 'pro' } } }, /attributes\.plan must be/],
    ]
    for (const [body, message] of cases) {
      const nonce = `n-${Math.random().toString(36).slice(2)}-0123456789`
      const headers = foreignSigned(body, hmacClock.now(), nonce)
      expect(await identify(request(headers)), JSON.stringify(body)).toMatchObject({
        ok: false,
        status: 401,
        code: 'unauthenticated',
        message: expect.stringMatching(message),
      })
    }
    // well made, the same are accepted: null attributes (a JSON encoder's "none") as none
    const fine = {
      subject,
      features: ['chat'],
      attributes: { plan: 'pro', seats: 3, trial: false, tags: ['a'], none: null },
    }
    expect(await identify(request(foreignSigned(fine, hmacClock.now(), 'fine-0123456789abcdef')))).toEqual({
      ok: true,
      ...fine,
    })
    expect(
      await identify(
        request(foreignSigned({ subject, attributes: null }, hmacClock.now(), 'null-0123456789abcd')),
      ),
    ).toEqual({ ok: true, subject, attributes: {} })
  })

  it('answers a malformed signed assertion 401 through the web layer, never a retryable 503', async () => {
    const { gate } = testGate()
    const errors: unknown[] = []
    const options = {
      gate,
      identify: signedIdentity({ hmac: { secret } }),
      onError: (e: unknown) => errors.push(e),
    }
    for (const body of [
      { subject: { user: 'u1' }, features: 'chat' },
      { subject: { user: 'u1' }, attributes: 'pro' },
    ]) {
      const headers = foreignSigned(body, Date.now(), `w-${Math.random().toString(36).slice(2)}-0123456789`)
      const admission = await handleRequest(new Request('http://x/', { method: 'POST', headers }), options)
      expect(admission.allowed).toBe(false)
      if (admission.allowed) continue
      expect(admission.response.status).toBe(401)
      expect(await admission.response.json()).toMatchObject({ error: { code: 'unauthenticated' } })
    }
    expect(errors).toEqual([])
  })

  it('refuses a nonce shorter than 16 or longer than 128 characters, even under a valid MAC', async () => {
    // another signer than signIdentity (which refuses such nonces) must get the same answer
    const identify = signedIdentity({ hmac: { secret }, clock: hmacClock })
    const value = Buffer.from(JSON.stringify(assertion)).toString('base64url')
    const signed = (nonce: string) => {
      const at = hmacClock.now()
      const mac = createHmac('sha256', secret).update(`${at}.${nonce}.${value}`).digest('hex')
      return request({ 'x-tollgate-identity': value, 'x-tollgate-signature': `t=${at},n=${nonce},v1=${mac}` })
    }
    for (const nonce of ['a', 'a1', 'n'.repeat(15), 'N'.repeat(129), 'n'.repeat(1000)])
      expect(await identify(signed(nonce)), `${nonce.length} characters`).toEqual({
        ok: false,
        code: 'unauthenticated',
        status: 401,
        message: 'Malformed identity signature.',
      })
    for (const nonce of ['s'.repeat(16), 'L'.repeat(128), 'Az09_-Az09_-Az09'])
      expect(await identify(signed(nonce)), `${nonce.length} characters`).toEqual({ ok: true, ...assertion })
  })

  it('signIdentity refuses a nonce that is too short', async () => {
    await expect(sign(assertion, { nonce: 'short' })).rejects.toThrow(/16 to 128/)
  })

  it('signIdentity refuses, where the mistake is, what every receiver would refuse', async () => {
    // it signed these, and each request made with them was refused (or threw while being made)
    const cases: [Assertion, Partial<SignIdentityOptions>, RegExp][] = [
      [{ subject: { user: '' } }, {}, /needs a subject/],
      [null as never, {}, /needs a subject/],
      [assertion, { now: Number.NaN }, /now is a whole number/],
      [assertion, { now: -1 }, /now is a whole number/],
      [assertion, { nonce: Object.create(null) }, /16 to 128/],
      [assertion, { header: 'x bad' }, /header must be a header name/],
      [assertion, { signatureHeader: 'sig:' }, /signatureHeader must be a header name/],
      // features and attributes: each request with them was answered 503 (or matched nothing)
      [{ ...assertion, features: 'chat' as never }, {}, /features must be a list of non-empty strings/],
      [{ ...assertion, features: ['chat', 1] as never }, {}, /features must be a list of non-empty strings/],
      [{ ...assertion, features: [''] }, {}, /features must be a list of non-empty strings/],
      [{ ...assertion, features: null as never }, {}, /features must be a list of non-empty strings/],
      [{ ...assertion, attributes: 'pro' as never }, {}, /attributes must be an object of name → value/],
      [{ ...assertion, attributes: ['pro'] as never }, {}, /attributes must be an object/],
      [{ ...assertion, attributes: new Map() as never }, {}, /attributes must be an object/],
      [{ ...assertion, attributes: new Date() as never }, {}, /attributes must be an object/],
      [{ ...assertion, attributes: { plan: ['a', 1] } as never }, {}, /attributes\.plan must be a string/],
      [{ ...assertion, attributes: { seats: Number.NaN } }, {}, /attributes\.seats must be/],
      [{ ...assertion, attributes: { seats: Infinity } }, {}, /attributes\.seats must be/],
      [{ ...assertion, attributes: { plan: { tier: 'pro' } } as never }, {}, /attributes\.plan must be/],
      [{ ...assertion, attributes: { plan: () => 'pro' } as never }, {}, /attributes\.plan must be/],
    ]
    for (const [a, extra, message] of cases) {
      const error = await sign(a, extra).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as TypeError).message).toMatch(message)
    }
    await expect(signIdentity(assertion, undefined as never)).rejects.toBeInstanceOf(TypeError)
    // what Assertion allows is signed, down to an object without a prototype
    const attributes = Object.assign(Object.create(null), { plan: 'pro', seats: 3, trial: true, tags: ['a'] })
    await expect(sign({ ...assertion, features: [], attributes })).resolves.toHaveProperty(
      'x-tollgate-identity',
    )
    await expect(sign({ ...assertion, features: ['chat'], attributes: {} })).resolves.toBeTruthy()
    // a fractional time is floored, as before
    expect((await sign(assertion, { now: hmacClock.now() + 0.7 }))['x-tollgate-signature']).toMatch(
      new RegExp(`^t=${hmacClock.now()},`),
    )
  })
})
