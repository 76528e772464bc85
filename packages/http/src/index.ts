/**
 * @tollgate/http — Tollgate's store over HTTP. `storeHandler(store, { secret })` serves any store
 * (the Redis store, the memory store) as a web `(Request) => Response` handler; `httpStore({ url,
 * secret })` is a store that reaches it with `fetch` and Web Crypto alone, so a gate can run where
 * there is no TCP: Next.js Edge, Vercel Edge, Cloudflare Workers, Deno. Requests and answers are
 * signed with HMAC-SHA256; stale and replayed requests are refused. On Node, mount the handler with
 * `toNodeListener` from `@tollgate/http/node`.
 *
 * @example
 * // store server (Node), next to Redis
 * createServer(toNodeListener(storeHandler(redisStore({ client }), { secret }))).listen(8787)
 * // edge route
 * const gate = createTollgate({ policy, store: httpStore({ url: 'https://store.internal', secret }) })
 */
export { type HttpStore, type HttpStoreOptions, httpStore } from './client.js'
export { HttpStoreError, type HttpStoreErrorCode } from './errors.js'
export { type StoreHandler, type StoreHandlerOptions, storeHandler } from './handler.js'
export type { NonceStore } from './nonces.js'
export { OPERATIONS, type Operation, type Secret, SIGNATURE_HEADER } from './protocol.js'
