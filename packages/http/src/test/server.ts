/**
 * Test helpers: a real `node:http` server on port 0 serving store handlers, one per path prefix
 * (`/s/<n>`), so each test gets a fresh store behind the same server and connection pool.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Store } from '@tollgate/core'
import { type StoreHandlerOptions, storeHandler } from '../handler.js'
import { toNodeListener } from '../node.js'

export const SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz'

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  origin: string
  server: Server
  /** Serves `store` under a fresh prefix; answers the store's base URL. */
  mount(store: Store, options?: Partial<StoreHandlerOptions>): string
  /** Closes the server and every open connection. */
  close(): Promise<void>
}

export async function startServer(): Promise<TestServer> {
  const handlers = new Map<string, (request: Request) => Promise<Response>>()
  const server = createServer(
    toNodeListener(async (request) => {
      const [, s, n] = new URL(request.url).pathname.split('/')
      const handler = handlers.get(`/${s}/${n}`)
      return handler ? handler(request) : new Response('no such store', { status: 404 })
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  let n = 0
  return {
    origin,
    server,
    mount(store, options = {}) {
      const prefix = `/s/${++n}`
      handlers.set(prefix, storeHandler(store, { secret: SECRET, ...options }))
      return `${origin}${prefix}`
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
