import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { memoryStore } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { storeHandler } from '@tollgate/http'
import { toNodeListener } from '@tollgate/http/node'
import { SignJWT } from 'jose'
import { NextRequest } from 'next/server.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { edgeGate } from '../../../lib/edge.js'
import { POST, runtime } from './route.js'

// the store server a team runs next to Redis; here a memory store on a fake clock, on port 0
const STORE_SECRET = 'edge-example-store-secret-0123456789abcdef'
const JWT_SECRET = 'edge-example-jwt-secret-0123456789abcdefgh'
const clock = fakeClock()
const store = memoryStore({ clock })
let server: Server

beforeAll(async () => {
  server = createServer(toNodeListener(storeHandler(store, { secret: STORE_SECRET })))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  process.env.TOLLGATE_STORE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tollgate`
  process.env.TOLLGATE_STORE_SECRET = STORE_SECRET
  process.env.IDENTITY_JWT_SECRET = JWT_SECRET
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const token = (claims: Record<string, string>) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setAudience('tollgate')
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET))

const context = { params: Promise.resolve({}) }
const chat = async (jwt: string | null, body: object) =>
  POST(
    new NextRequest('http://localhost/api/edge-chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
      body: JSON.stringify(body),
    }),
    context,
  )

describe('examples/next-app-router: POST /api/edge-chat (Edge runtime, httpStore)', () => {
  it('runs on the Edge runtime', () => {
    expect(runtime).toBe('edge')
  })

  it('answers a signed-in user with rate-limit headers; the counters live in the store server', async () => {
    const jwt = await token({ sub: 'u-answer', project: 'p-edge', plan: 'pro' })
    const response = await chat(jwt, { prompt: 'hello edge', model: 'gpt-4o' })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ model: 'gpt-4o', reply: '(gpt-4o) You said: hello edge' })
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('2')
    expect(response.headers.get('ratelimit-policy')).toContain('"user-rpm.requests";q=3;w=60')
    const usage = await edgeGate().usage({ subject: { project: 'p-edge', user: 'u-answer' } })
    expect(usage.find((s) => s.rule === 'project-daily-tokens')).toMatchObject({
      used: 9 + 5,
      held: 0,
      resetAt: Date.parse('2026-01-06T00:00:00Z'), // the store server's (fake) clock, not this process's
    })
  })

  it('refuses no token (401), a premium model on the free plan (403), and the 4th request a minute (429)', async () => {
    expect((await chat(null, { prompt: 'hi' })).status).toBe(401)
    const free = await token({ sub: 'u-free', project: 'p-free', plan: 'free' })
    expect(await (await chat(free, { prompt: 'hi', model: 'gpt-4o' })).json()).toMatchObject({
      error: { code: 'model_not_allowed' },
    })
    const jwt = await token({ sub: 'u-busy', project: 'p-busy', plan: 'pro' })
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await chat(jwt, { prompt: 'hi' })).status)
    expect(statuses).toEqual([200, 200, 200, 429])
    clock.advance('90s') // the store server's time moves on: the rolling minute has passed
    expect((await chat(jwt, { prompt: 'hi' })).status).toBe(200)
  })

  it("runs without AbortSignal.any, as in Next.js 15.5's Edge sandbox", async () => {
    const any = AbortSignal.any
    try {
      Reflect.deleteProperty(AbortSignal, 'any')
      const jwt = await token({ sub: 'u-sandbox', project: 'p-sandbox', plan: 'pro' })
      const response = await chat(jwt, { prompt: 'hi' })
      expect(response.status).toBe(200)
      expect(await response.json()).toMatchObject({ reply: '(gpt-4o-mini) You said: hi' })
    } finally {
      AbortSignal.any = any
    }
  })

  it('with the store server gone, the budget fails closed: 503 store_unavailable, within the timeouts', async () => {
    const jwt = await token({ sub: 'u-down', project: 'p-down', plan: 'pro' })
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    const started = Date.now()
    const response = await chat(jwt, { prompt: 'hi' })
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(response.status).toBe(503)
    expect(await response.json()).toMatchObject({ error: { code: 'store_unavailable' } })
    server = createServer() // afterAll closes something
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  })
})
