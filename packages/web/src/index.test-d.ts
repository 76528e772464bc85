import type * as jose from 'jose'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type CryptoKey,
  defaultClaims,
  type JSONWebKeySet,
  type JWTPayload,
  type JwtIdentityOptions,
  type SignedIdentityOptions,
  signedIdentity,
} from './index.js'

const secret = 'x'.repeat(32)
const publicKey = '-----BEGIN PUBLIC KEY-----'
const jwks: JSONWebKeySet = { keys: [{ kty: 'RSA', kid: 'k1', n: 'AQAB', e: 'AQAB' }] }

describe('signedIdentity options', () => {
  it('jwt takes exactly one of secret, publicKey, jwks', () => {
    signedIdentity({ jwt: { secret, audience: 'llm-api' } })
    signedIdentity({ jwt: { secret: new Uint8Array(32) } })
    signedIdentity({ jwt: { publicKey } })
    signedIdentity({ jwt: { jwks, algorithms: ['RS256'] } })
    // @ts-expect-error no key source
    signedIdentity({ jwt: { audience: 'llm-api' } })
    // @ts-expect-error no key source
    signedIdentity({ jwt: {} })
    // @ts-expect-error two key sources
    signedIdentity({ jwt: { secret, publicKey } })
    // @ts-expect-error two key sources
    signedIdentity({ jwt: { secret, jwks } })
    // @ts-expect-error two key sources
    signedIdentity({ jwt: { publicKey, jwks } })
    // @ts-expect-error three key sources
    signedIdentity({ jwt: { secret, publicKey, jwks } })
    expectTypeOf<{ audience: string }>().not.toExtend<JwtIdentityOptions>()
  })

  it('exactly one of jwt or hmac', () => {
    signedIdentity({ hmac: { secret } })
    // @ts-expect-error neither mode
    signedIdentity({})
    // @ts-expect-error both modes
    signedIdentity({ jwt: { secret }, hmac: { secret } })
    expectTypeOf<{ clock: undefined }>().not.toExtend<SignedIdentityOptions>()
  })

  it('a secret from process.env needs a value: undefined is refused when the identity is made', () => {
    const fromEnv = process.env.IDENTITY_SECRET
    // @ts-expect-error string | undefined
    signedIdentity({ hmac: { secret: fromEnv } })
    // @ts-expect-error string | undefined
    signedIdentity({ jwt: { secret: fromEnv } })
    signedIdentity({ hmac: { secret: fromEnv! } })
  })
})

describe('the jose shapes @tollgate/web declares (its typings import nothing from jose)', () => {
  it('are jose types', () => {
    expectTypeOf<JWTPayload>().toEqualTypeOf<jose.JWTPayload>()
    expectTypeOf<CryptoKey>().toEqualTypeOf<jose.CryptoKey>()
    expectTypeOf<jose.JSONWebKeySet>().toExtend<JSONWebKeySet>()
    expectTypeOf<JSONWebKeySet>().toExtend<jose.JSONWebKeySet>()
  })

  it('claims mappings written against jose types fit', () => {
    const claims = (payload: jose.JWTPayload) => defaultClaims(payload)
    signedIdentity({ jwt: { secret, claims } })
    expectTypeOf(defaultClaims).parameter(0).toEqualTypeOf<JWTPayload>()
    expectTypeOf<NonNullable<JwtIdentityOptions['claims']>>().parameter(0).toEqualTypeOf<JWTPayload>()
  })
})
