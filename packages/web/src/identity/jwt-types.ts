// The shapes of the few `jose` types that appear in `@tollgate/web`'s public options, declared here.
// jose is an ES module only: typings of this package that imported its types could not be read by a
// CommonJS project that checks library types (TS1479). Each is structurally the same as jose's type
// of the same name (index.test-d.ts checks it), so values of jose's types fit them.

/** The claims of a verified JWT (jose's `JWTPayload`). */
export interface JWTPayload {
  /** "iss" (Issuer) claim. */
  iss?: string
  /** "sub" (Subject) claim. */
  sub?: string
  /** "aud" (Audience) claim. */
  aud?: string | string[]
  /** "jti" (JWT ID) claim. */
  jti?: string
  /** "nbf" (Not Before) claim, in seconds since the epoch. */
  nbf?: number
  /** "exp" (Expiration Time) claim, in seconds since the epoch. */
  exp?: number
  /** "iat" (Issued At) claim, in seconds since the epoch. */
  iat?: number
  /** Any other claim. */
  [claim: string]: unknown
}

/**
 * One JSON Web Key (RFC 7517): its `kty` and the parameters of that key type (`n` and `e` for RSA,
 * `crv`, `x` and `y` for EC, …). jose checks the key when the key set is used. jose's `JWK` fits.
 */
export interface JWK {
  /** "kty" (Key Type): `'RSA'`, `'EC'`, `'OKP'`, `'AKP'` or `'oct'`. */
  kty?: string
  /** "kid" (Key ID): how a token's header picks this key. */
  kid?: string
  /** "alg" (Algorithm) the key is for. */
  alg?: string
  /** "use" (Public Key Use): `'sig'` or `'enc'`. */
  use?: string
  /** The key type's other parameters. */
  [parameter: string]: unknown
}

/** A JSON Web Key Set (jose's `JSONWebKeySet`). */
export interface JSONWebKeySet {
  /** The keys (RFC 7517, section 5.1). */
  keys: JWK[]
}

/**
 * A Web Crypto `CryptoKey` (jose's `CryptoKey`): the runtime's own type where its typings declare
 * `crypto.subtle` (Node's `@types/node`, the DOM library), else the members every `CryptoKey` has.
 */
export type CryptoKey = typeof globalThis extends {
  crypto: { subtle: { generateKey(...args: never[]): Promise<infer R> } }
}
  ? Extract<R, { type: string }>
  : {
      readonly algorithm: { name: string }
      readonly extractable: boolean
      readonly type: string
      readonly usages: string[]
    }
