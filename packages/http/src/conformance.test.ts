/**
 * The core store conformance suite against `httpStore`, over real HTTP, served by a
 * `storeHandler(memoryStore({ clock }))` in this process: the suite's fake clock drives the
 * memory store on the server side, and `clockMaxAgeMs: 0` makes `now()` ask the server each time.
 */
import { memoryStore } from '@tollgate/core'
import { describeStoreConformance } from '@tollgate/core/testing'
import { afterAll, beforeAll } from 'vitest'
import { httpStore } from './client.js'
import { SECRET, startServer, type TestServer } from './test/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describeStoreConformance(
  'httpStore → storeHandler(memoryStore)',
  (clock) => httpStore({ url: server.mount(memoryStore({ clock })), secret: SECRET, clockMaxAgeMs: 0 }),
  { numRuns: 50 },
)
