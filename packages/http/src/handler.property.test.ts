/**
 * The store server takes bodies from any client that holds the secret, bugs included: whatever
 * value stands anywhere in a real request body of each operation, the server answers (a 4xx when
 * the body is bad), never a 5xx and never a thrown error.
 */
import { createTollgate, memoryStore } from '@tollgate/core'
import { replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { httpStore } from './client.js'
import { storeHandler } from './handler.js'
import { hmacKey, nonce, requestMessage, SIGNATURE_HEADER, sign } from './protocol.js'

const secret = 'a-shared-secret-of-at-least-32-bytes!!'

/** The bodies a gate sends for one reserve, settle, release, usage read, override and block. */
async function realBodies(handler: (request: Request) => Promise<Response>): Promise<[string, unknown][]> {
  const bodies: [string, unknown][] = []
  const store = httpStore({
    url: 'http://store.test/',
    secret,
    fetch: async (input, init) => {
      const url = new URL(input)
      bodies.push([url.pathname, JSON.parse(new TextDecoder().decode(init.body as Uint8Array))])
      return handler(new Request(url, init))
    },
  })
  const gate = createTollgate({
    store,
    policy: {
      models: { m: { price: { input: 1, output: 1 } } },
      rules: [
        { id: 'calendar', per: 'user', limits: { requests: 5, tokens: 1000 }, window: 'minute' },
        { id: 'rolling', per: 'user', limits: { tokens: 1000 }, window: '60s' },
        { id: 'leases', per: 'user', limits: { concurrency: 2 } },
        { id: 'bucket', per: 'user', limits: { tokens: 1000 }, window: { bucket: '1m' } },
        { id: 'budget', per: 'org', limits: { cost: 1 }, window: 'month', alerts: [0.5] },
      ],
    },
  })
  const subject = { user: 'u', org: 'o' }
  const ask = { subject, model: 'm', estimate: { inputTokens: 10, maxOutputTokens: 10 } }
  const settled = await gate.reserve(ask)
  if (settled.allowed) await gate.settle(settled.id, { inputTokens: 5, outputTokens: 5 })
  const released = await gate.reserve(ask)
  if (released.allowed) await gate.release(released.id)
  await gate.usage({ subject })
  await gate.override({ rule: 'calendar', subject, metric: 'requests' }, 9)
  await gate.block('user', 'x', 'blocked')
  return bodies
}

describe('the store server on signed bodies of any shape', () => {
  it('answers every mutation of a real body without a 5xx', { timeout: 60_000 }, async () => {
    const handler = storeHandler(memoryStore(), { secret })
    const bodies = await realBodies(handler)
    expect(new Set(bodies.map(([path]) => path))).toEqual(
      new Set(['/now', '/reserve', '/commit', '/read', '/setOverride', '/block']),
    )
    const key = await hmacKey(secret, 'test')
    const json = fc.anything({ maxDepth: 2 }).map((v) => JSON.parse(JSON.stringify(v) ?? 'null') as unknown)
    await fc.assert(
      fc.asyncProperty(
        fc.nat(bodies.length - 1),
        fc.array(fc.nat(20), { maxLength: 6 }),
        json,
        async (i, at, value) => {
          const [path, body] = bodies[i]!
          const bytes = new TextEncoder().encode(JSON.stringify(replaceAt(body, at, value)) ?? 'null')
          const t = Date.now()
          const n = nonce()
          const mac = await sign(key, requestMessage(path, t, n, bytes))
          const response = await handler(
            new Request(`http://store.test${path}`, {
              method: 'POST',
              body: bytes,
              headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: `t=${t},n=${n},v1=${mac}` },
            }),
          )
          return response.status < 500
        },
      ),
      { numRuns: 2000 },
    )
  })
})
