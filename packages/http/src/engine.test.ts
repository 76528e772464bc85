/**
 * The engine over `httpStore` decides as over the memory store it reaches: the long mixed run of the
 * Redis tests (every kind of window, alerts, breakers, budgets, throttles, shadow rules, settles,
 * releases, duplicates and usage reads, time moving on), played side by side on a memory store and on
 * `httpStore → storeHandler(memoryStore)` over real HTTP, then again with hostile ids.
 */
import { memoryStore } from '@tollgate/core'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { hostileNames, mixedRun } from '../../redis/src/test/mixed.js'
import { httpStore } from './client.js'
import { SECRET, startServer, type TestServer } from './test/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe('the engine over HTTP', () => {
  it('decides exactly as on the memory store over a long mixed run', { timeout: 60_000 }, async () => {
    await mixedRun((clock) =>
      httpStore({ url: server.mount(memoryStore({ clock })), secret: SECRET, clockMaxAgeMs: 0 }),
    )
  })

  it('decides the same with hostile ids', { timeout: 60_000 }, async () => {
    await mixedRun(
      (clock) => httpStore({ url: server.mount(memoryStore({ clock })), secret: SECRET, clockMaxAgeMs: 0 }),
      (id) => hostileNames[id]!,
    )
  })
})
