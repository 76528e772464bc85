/**
 * API-key-bound identity (SPEC §9, the strongest mode): a registry that stores only SHA-256
 * hashes of keys, compares digests in constant time, maps each key to its subject and
 * attributes, refuses a revoked key on the next lookup in every process sharing the storage,
 * refuses expired keys, rotates keys with a grace period, and lists keys without their hashes.
 */
import { type Attributes, type Clock, checkClock, type Subject } from '@tollgate/core'
import { equalDigests, fromHex, sha256, toBase64Url, toHex } from './digest.js'
import { checkGrant } from './grant.js'
import {
  checkHeaderName,
  credential,
  forbidden,
  type Identify,
  type IdentityRefusal,
  identified,
  unauthenticated,
} from './types.js'

/** What a key grants: who it speaks for and what it may do. */
export interface KeyGrant {
  /**
   * Subject dimensions, e.g. tenant, project and owner. The key's id is added as `key` (see
   * `apiKeyIdentity`'s `keyDimension`): its first id, kept through rotations ({@link StoredKey.lineage}).
   * @example { tenant: 'acme', project: 'chatbot', user: 'u-42' }
   */
  subject: Subject
  /** Plan, as the `plan` attribute. @default none @example 'starter' */
  plan?: string
  /** Environment, as the `environment` attribute. @default none @example 'production' */
  environment?: string
  /**
   * Features the key may use; a request for any other feature is refused with 403.
   * @default every feature
   * @example ['chat', 'embeddings']
   */
  features?: readonly string[]
  /** More attributes for policy matching. @default none @example { region: 'eu' } */
  attributes?: Attributes
  /** A label for people, never used for matching. @default none @example 'CI key' */
  name?: string
}

/** One key as stored: never the key itself. */
export interface StoredKey {
  /** Derived from the key (a hash of it, apart from `hash`), safe to log and show. */
  keyId: string
  /** Hex SHA-256 of the key. */
  hash: string
  grant: KeyGrant
  /** ms since epoch. */
  createdAt: number
  /** ms since epoch from which the key is refused (401 `key_expired`); absent: never. */
  expiresAt?: number
  /** Set by `rotate`: the id of the key that replaced this one. */
  rotatedTo?: string
  /** Set by `rotate`: ms since epoch from which this replaced key is refused (401 `key_rotated`). */
  graceUntil?: number
  /** Set by `rotate` on the new key: the id of the key it replaced. */
  rotatedFrom?: string
  /**
   * Set by `rotate` on the new key: the id of the first key of its chain of rotations, which the
   * identity's key dimension keeps (so per-key limits go on counting across a rotation); absent:
   * the key's own `keyId`.
   */
  lineage?: string
  /** Set by the storage when the key was revoked. */
  revoked?: boolean
}

/** Which keys to list: those whose subject has every given dimension id. */
export interface KeyFilter {
  /** Shorthand for `subject: { tenant }`. @default every tenant @example 'acme' */
  tenant?: string
  /** Dimension → id the key's subject must have. @default every key @example { tenant: 'acme', user: 'u-42' } */
  subject?: Subject
}

/** Where stored keys live; implement it to keep keys in your own database. */
export interface KeyStorage {
  /** The stored key with this id (with `revoked` set when it was revoked), or `null`. */
  find(keyId: string): Promise<StoredKey | null> | StoredKey | null
  /** Store (or overwrite) a record; must not undo a revocation. */
  put(record: StoredKey): Promise<void> | void
  /** Refuse the key from now on, in every process reading this storage. */
  revoke(keyId: string): Promise<void> | void
  /**
   * Stored keys whose subject has the given dimension ids (with `revoked` set). May return more
   * (the registry filters again), never fewer. Needed only by `KeyRegistry.list`.
   */
  scan?(subject: Subject): Promise<StoredKey[]> | StoredKey[]
  /**
   * Claim `keyId` for a rotation to `newKeyId` for `ttlMs`, atomically across every process sharing
   * this storage: `true` when no unexpired claim on `keyId` exists (the claim is then made), `false`
   * otherwise. Without it, two processes rotating the same key at once can both succeed until the
   * registry's check after writing sees the loser (see `KeyRegistry.rotate`).
   * @example (keyId, newKeyId, ttlMs) => redis.set(`rotating:${keyId}`, newKeyId, 'PX', ttlMs, 'NX').then((r) => r === 'OK')
   */
  claimRotation?(keyId: string, newKeyId: string, ttlMs: number): Promise<boolean> | boolean
}

/** Options of `KeyRegistry.issue`. */
export interface IssueOptions {
  /**
   * Text before the random part, to make keys recognisable (and findable by secret scanners): 0 to 64
   * letters, digits, `_`, `-`, `.` or `~`. @default 'tg_' @example 'sk_live_'
   */
  prefix?: string
  /** When the key stops working (refused with 401 `key_expired`). @default never @example Date.now() + 90 * 86_400_000 */
  expiresAt?: number | Date
}

/** Options of `KeyRegistry.add`. */
export interface AddOptions {
  /** When the key stops working (refused with 401 `key_expired`). @default never @example new Date('2027-01-01') */
  expiresAt?: number | Date
}

/** Options of `KeyRegistry.rotate`. */
export interface RotateOptions {
  /**
   * How long the replaced key keeps working, in ms; after that it is refused with 401
   * `key_rotated`. `0` refuses it at once.
   * @default 86400000 (24 hours)
   * @example 3_600_000
   */
  graceMs?: number
  /** Prefix of the new key (as {@link IssueOptions.prefix}). @default 'tg_' @example 'sk_live_' */
  prefix?: string
  /**
   * When the new key expires; `null` for never.
   * @default the replaced key's `expiresAt` (a rotation never extends a key's life by accident)
   * @example Date.now() + 90 * 86_400_000
   */
  expiresAt?: number | Date | null
}

/** The outcome of checking a presented key. */
export type KeyCheck =
  | {
      status: 'active'
      keyId: string
      /** The id per-key limits count under: the first key's of its rotations ({@link StoredKey.lineage}). */
      lineage: string
      grant: KeyGrant
      /** When the key expires, if it does. */
      expiresAt?: number
      /** When the key was replaced by `rotate`: the new key's id. */
      rotatedTo?: string
      /** When the key was replaced by `rotate`: the end of its grace period (ms since epoch). */
      graceUntil?: number
    }
  | { status: 'revoked'; keyId: string }
  | { status: 'expired'; keyId: string; expiresAt: number }
  | { status: 'rotated'; keyId: string; rotatedTo: string; graceUntil: number }
  | { status: 'unknown' }

/** A key as listed: its id, grant and state, never its hash or the key. */
export interface KeyInfo {
  /** The key's id (safe to log and show). */
  keyId: string
  /** Subject, plan, environment, features, attributes and name. */
  grant: KeyGrant
  /** `active` (accepted), `revoked`, `expired`, or `rotated` (replaced and past its grace period). */
  status: 'active' | 'revoked' | 'expired' | 'rotated'
  /** ms since epoch. */
  createdAt: number
  /** When the key expires (ms since epoch), if it does. */
  expiresAt?: number
  /** The key that replaced this one by `rotate`. */
  rotatedTo?: string
  /** The key this one replaced by `rotate`. */
  rotatedFrom?: string
  /** The end of the grace period of a replaced key (ms since epoch). */
  graceUntil?: number
}

/** API keys stored as hashes, made by `keyRegistry` (memory) or `redisKeyRegistry`: issue, verify, rotate, revoke, list. */
export interface KeyRegistry extends Omit<KeyStorage, 'scan' | 'claimRotation'> {
  /**
   * Create a random key (32 bytes, base64url) and store its hash. The key is returned once.
   * @example const { key, keyId } = await keys.issue({ subject: { tenant: 'acme' }, plan: 'starter' })
   */
  issue(grant: KeyGrant, options?: IssueOptions): Promise<{ key: string; keyId: string }>
  /**
   * Store the hash of an existing key: 20 to 512 characters (short keys could be guessed from their
   * hash), each printable ASCII other than the space (`!` to `~`, what a header carries as it is).
   * Throws a `TypeError` for any other key (a space, a tab, a line break, `é`, an emoji), which no
   * request could present, and for a grant no request could use.
   * @example await keys.add('sk-legacy-0123456789abcdef', { subject: { tenant: 'acme' } })
   */
  add(key: string, grant: KeyGrant, options?: AddOptions): Promise<{ keyId: string }>
  /** Check a presented key: constant-time comparison of SHA-256 digests, then revocation, expiry, rotation. */
  verify(key: string): Promise<KeyCheck>
  /**
   * Issue a new key with the same grant, and let the replaced one work until `graceMs` has passed.
   * Throws for an unknown, revoked, expired or already rotated key. The new key is returned once.
   * Of two rotations of one key at once, one succeeds and the other throws (`already being rotated`
   * or `already rotated`) without leaving a live key behind (across processes when the storage has
   * `claimRotation`, as the Redis registry does).
   * @example const { key, keyId, graceUntil } = await keys.rotate(oldKeyId, { graceMs: 3_600_000 })
   */
  rotate(keyId: string, options?: RotateOptions): Promise<{ key: string; keyId: string; graceUntil: number }>
  /**
   * Keys whose subject matches the filter (by tenant or any dimensions), oldest first, with their
   * grant and state: never hashes or keys. Throws when the storage has no `scan`.
   * @example await keys.list({ tenant: 'acme' })
   */
  list(filter?: KeyFilter): Promise<KeyInfo[]>
}

/** Options of {@link keyRegistry} and {@link memoryKeyRegistry}. */
export interface KeyRegistryOptions {
  /** Time for `createdAt`, expiry and rotation. @default systemClock @example fakeClock() */
  clock?: Clock
}

/** Longest key looked at; anything longer is unknown without hashing it. */
const MAX_KEY_LENGTH = 512
const MIN_KEY_LENGTH = 20
const NO_DIGEST = new Uint8Array(32)

/** The id of a key: a hash of it under a different label than the stored hash. */
export async function keyIdOf(key: string): Promise<string> {
  return `key_${toHex(await sha256(`tollgate-key-id:${key}`)).slice(0, 24)}`
}

/**
 * A registry over any {@link KeyStorage}.
 *
 * @example
 * const keys = keyRegistry({ find: (id) => db.keys.find(id), put: (r) => db.keys.insert(r), revoke: (id) => db.keys.revoke(id) })
 */
export function keyRegistry(storage: KeyStorage, options: KeyRegistryOptions = {}): KeyRegistry {
  checkClock('keyRegistry', options.clock)
  const now = () => options.clock?.now() ?? Date.now()
  const newKey = (prefix: unknown = 'tg_') => {
    // a key travels in a header (`Authorization: Bearer <key>`): a space, a line break or a letter
    // outside ASCII in the prefix made keys that could never be presented
    if (typeof prefix !== 'string' || !KEY_PREFIX.test(prefix))
      throw new TypeError('a key prefix is 0 to 64 letters, digits, "_", "-", "." or "~"')
    return `${prefix}${toBase64Url(crypto.getRandomValues(new Uint8Array(32)))}`
  }
  async function store(key: string, grant: KeyGrant, extra: Partial<StoredKey> = {}) {
    const keyId = await keyIdOf(key)
    await storage.put({ keyId, hash: toHex(await sha256(key)), grant, createdAt: now(), ...extra })
    return keyId
  }
  /** Keys this registry is rotating now: a second rotation of one of them throws at once. */
  const rotating = new Set<string>()
  async function rotate(keyId: string, graceMs: number, options: RotateOptions) {
    const old = await storage.find(keyId)
    if (!old) throw new Error(`rotate: no key ${keyId.slice(0, 64)}`)
    const status = statusOf(old, now())
    if (status !== 'active') throw new Error(`rotate: key ${keyId} is ${status}`)
    if (old.rotatedTo !== undefined)
      throw new Error(`rotate: key ${keyId} was already rotated to ${old.rotatedTo}`)
    // options are checked before the claim: a mistake in them must not hold the key for a minute
    const key = newKey(options.prefix)
    const expires = expiry((options.expiresAt === undefined ? old.expiresAt : options.expiresAt) ?? undefined)
    const newKeyId = await keyIdOf(key)
    if (storage.claimRotation && !(await storage.claimRotation(keyId, newKeyId, ROTATION_CLAIM_MS)))
      throw new Error(`rotate: key ${keyId} is already being rotated`)
    await store(key, old.grant, { ...expires, rotatedFrom: keyId, lineage: old.lineage ?? keyId })
    const graceUntil = now() + graceMs
    const { revoked: _, ...rest } = old
    await storage.put({ ...rest, rotatedTo: newKeyId, graceUntil })
    // read back: revoked meanwhile, or rotated by another process (a storage without claims), the
    // new key must not stay live
    const after = await storage.find(keyId)
    if (after?.revoked) {
      await storage.revoke(newKeyId)
      throw new Error(`rotate: key ${keyId} was revoked during the rotation`)
    }
    if (after?.rotatedTo !== newKeyId) {
      await storage.revoke(newKeyId)
      throw new Error(`rotate: key ${keyId} was already rotated to ${after?.rotatedTo}`)
    }
    return { key, keyId: newKeyId, graceUntil }
  }
  return {
    find: (keyId) => storage.find(keyId),
    put: (record) => storage.put(record),
    revoke: (keyId) => storage.revoke(keyId),
    async issue(grant, given) {
      const options = given ?? {} // a JS caller's null is no options, as undefined is
      checkGrant(grant, 'issue')
      const key = newKey(options.prefix)
      return { key, keyId: await store(key, grant, expiry(options.expiresAt)) }
    },
    async add(key, grant, given) {
      const options = given ?? {}
      checkKey(key)
      checkGrant(grant, 'add')
      return { keyId: await store(key, grant, expiry(options.expiresAt)) }
    },
    async verify(key) {
      if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH)
        return { status: 'unknown' }
      const keyId = await keyIdOf(key)
      const [record, digest] = await Promise.all([storage.find(keyId), sha256(key)])
      const stored = (record && fromHex(record.hash)) || NO_DIGEST
      // compare even when nothing was found, so a miss and a mismatch take the same time
      const match = equalDigests(digest, stored)
      if (!record || !match) return { status: 'unknown' }
      const status = statusOf(record, now())
      if (status === 'revoked') return { status, keyId }
      if (status === 'expired') return { status, keyId, expiresAt: record.expiresAt! }
      if (status === 'rotated')
        return { status, keyId, rotatedTo: record.rotatedTo!, graceUntil: record.graceUntil! }
      return {
        status,
        keyId,
        lineage: record.lineage ?? keyId,
        grant: record.grant,
        ...(record.expiresAt !== undefined ? { expiresAt: record.expiresAt } : {}),
        ...(record.rotatedTo !== undefined
          ? { rotatedTo: record.rotatedTo, graceUntil: record.graceUntil! }
          : {}),
      }
    },
    async rotate(keyId, given) {
      const options = given ?? {}
      const graceMs = options.graceMs ?? DEFAULT_GRACE_MS
      if (!Number.isFinite(graceMs) || graceMs < 0) throw new TypeError('rotate: graceMs is a number ≥ 0')
      if (typeof keyId !== 'string') throw new TypeError('rotate: keyId must be a key id (a string)')
      if (rotating.has(keyId)) throw new Error(`rotate: key ${keyId} is already being rotated`)
      rotating.add(keyId)
      try {
        return await rotate(keyId, graceMs, options)
      } finally {
        rotating.delete(keyId)
      }
    },
    async list(filter = {}) {
      if (!storage.scan) throw new TypeError('list: this key storage has no scan()')
      const subject: Subject = {
        ...filter.subject,
        ...(filter.tenant !== undefined ? { tenant: filter.tenant } : {}),
      }
      const at = now()
      const records = await storage.scan(subject)
      return records
        .filter((r) => Object.entries(subject).every(([dim, id]) => r.grant.subject[dim] === id))
        .sort((a, b) => a.createdAt - b.createdAt || (a.keyId < b.keyId ? -1 : 1))
        .map((r) => ({
          keyId: r.keyId,
          grant: r.grant,
          status: statusOf(r, at),
          createdAt: r.createdAt,
          ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
          ...(r.rotatedTo !== undefined ? { rotatedTo: r.rotatedTo } : {}),
          ...(r.rotatedFrom !== undefined ? { rotatedFrom: r.rotatedFrom } : {}),
          ...(r.graceUntil !== undefined ? { graceUntil: r.graceUntil } : {}),
        }))
    },
  }
}

const DEFAULT_GRACE_MS = 86_400_000
/** What a key's prefix may hold: characters a header carries as they are, and that `Bearer` keeps whole. */
const KEY_PREFIX = /^[A-Za-z0-9_.~-]{0,64}$/
/**
 * What a key given to `add` may hold: printable ASCII without the space (`!` to `~`), the characters
 * a header value carries as they are and that `Bearer <key>` keeps whole.
 */
const KEY_TEXT = /^[\x21-\x7e]+$/

/**
 * Throws a `TypeError` unless `key` is a key a request can present: 20 to 512 printable ASCII
 * characters without spaces. A space, a tab, a line break or a character outside ASCII made a key
 * that verified as active yet was refused (401) on every request, as no header carries it intact.
 * The message never quotes the key.
 */
function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH || key.length > MAX_KEY_LENGTH)
    throw new TypeError(`an API key has ${MIN_KEY_LENGTH} to ${MAX_KEY_LENGTH} characters`)
  if (!KEY_TEXT.test(key))
    throw new TypeError(
      'an API key is made only of printable ASCII characters other than the space ("!" to "~"): a space, a tab, a line break or a character outside ASCII cannot be sent in a header',
    )
}
/** How long a rotation's claim (`KeyStorage.claimRotation`) holds a key: far longer than a rotation takes. */
const ROTATION_CLAIM_MS = 60_000

/** The most ms from the epoch a `Date` can hold, either way. */
const MAX_DATE_MS = 8.64e15

function expiry(expiresAt: number | Date | undefined): Pick<StoredKey, 'expiresAt'> {
  if (expiresAt === undefined) return {}
  const at: unknown = expiresAt instanceof Date ? expiresAt.getTime() : expiresAt
  // a time no Date can hold made every later use of the key throw (its refusal names the time)
  if (typeof at !== 'number' || !Number.isFinite(at) || Math.abs(at) > MAX_DATE_MS)
    throw new TypeError('expiresAt is a Date or ms since epoch')
  return { expiresAt: at }
}

/** A time in a refusal's message: ISO 8601, or the number when no Date can hold it (a stored record's). */
const when = (ms: number) => (Math.abs(ms) <= MAX_DATE_MS ? new Date(ms).toISOString() : `${ms} ms`)

/** Revoked first (403), then expired, then replaced and past its grace period. */
function statusOf(record: StoredKey, now: number): KeyInfo['status'] {
  if (record.revoked) return 'revoked'
  if (record.expiresAt !== undefined && now >= record.expiresAt) return 'expired'
  if (record.graceUntil !== undefined && now >= record.graceUntil) return 'rotated'
  return 'active'
}

/**
 * Keys in this process's memory; revocation applies at once. For one process, tests and
 * development; use `redisKeyRegistry` from `@tollgate/web/redis` to share keys between processes.
 *
 * @example
 * const keys = memoryKeyRegistry()
 * const { key } = await keys.issue({ subject: { tenant: 'acme' }, plan: 'starter', environment: 'production' })
 */
export function memoryKeyRegistry(options: KeyRegistryOptions = {}): KeyRegistry {
  const records = new Map<string, StoredKey>()
  const revoked = new Set<string>()
  const read = (record: StoredKey): StoredKey => ({ ...record, revoked: revoked.has(record.keyId) })
  return keyRegistry(
    {
      find: (keyId) => {
        const record = records.get(keyId)
        return record ? read(record) : null
      },
      put: (record) => {
        const { revoked: _, ...rest } = record
        records.set(record.keyId, rest)
      },
      revoke: (keyId) => void revoked.add(keyId),
      scan: () => Array.from(records.values(), read),
    },
    options,
  )
}

/** Options of {@link apiKeyIdentity}. */
export interface ApiKeyIdentityOptions {
  /**
   * Header carrying the key: `authorization` (as `Bearer <key>`) or any other header (raw value).
   * @default 'authorization'
   * @example 'x-api-key'
   */
  header?: string
  /**
   * Subject dimension the key's id is added under (a grant's own value wins), or `false` for none.
   * A rotated key keeps the id of the key it replaced there, so per-key limits go on counting.
   * @default 'key'
   * @example false // the grant's subject alone
   */
  keyDimension?: string | false
}

const refusal401 = (code: string, message: string): IdentityRefusal => ({
  ok: false,
  code,
  status: 401,
  message,
})

/**
 * Identity from an API key looked up in a registry: a missing or unknown key is refused with 401
 * `unauthenticated`, an expired key with 401 `key_expired`, a rotated key past its grace period
 * with 401 `key_rotated`, a revoked key with 403 `key_revoked`. The subject is the grant's, plus the key id as `key`;
 * attributes are the grant's plus `plan` and `environment`.
 *
 * @example
 * app.use(tollgate({ gate, identify: apiKeyIdentity(keys) }))
 */
export function apiKeyIdentity(
  registry: Pick<KeyRegistry, 'verify'>,
  given?: ApiKeyIdentityOptions,
): Identify {
  const options = given ?? {} // a JS caller's null is no options, as undefined is
  if (typeof registry?.verify !== 'function')
    throw new TypeError('apiKeyIdentity: registry must have a verify() method (a key registry)')
  const header = options.header ?? 'authorization'
  checkHeaderName('apiKeyIdentity', 'header', header)
  const dimension = options.keyDimension ?? 'key'
  if (dimension !== false && (typeof dimension !== 'string' || dimension.length === 0))
    throw new TypeError(
      `apiKeyIdentity: keyDimension must be a dimension name or false, got ${typeof dimension === 'string' ? '""' : typeof dimension}`,
    )
  const missing =
    header.toLowerCase() === 'authorization'
      ? 'Missing API key: send it as "Authorization: Bearer <key>".'
      : `Missing API key: send it in the "${header}" header.`
  return async (request) => {
    const key = credential(request, header)
    if (key === null) return unauthenticated(missing)
    const check = await registry.verify(key)
    if (check.status === 'unknown') return unauthenticated('Invalid API key.')
    if (check.status === 'revoked') return forbidden('key_revoked', 'This API key has been revoked.')
    if (check.status === 'expired')
      return refusal401('key_expired', `This API key expired at ${when(check.expiresAt)}.`)
    if (check.status === 'rotated')
      return refusal401(
        'key_rotated',
        `This API key was replaced by a rotation and its grace period ended at ${when(check.graceUntil)}; use the new key.`,
      )
    const { grant } = check
    // the key's first id, kept through rotations: a rotated key goes on counting under its limits
    const subject = dimension === false ? grant.subject : { [dimension]: check.lineage, ...grant.subject }
    const attributes: Record<string, Attributes[string]> = { ...grant.attributes }
    if (grant.plan !== undefined) attributes.plan = grant.plan
    if (grant.environment !== undefined) attributes.environment = grant.environment
    return identified(subject, attributes, grant.features)
  }
}
