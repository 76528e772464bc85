/**
 * @tollgate/web — Tollgate on web `Request`/`Response`: identity (API keys, signed assertions,
 * trusted headers), refusals as OpenAI-shaped responses with retry headers, rate-limit headers on
 * every response, and per-request holds settled when the response body ends. The Express, Hono and
 * Next.js adapters are thin layers over it; fetch-style runtimes can use `gateFetch` directly.
 *
 * @example
 * import { apiKeyIdentity, gateFetch, memoryKeyRegistry } from '@tollgate/web'
 * const keys = memoryKeyRegistry()
 * const handler = gateFetch(async (request, tollgate) => Response.json(await chat(tollgate.model)), {
 *   gate,
 *   identify: apiKeyIdentity(keys),
 * })
 */
export type {
  HandleRunContext,
  ResponseTap,
  SettleEvent,
  SettleReason,
  TollgateHandle,
} from './handle.js'
export { type HeaderIdentityOptions, headerIdentity } from './identity/header.js'
export type { CryptoKey, JSONWebKeySet, JWK, JWTPayload } from './identity/jwt-types.js'
export {
  type AddOptions,
  type ApiKeyIdentityOptions,
  apiKeyIdentity,
  type IssueOptions,
  type KeyCheck,
  type KeyFilter,
  type KeyGrant,
  type KeyInfo,
  type KeyRegistry,
  type KeyRegistryOptions,
  type KeyStorage,
  keyIdOf,
  keyRegistry,
  memoryKeyRegistry,
  type RotateOptions,
  type StoredKey,
} from './identity/keys.js'
export {
  type MemoryNonceStoreOptions,
  memoryNonceStore,
  type NonceStore,
  NonceStoreFullError,
} from './identity/nonces.js'
export {
  type Assertion,
  defaultClaims,
  type HmacIdentityOptions,
  type JwtIdentityOptions,
  type SignedIdentityOptions,
  type SignIdentityOptions,
  signedIdentity,
  signIdentity,
} from './identity/signed.js'
export {
  credential,
  forbidden,
  type Identify,
  type Identity,
  type IdentityRefusal,
  type IdentityResult,
  identified,
  unauthenticated,
} from './identity/types.js'
export { type EventMeter, type StreamMeter, sseMeter } from './meter.js'
export { checkGate, checkTollgateOptions } from './options.js'
export {
  type Admission,
  type Admitted,
  type FromRequest,
  handleRequest,
  type Refused,
  readJson,
  type TollgateOptions,
} from './request.js'
export {
  denialBody,
  denialResponse,
  type ErrorBody,
  errorResponse,
  errorType,
  type HeaderConfig,
  refusalResponse,
  selectHeaders,
  withHeaders,
} from './responses.js'
export { finishResponse, type GatedHandler, gateFetch, tapBody } from './stream.js'
export {
  type UsageAdminOptions,
  type UsageAdminRequest,
  type UsageCorsOptions,
  type UsageHandlerOptions,
  type UsageLimit,
  type UsageReport,
  usageHandler,
} from './usage.js'
