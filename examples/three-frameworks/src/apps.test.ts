/**
 * The three frameworks answer alike: the same random sequence of requests (good, unknown and missing
 * API keys, any model, any output allowance, usage within and beyond the estimate, time moving on)
 * goes to the Express app over a real HTTP server, to the Hono app with `app.request`, and to the
 * Next.js route handler; every status, rate-limit header and body must be the same, and so must
 * each user's usage afterwards. Each app has its own gate on a memory store with a fake clock.
 */
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTollgate, type PolicyInput, type Subject, type Tollgate } from '@tollgate/core'
import { type FakeClock, fakeClock } from '@tollgate/core/testing'
import { apiKeyIdentity, memoryKeyRegistry } from '@tollgate/web'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChatBody, expressApp, honoApp, nextRoute } from './apps.js'

const policy: PolicyInput = {
  models: {
    'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
    'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
  },
  rules: [
    { id: 'user-rpm', per: 'user', limits: { requests: 4 }, window: '60s' },
    { id: 'user-daily', per: 'user', limits: { tokens: 3_000 }, window: 'day' },
    { id: 'tenant-budget', per: 'tenant', limits: { cost: 0.01 }, window: 'month' },
    { id: 'frontier-day', match: { tier: 'frontier' }, per: 'user', limits: { requests: 2 }, window: 'day' },
  ],
}
const users: Subject[] = [
  { tenant: 't1', user: 'u1' },
  { tenant: 't1', user: 'u2' },
]
const keys = memoryKeyRegistry()
let issued: string[]
let server: Server | undefined

beforeAll(async () => {
  issued = await Promise.all(users.map(async (subject) => (await keys.issue({ subject })).key))
})
/** Closes the Express app's server and its keep-alive connections (fetch keeps them open). */
const stop = () => {
  server?.closeAllConnections()
  server?.close()
}
afterAll(stop)

interface Step {
  who: 0 | 1 | 'unknown' | 'none'
  body: ChatBody | 'not json'
  advanceMs: number
}
const step: fc.Arbitrary<Step> = fc.record({
  who: fc.constantFrom<Step['who']>(0, 0, 1, 'unknown', 'none'),
  body: fc.oneof(
    {
      weight: 9,
      arbitrary: fc.record(
        {
          model: fc.constantFrom('gpt-4o-mini', 'gpt-4o', 'no-such-model'),
          max_tokens: fc.integer({ min: 0, max: 1_500 }),
          use: fc.record({ inputTokens: fc.nat(400), outputTokens: fc.nat(1_500) }),
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: fc.constant('not json' as const) },
  ),
  advanceMs: fc.constantFrom(0, 0, 1_000, 20_000, 61_000),
})

/**
 * The headers a client reads from any of the three (the rest is each framework's own), with the media
 * type of `content-type` only (Express adds `; charset=utf-8`).
 */
const shown = (headers: Headers) =>
  Object.fromEntries(
    [...headers]
      .filter(([name]) => /^(ratelimit|x-ratelimit|retry-after|content-type)/.test(name))
      .map(([name, value]) => [name, name === 'content-type' ? value.split(';')[0] : value])
      .sort(),
  )

interface Side {
  gate: Tollgate
  clock: FakeClock
  send(init: RequestInit): Promise<Response>
}

async function sides(): Promise<Record<'express' | 'hono' | 'next', Side>> {
  const make = () => {
    const clock = fakeClock('2026-03-10T09:00:00Z')
    return { clock, gate: createTollgate({ policy, clock }) }
  }
  const identify = apiKeyIdentity(keys)
  const e = make()
  stop()
  server = expressApp(e.gate, identify).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const h = make()
  const hono = honoApp(h.gate, identify)
  const n = make()
  const POST = nextRoute(n.gate, identify)
  return {
    express: { ...e, send: (init) => fetch(`${base}/v1/chat`, init) },
    hono: { ...h, send: async (init) => hono.request('/v1/chat', init) },
    next: {
      ...n,
      send: (init) => POST(new Request('http://localhost/v1/chat', init), { params: Promise.resolve({}) }),
    },
  }
}

describe('one route on Express, Hono and Next.js', () => {
  it('answers every request alike, and counts alike', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const apps = await sides()
        for (const [i, s] of steps.entries()) {
          const key = s.who === 'unknown' ? 'tg_not_a_key' : s.who === 'none' ? null : issued[s.who]!
          const init = (): RequestInit => ({
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(key ? { authorization: `Bearer ${key}` } : {}),
            },
            body: s.body === 'not json' ? '{"model": ' : JSON.stringify(s.body),
          })
          const answers = []
          for (const [name, side] of Object.entries(apps)) {
            side.clock.advance(s.advanceMs)
            const res = await side.send(init())
            const text = await res.text()
            answers.push({
              name,
              status: res.status,
              headers: shown(res.headers),
              body: text && JSON.parse(text),
            })
          }
          const [first, ...rest] = answers
          for (const other of rest)
            expect(
              { ...other, name: first!.name },
              `step ${i}: ${other.name} against ${first!.name}`,
            ).toEqual(first)
        }
        const usage = await Promise.all(
          Object.values(apps).map(async ({ gate }) =>
            Promise.all(users.map((subject) => gate.usage({ subject }))),
          ),
        )
        expect(usage[1]).toEqual(usage[0])
        expect(usage[2]).toEqual(usage[0])
      }),
      { numRuns: 40 },
    )
  }, 60_000)
})
