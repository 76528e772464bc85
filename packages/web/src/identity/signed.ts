/**
 * Identity asserted by a trusted upstream and verified here: a JWT (HS256, RS256, or any key of
 * a JSON Web Key Set, verified with `jose`), or an identity header signed with HMAC-SHA256 over a
 * timestamp and a nonce: a stale timestamp is refused, and each nonce is accepted once (a
 * {@link NonceStore} remembers it while the timestamp is fresh), so a captured header cannot be
 * replayed.
 */
import { type Attributes, type Clock, checkClock } from '@tollgate/core'
import type { JWTVerifyOptions } from 'jose'
import {
  checkSecret,
  equalDigests,
  fromBase64UrlText,
  fromHex,
  hmacSha256,
  toBase64Url,
  toHex,
} from './digest.js'
import { isAttribute, isText } from './grant.js'
import type { CryptoKey, JSONWebKeySet, JWTPayload } from './jwt-types.js'
import { memoryNonceStore, type NonceStore } from './nonces.js'
import {
  checkHeaderName,
  credential,
  type Identify,
  type IdentityResult,
  identified,
  isUsableSubject,
  unauthenticated,
} from './types.js'

/**
 * What a verified token or header says about its bearer. `signIdentity` refuses to sign, and
 * `signedIdentity` refuses with 401, an assertion whose `features` or `attributes` are not as below.
 */
export interface Assertion {
  /** Dimension → non-empty id; at least one. @example { tenant: 'acme', user: 'u1' } */
  subject: Record<string, string>
  /**
   * A plain object of name → string, finite number, boolean, `null` or list of strings (`null`
   * for the whole object is none). @default none @example { plan: 'pro', seats: 3 }
   */
  attributes?: Attributes
  /** Features the bearer may use, each a non-empty string. @default every feature @example ['chat'] */
  features?: readonly string[]
}

/**
 * JWT verification: exactly one key source, `secret` (HS256), `publicKey` (RS256) or `jwks` (the
 * type refuses none, or two), and the checks every source shares.
 */
export type JwtIdentityOptions = (
  | {
      /** Shared secret for HS256, at least 32 bytes. Not with `publicKey` or `jwks`. @example process.env.IDENTITY_JWT_SECRET! */
      secret: string | Uint8Array
      /** Not with `secret`: give exactly one key source. */
      publicKey?: undefined
      /** Not with `secret`: give exactly one key source. */
      jwks?: undefined
    }
  | {
      /** Not with `publicKey`: give exactly one key source. */
      secret?: undefined
      /** Public key for RS256: PEM (SPKI) text or a `CryptoKey`. Not with `secret` or `jwks`. @example fs.readFileSync('upstream.pub.pem', 'utf8') */
      publicKey: string | CryptoKey
      /** Not with `publicKey`: give exactly one key source. */
      jwks?: undefined
    }
  | {
      /** Not with `jwks`: give exactly one key source. */
      secret?: undefined
      /** Not with `jwks`: give exactly one key source. */
      publicKey?: undefined
      /** A JSON Web Key Set held locally (keys picked by `kid`). Not with `secret` or `publicKey`. @example await (await fetch(jwksUrl)).json() */
      jwks: JSONWebKeySet
    }
) & {
  /** Accepted `iss`. @default any @example 'https://auth.example.com' */
  issuer?: string | string[]
  /** Accepted `aud`. @default any @example 'tollgate' */
  audience?: string | string[]
  /** Accepted algorithms. @default ['HS256'] with `secret`, else ['RS256'] @example ['RS256', 'ES256'] */
  algorithms?: string[]
  /** Header carrying the token (`authorization` as `Bearer <token>`). @default 'authorization' @example 'x-identity-token' */
  header?: string
  /** Seconds of clock skew accepted on `exp` and `nbf`. @default 5 @example 30 */
  clockTolerance?: number
  /** Refuse tokens without `exp`. @default true @example false // long-lived service tokens */
  requireExpiry?: boolean
  /**
   * Claims → identity. `null` refuses the token.
   * @default `sub` as `user`, string `tenant`/`org`/`team`/`project` claims as those dimensions,
   * string `plan`/`environment` as attributes, a string-array `features` claim as allowed features
   * (a `features` claim that is no array allows none; entries that are not non-empty strings are
   * left out). What it returns is checked as an HMAC assertion is: no usable subject, or malformed
   * `features` or `attributes` (see {@link Assertion}), refuses the token with 401.
   * @example (claims) => ({ subject: { org: String(claims.org_id), user: String(claims.sub) } })
   */
  claims?: (payload: JWTPayload) => Assertion | null
}

/** HMAC-signed identity header; see {@link signIdentity} for the upstream side. */
export interface HmacIdentityOptions {
  /** Shared secret (at least 32 bytes of entropy). @example process.env.IDENTITY_HMAC_SECRET! */
  secret: string | Uint8Array
  /** Header with the base64url JSON assertion. @default 'x-tollgate-identity' @example 'x-identity' */
  header?: string
  /**
   * Header with `t=<ms since epoch>,n=<nonce>,v1=<hex HMAC-SHA256 of "<t>.<n>.<identity header>">`.
   * @default 'x-tollgate-signature'
   * @example 'x-identity-signature'
   */
  signatureHeader?: string
  /**
   * Accepted distance between the signature's timestamp and now, in ms, both ways: older (or
   * further in the future) signatures are refused. Nonces are remembered for as long.
   * @default 60000
   * @example 30_000
   */
  maxAgeMs?: number
  /**
   * Where nonces already seen are remembered, so each is accepted once. With several processes,
   * share one store (`redisNonceStore` from `@tollgate/web/redis`), or a header replayed to another
   * process is accepted there.
   * @default memoryNonceStore({ clock }) — this process only
   * @example redisNonceStore({ client: redis })
   */
  nonces?: NonceStore
}

/** Options of {@link signedIdentity}: exactly one of `jwt` or `hmac` (the type refuses none, or both). */
export type SignedIdentityOptions = (
  | {
      /**
       * Verify a JWT from the request's `authorization` header (or `header`), with exactly one key
       * source: `secret` (HS256), `publicKey` (RS256) or `jwks`. Not with `hmac`.
       * @example { secret: process.env.IDENTITY_JWT_SECRET!, issuer: 'https://auth.example.com', audience: 'tollgate' }
       */
      jwt: JwtIdentityOptions
      /** Not with `jwt`: give exactly one of `jwt` or `hmac`. */
      hmac?: undefined
    }
  | {
      /**
       * Verify an identity header signed with HMAC-SHA256 over a timestamp and a nonce (what
       * {@link signIdentity} makes upstream); stale or replayed signatures are refused. Not with `jwt`.
       * @example { secret: process.env.IDENTITY_HMAC_SECRET!, nonces: redisNonceStore({ client: redis }) }
       */
      hmac: HmacIdentityOptions
      /** Not with `hmac`: give exactly one of `jwt` or `hmac`. */
      jwt?: undefined
    }
) & {
  /** Time for expiry and replay checks. @default systemClock @example fakeClock() */
  clock?: Clock
}

const DEFAULT_HEADER = 'x-tollgate-identity'
const DEFAULT_SIGNATURE_HEADER = 'x-tollgate-signature'
/** `t=<ms>,n=<nonce>,v1=<hex mac>`; a nonce is 16 to 128 base64url characters. */
const SIGNATURE = /^t=(\d{1,16}),n=([A-Za-z0-9_-]{16,128}),v1=([0-9a-f]{64})$/
/** The format before nonces: refused, with a message that says why. */
const SIGNATURE_WITHOUT_NONCE = /^t=\d{1,16},v1=[0-9a-f]{64}$/
const str = (value: unknown) => (typeof value === 'string' && value.length > 0 ? value : undefined)

/** The default claims mapping (see `JwtIdentityOptions.claims`). */
export function defaultClaims(payload: JWTPayload): Assertion | null {
  const user = str(payload.sub)
  if (!user) return null
  const subject: Record<string, string> = { user }
  for (const dim of ['tenant', 'org', 'team', 'project']) {
    const id = str(payload[dim])
    if (id) subject[dim] = id
  }
  const attributes: Record<string, string> = {}
  for (const name of ['plan', 'environment']) {
    const value = str(payload[name])
    if (value) attributes[name] = value
  }
  // a features claim that is no list allows no feature: read as absent, it lifted every restriction
  const given = payload.features
  // its entries that are no feature name (not a non-empty string) are left out, as they match nothing
  const features =
    given === undefined ? undefined : Array.isArray(given) ? given.filter((f): f is string => isText(f)) : []
  return { subject, attributes, ...(features ? { features } : {}) }
}

/** An object made by `{…}`, `JSON.parse` or `Object.create(null)`: not an array, a `Map`, a `Date`. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/**
 * What is wrong with an assertion's `features` or `attributes`, naming the field, or `undefined`.
 * Absent features allow every feature; `null` attributes are none (what JSON encoders write for an
 * empty map), and an `undefined` attribute value is absent (JSON leaves it out).
 */
function assertionProblem(assertion: { features?: unknown; attributes?: unknown }): string | undefined {
  const { features, attributes } = assertion
  // a features value that is no list is never read as absent: that would allow every feature
  if (features !== undefined && !(Array.isArray(features) && features.every(isText)))
    return 'features must be a list of non-empty strings'
  if (attributes === undefined || attributes === null) return undefined
  if (!isPlainObject(attributes)) return 'attributes must be an object of name → value'
  for (const [name, value] of Object.entries(attributes))
    if (value !== undefined && !isAttribute(value))
      return `attributes.${name} must be a string, a finite number, a boolean, null or a list of strings`
  return undefined
}

/**
 * The identity an assertion makes, or 401 when it names no subject or has malformed `features` or
 * `attributes` (an invalid assertion, as a tampered one: never an outage to retry).
 */
function fromAssertion(assertion: Assertion | null): IdentityResult {
  if (typeof assertion !== 'object' || assertion === null || !isUsableSubject(assertion.subject))
    return unauthenticated('The identity assertion names no subject.')
  const problem = assertionProblem(assertion)
  if (problem) return unauthenticated(`Invalid identity assertion: its ${problem}.`)
  return identified(assertion.subject, assertion.attributes ?? {}, assertion.features)
}

let jose: Promise<typeof import('jose')> | undefined
/** jose is loaded on first use: the key registry and the web layer do not need it. */
const loadJose = () => (jose ??= import('jose'))

function jwtIdentity(options: JwtIdentityOptions, clock: Clock | undefined): Identify {
  const given = [options.secret, options.publicKey, options.jwks].filter((k) => k !== undefined).length
  if (given !== 1) throw new TypeError('signedIdentity({ jwt }) needs exactly one of secret, publicKey, jwks')
  if (options.secret !== undefined) checkSecret('signedIdentity({ jwt })', options.secret)
  const { clockTolerance } = options
  if (
    clockTolerance !== undefined &&
    !(typeof clockTolerance === 'number' && clockTolerance >= 0 && clockTolerance < Infinity)
  )
    throw new TypeError(
      `signedIdentity({ jwt }): clockTolerance is a number of seconds, 0 or more, got ${typeof clockTolerance === 'number' ? clockTolerance : typeof clockTolerance}`,
    )
  // what jose would refuse on every request, refused once here
  const texts = (value: unknown) =>
    typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
  if (options.algorithms !== undefined && !(texts(options.algorithms) && Array.isArray(options.algorithms)))
    throw new TypeError('signedIdentity({ jwt }): algorithms is a list of JWS algorithm names')
  for (const name of ['issuer', 'audience'] as const)
    if (options[name] !== undefined && !texts(options[name]))
      throw new TypeError(`signedIdentity({ jwt }): ${name} is a string or a list of strings`)
  if (options.claims !== undefined && typeof options.claims !== 'function')
    throw new TypeError('signedIdentity({ jwt }): claims is a function of the verified payload')
  const algorithms = options.algorithms ?? (options.secret !== undefined ? ['HS256'] : ['RS256'])
  const header = options.header ?? 'authorization'
  checkHeaderName('signedIdentity({ jwt })', 'header', header)
  const mapClaims = options.claims ?? defaultClaims
  let keyPromise: Promise<Parameters<typeof import('jose').jwtVerify>[1]> | undefined
  const key = () =>
    (keyPromise ??= loadJose().then(async (j) => {
      if (options.jwks) return j.createLocalJWKSet(options.jwks)
      if (typeof options.secret === 'string') return new TextEncoder().encode(options.secret)
      if (options.secret) return options.secret
      const pk = options.publicKey!
      return typeof pk === 'string' ? j.importSPKI(pk, algorithms[0]!) : pk
    }))
  return async (request) => {
    const token = credential(request, header)
    if (token === null) return unauthenticated(`Missing identity token in the "${header}" header.`)
    const j = await loadJose()
    const verify: JWTVerifyOptions = {
      algorithms,
      clockTolerance: options.clockTolerance ?? 5,
      ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
      ...(options.audience !== undefined ? { audience: options.audience } : {}),
      ...(options.requireExpiry === false ? {} : { requiredClaims: ['exp'] }),
      ...(clock ? { currentDate: new Date(clock.now()) } : {}),
    }
    try {
      const { payload } = await j.jwtVerify(token, (await key()) as Uint8Array, verify)
      return fromAssertion(mapClaims(payload))
    } catch (error) {
      if (error instanceof j.errors.JWTExpired) return unauthenticated('The identity token has expired.')
      if (error instanceof j.errors.JOSEError)
        return unauthenticated(`Invalid identity token (${error.code}).`)
      throw error
    }
  }
}

function hmacIdentity(options: HmacIdentityOptions, clock: Clock | undefined): Identify {
  checkSecret('signedIdentity({ hmac })', options.secret)
  const header = options.header ?? DEFAULT_HEADER
  const signatureHeader = options.signatureHeader ?? DEFAULT_SIGNATURE_HEADER
  checkHeaderName('signedIdentity({ hmac })', 'header', header)
  checkHeaderName('signedIdentity({ hmac })', 'signatureHeader', signatureHeader)
  const maxAgeMs = options.maxAgeMs ?? 60_000
  if (!Number.isFinite(maxAgeMs) || maxAgeMs <= 0)
    throw new TypeError('signedIdentity({ hmac }): maxAgeMs is a positive number of ms')
  const nonces = options.nonces ?? memoryNonceStore(clock ? { clock } : {})
  return async (request) => {
    const value = request.headers.get(header)?.trim()
    const signature = request.headers.get(signatureHeader)?.trim()
    if (!value || !signature)
      return unauthenticated(`Missing signed identity ("${header}" and "${signatureHeader}").`)
    const parts = SIGNATURE.exec(signature)
    if (!parts)
      return unauthenticated(
        SIGNATURE_WITHOUT_NONCE.test(signature)
          ? 'The identity signature has no nonce: sign with t=<ms>,n=<nonce>,v1=<mac> (signIdentity does).'
          : 'Malformed identity signature.',
      )
    const at = Number(parts[1])
    const nonce = parts[2]!
    const now = clock?.now() ?? Date.now()
    if (Math.abs(now - at) > maxAgeMs)
      return unauthenticated('The identity signature is too old (or from the future).')
    const expected = await hmacSha256(options.secret, `${at}.${nonce}.${value}`)
    if (!equalDigests(fromHex(parts[3]!)!, expected)) return unauthenticated('Invalid identity signature.')
    const text = fromBase64UrlText(value)
    let assertion: unknown
    try {
      assertion = text === null ? null : JSON.parse(text)
    } catch {
      assertion = null
    }
    const identity = fromAssertion(assertion as Assertion | null)
    if (!identity.ok) return identity
    // remember the nonce until the timestamp itself goes stale: after that, the window refuses it
    if (!(await nonces.claim(nonce, at + maxAgeMs - now + 1)))
      return unauthenticated('This identity signature was already used (a replay).')
    return identity
  }
}

/**
 * Identity asserted by a trusted upstream: a JWT verified with `jose`, or an HMAC-signed header.
 * A missing, tampered, expired or stale assertion, or a replayed HMAC header, is refused with 401;
 * so is an assertion (an HMAC header's, or what a JWT `claims` mapping returns) with no usable
 * subject, `features` that are not a list of non-empty strings, or `attributes` that are not an
 * object of strings, finite numbers, booleans, `null` and lists of strings (the message names the field).
 *
 * @example
 * signedIdentity({ jwt: { secret: process.env.JWT_SECRET!, issuer: 'https://auth.example.com', audience: 'tollgate' } })
 * signedIdentity({ jwt: { jwks: await (await fetch(jwksUrl)).json(), algorithms: ['RS256'] } })
 * signedIdentity({ hmac: { secret: process.env.IDENTITY_HMAC_SECRET! } })
 */
export function signedIdentity(options: SignedIdentityOptions): Identify {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('signedIdentity needs exactly one of { jwt } or { hmac }')
  checkClock('signedIdentity', options.clock)
  if (options.jwt && !options.hmac) return jwtIdentity(options.jwt, options.clock)
  if (options.hmac && !options.jwt) return hmacIdentity(options.hmac, options.clock)
  throw new TypeError('signedIdentity needs exactly one of { jwt } or { hmac }')
}

/** Options of {@link signIdentity}. */
export type SignIdentityOptions = Pick<HmacIdentityOptions, 'secret' | 'header' | 'signatureHeader'> & {
  /** Signing time, ms since epoch. @default Date.now() @example clock.now() */
  now?: number
  /**
   * The nonce: 16 to 128 base64url characters, never reused.
   * @default 16 random bytes, base64url
   * @example crypto.randomUUID().replaceAll('-', '')
   */
  nonce?: string
}

/**
 * The headers a trusted upstream sends for {@link signedIdentity}'s `hmac` mode: a fresh timestamp
 * and nonce per request (sign each request; a signed header is accepted once).
 *
 * Throws a `TypeError` for what every receiver would refuse: an assertion without a usable subject,
 * `features` that are not a list of non-empty strings, `attributes` that are not a plain object of
 * strings, finite numbers, booleans, `null` and lists of strings, a bad `now`, nonce, header name or
 * secret.
 *
 * @example
 * const headers = await signIdentity({ subject: { tenant: 'acme', user: 'u1' } }, { secret })
 * await fetch(url, { headers: { ...headers, 'content-type': 'application/json' }, method: 'POST', body })
 */
export async function signIdentity(
  assertion: Assertion,
  options: SignIdentityOptions,
): Promise<Record<string, string>> {
  if (typeof options !== 'object' || options === null) throw new TypeError('signIdentity needs { secret }')
  checkSecret('signIdentity', options.secret)
  // what the receiving side would refuse on every request is refused here, where the mistake is
  if (typeof assertion !== 'object' || assertion === null || !isUsableSubject(assertion.subject))
    throw new TypeError('signIdentity: the assertion needs a subject of dimension → non-empty id')
  const problem = assertionProblem(assertion)
  if (problem) throw new TypeError(`signIdentity: the assertion's ${problem}`)
  const header = options.header ?? DEFAULT_HEADER
  const signatureHeader = options.signatureHeader ?? DEFAULT_SIGNATURE_HEADER
  checkHeaderName('signIdentity', 'header', header)
  checkHeaderName('signIdentity', 'signatureHeader', signatureHeader)
  const value = toBase64Url(new TextEncoder().encode(JSON.stringify(assertion)))
  const at = typeof options.now === 'number' ? Math.floor(options.now) : (options.now ?? Date.now())
  if (!(Number.isSafeInteger(at) && at >= 0))
    throw new TypeError('signIdentity: now is a whole number of ms since the epoch')
  const nonce = options.nonce ?? toBase64Url(crypto.getRandomValues(new Uint8Array(16)))
  if (typeof nonce !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(nonce))
    throw new TypeError('signIdentity: a nonce is 16 to 128 base64url characters')
  const mac = toHex(await hmacSha256(options.secret, `${at}.${nonce}.${value}`))
  return { [header]: value, [signatureHeader]: `t=${at},n=${nonce},v1=${mac}` }
}
