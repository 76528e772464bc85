/**
 * API-key-bound identity (SPEC §9, the strongest mode): a registry that stores only SHA-256
 * hashes of keys, compares digests in constant time, maps each key to its subject and
 * attributes, and refuses a revoked key on the next lookup in every process sharing the storage.
 */
import type { Attributes, Subject } from '@tollgate/core'
import { equalDigests, fromHex, sha256, toBase64Url, toHex } from './digest.js'
import { credential, forbidden, type Identify, identified, unauthenticated } from './types.js'

/** What a key grants: who it speaks for and what it may do. */
export interface KeyGrant {
  /**
   * Subject dimensions, e.g. tenant, project and owner. The key id is added as `key` (see
   * `apiKeyIdentity`'s `keyDimension`).
   * @example { tenant: 'acme', project: 'chatbot', user: 'u-42' }
   */
  subject: Subject
  /** Plan, as the `plan` attribute. @example 'starter' */
  plan?: string
  /** Environment, as the `environment` attribute. @example 'production' */
  environment?: string
  /**
   * Features the key may use; a request for any other feature is refused with 403.
   * @default every feature
   * @example ['chat', 'embeddings']
   */
  features?: readonly string[]
  /** More attributes for policy matching. @example { region: 'eu' } */
  attributes?: Attributes
  /** A label for people, never used for matching. @example 'CI key' */
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
  /** Set by the storage when the key was revoked. */
  revoked?: boolean
}

/** Where stored keys live; implement it to keep keys in your own database. */
export interface KeyStorage {
  /** The stored key with this id (with `revoked` set when it was revoked), or `null`. */
  find(keyId: string): Promise<StoredKey | null> | StoredKey | null
  put(record: StoredKey): Promise<void> | void
  /** Refuse the key from now on, in every process reading this storage. */
  revoke(keyId: string): Promise<void> | void
}

/** Options of `KeyRegistry.issue`. */
export interface IssueOptions {
  /** Text before the random part, to make keys recognisable (and findable by secret scanners). @default 'tg_' @example 'sk_live_' */
  prefix?: string
}

/** The outcome of checking a presented key. */
export type KeyCheck =
  | { status: 'active'; keyId: string; grant: KeyGrant }
  | { status: 'revoked'; keyId: string }
  | { status: 'unknown' }

export interface KeyRegistry extends KeyStorage {
  /**
   * Create a random key (32 bytes, base64url) and store its hash. The key is returned once.
   * @example const { key, keyId } = await keys.issue({ subject: { tenant: 'acme' }, plan: 'starter' })
   */
  issue(grant: KeyGrant, options?: IssueOptions): Promise<{ key: string; keyId: string }>
  /** Store the hash of an existing key (at least 20 characters: short keys could be guessed from their hash). */
  add(key: string, grant: KeyGrant): Promise<{ keyId: string }>
  /** Check a presented key: constant-time comparison of SHA-256 digests. */
  verify(key: string): Promise<KeyCheck>
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
export function keyRegistry(storage: KeyStorage): KeyRegistry {
  async function store(key: string, grant: KeyGrant) {
    const keyId = await keyIdOf(key)
    await storage.put({ keyId, hash: toHex(await sha256(key)), grant, createdAt: Date.now() })
    return keyId
  }
  return {
    find: (keyId) => storage.find(keyId),
    put: (record) => storage.put(record),
    revoke: (keyId) => storage.revoke(keyId),
    async issue(grant, options = {}) {
      const key = `${options.prefix ?? 'tg_'}${toBase64Url(crypto.getRandomValues(new Uint8Array(32)))}`
      return { key, keyId: await store(key, grant) }
    },
    async add(key, grant) {
      if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH || key.length > MAX_KEY_LENGTH)
        throw new TypeError(`an API key has ${MIN_KEY_LENGTH} to ${MAX_KEY_LENGTH} characters`)
      return { keyId: await store(key, grant) }
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
      return record.revoked ? { status: 'revoked', keyId } : { status: 'active', keyId, grant: record.grant }
    },
  }
}

/**
 * Keys in this process's memory; revocation applies at once. For one process, tests and
 * development; use `redisKeyRegistry` from `@tollgate/web/redis` to share keys between processes.
 *
 * @example
 * const keys = memoryKeyRegistry()
 * const { key } = await keys.issue({ subject: { tenant: 'acme' }, plan: 'starter', environment: 'production' })
 */
export function memoryKeyRegistry(): KeyRegistry {
  const records = new Map<string, StoredKey>()
  return keyRegistry({
    find: (keyId) => {
      const record = records.get(keyId)
      return record ? { ...record } : null
    },
    put: (record) => void records.set(record.keyId, { ...record }),
    revoke: (keyId) => {
      const record = records.get(keyId)
      if (record) record.revoked = true
    },
  })
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
   * Subject dimension the key id is added under (a grant's own value wins), or `false` for none.
   * @default 'key'
   * @example false // the grant's subject alone
   */
  keyDimension?: string | false
}

/**
 * Identity from an API key looked up in a registry: a missing or unknown key is refused with 401,
 * a revoked key with 403 `key_revoked`. The subject is the grant's, plus the key id as `key`;
 * attributes are the grant's plus `plan` and `environment`.
 *
 * @example
 * app.use(tollgate({ gate, identify: apiKeyIdentity(keys) }))
 */
export function apiKeyIdentity(
  registry: Pick<KeyRegistry, 'verify'>,
  options: ApiKeyIdentityOptions = {},
): Identify {
  const header = options.header ?? 'authorization'
  const dimension = options.keyDimension ?? 'key'
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
    const { grant } = check
    const subject = dimension === false ? grant.subject : { [dimension]: check.keyId, ...grant.subject }
    const attributes: Record<string, Attributes[string]> = { ...grant.attributes }
    if (grant.plan !== undefined) attributes.plan = grant.plan
    if (grant.environment !== undefined) attributes.environment = grant.environment
    return identified(subject, attributes, grant.features)
  }
}
