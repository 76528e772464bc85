import { type ErrorBody, signedIdentity, type UsageReport } from '@tollgate/web'
import { Hono } from 'hono'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { testGate } from '../../web/src/test/fixtures.js'
import { type TollgateEnv, tollgate, usageRoute } from './index.js'

const secret = 'hono-usage-secret-of-32-bytes-or-more!'
const dashboard = 'https://dash.example.com'

function setup() {
  const { gate, clock } = testGate()
  const identify = signedIdentity({ jwt: { secret }, clock })
  const app = new Hono<TollgateEnv>()
  app.post(
    '/v1/chat',
    tollgate({ gate, identify, model: 'gpt-4o-mini', estimate: { inputTokens: 100, maxOutputTokens: 200 } }),
    async (c) =>
      c.json(
        await c.get('tollgate').run(({ report }) => {
          report({ inputTokens: 70, outputTokens: 30 })
          return { ok: true }
        }),
      ),
  )
  const usage = usageRoute(gate, {
    identify,
    cors: [dashboard],
    admin: { authorize: ({ identity }) => identity.attributes.plan === 'staff' },
  })
  app.on(['GET', 'OPTIONS'], '/v1/usage', usage)
  app.post('/v1/usage', usage)
  const token = (claims: { sub: string; tenant: string; plan?: string }) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(clock.now() / 1000) + 60)
      .sign(new TextEncoder().encode(secret))
  const headers = async (claims?: { sub: string; tenant: string; plan?: string }, extra = {}) => ({
    ...(claims ? { authorization: `Bearer ${await token(claims)}` } : {}),
    ...extra,
  })
  return { app, gate, clock, headers }
}

const u1 = { sub: 'u1', tenant: 't1' }
const u2 = { sub: 'u2', tenant: 't2' }
const staff = { sub: 'ops', tenant: 'ops', plan: 'staff' }
const tokens = (report: UsageReport) => report.limits.find((l) => l.rule === 'user-daily')!

describe('@tollgate/hono usageRoute (in-process)', () => {
  it('shows what settled requests used and what is left; only for the caller', async () => {
    const { app, headers, clock } = setup()
    for (let i = 0; i < 2; i++) {
      const chat = await app.request('/v1/chat', { method: 'POST', headers: await headers(u1) })
      expect(chat.status).toBe(200)
    }
    const response = await app.request('/v1/usage', { headers: await headers(u1) })
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const report = (await response.json()) as UsageReport
    expect(report.subject).toEqual({ user: 'u1', tenant: 't1' })
    expect(tokens(report)).toMatchObject({ used: 200, held: 0, remaining: 1800 })
    expect(report.limits.find((l) => l.rule === 'user-rpm')).toMatchObject({ used: 2, remaining: 1 })

    const other = (await (
      await app.request('/v1/usage', { headers: await headers(u2) })
    ).json()) as UsageReport
    expect(other.subject).toEqual({ user: 'u2', tenant: 't2' })
    expect(tokens(other).used).toBe(0)

    clock.advance('61s')
    const later = (await (
      await app.request('/v1/usage', { headers: await headers(u1) })
    ).json()) as UsageReport
    expect(later.limits.find((l) => l.rule === 'user-rpm')).toMatchObject({ used: 0, remaining: 3 })
  })

  it('admin mode refuses without approval and reports the named subject with it', async () => {
    const { app, headers } = setup()
    await app.request('/v1/chat', { method: 'POST', headers: await headers(u1) })
    const query = '/v1/usage?subject.user=u1&subject.tenant=t1'
    const refused = await app.request(query, { headers: await headers(u2) })
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as ErrorBody).error.code).toBe('subject_not_allowed')
    const approved = await app.request(query, { headers: await headers(staff) })
    expect(approved.status).toBe(200)
    expect(tokens((await approved.json()) as UsageReport).used).toBe(100)
  })

  it('401 without identity, 405 on POST, CORS only for allowed origins', async () => {
    const { app, headers } = setup()
    const missing = await app.request('/v1/usage', { headers: { origin: dashboard } })
    expect(missing.status).toBe(401)
    expect(missing.headers.get('access-control-allow-origin')).toBe(dashboard)
    expect((await app.request('/v1/usage', { method: 'POST', headers: await headers(u1) })).status).toBe(405)
    const evil = await app.request('/v1/usage', {
      headers: await headers(u1, { origin: 'https://evil.example' }),
    })
    expect(evil.status).toBe(200)
    expect(evil.headers.get('access-control-allow-origin')).toBeNull()
    const preflight = await app.request('/v1/usage', { method: 'OPTIONS', headers: { origin: dashboard } })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe(dashboard)
  })
})
