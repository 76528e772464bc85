import { apiKeyIdentity, memoryKeyRegistry, type UsageReport } from '@tollgate/web'
import { NextRequest } from 'next/server.js'
import { describe, expect, it } from 'vitest'
import { testGate } from '../../web/src/test/fixtures.js'
import { usageRoute, withTollgate } from './index.js'

const u1 = { tenant: 't1', user: 'u1' }
const dashboard = 'https://dash.example.com'

async function setup() {
  const { gate, clock } = testGate()
  const keys = memoryKeyRegistry()
  const identify = apiKeyIdentity(keys, { keyDimension: false })
  const k1 = (await keys.issue({ subject: u1 })).key
  const k2 = (await keys.issue({ subject: { tenant: 't2', user: 'u2' } })).key
  const admin = (
    await keys.issue({ subject: { tenant: 'ops', user: 'root' }, attributes: { role: 'admin' } })
  ).key
  const POST = withTollgate(
    async (_request, { tollgate }) =>
      Response.json(
        await tollgate.run(({ report }) => {
          report({ inputTokens: 50, outputTokens: 50 })
          return { ok: true }
        }),
      ),
    { gate, identify, model: 'gpt-4o-mini', estimate: { inputTokens: 100, maxOutputTokens: 200 } },
  )
  const GET = usageRoute(gate, {
    identify,
    cors: { origins: [dashboard] },
    admin: { authorize: ({ identity }) => identity.attributes.role === 'admin' },
  })
  const request = (
    path: string,
    key: string | null,
    init: { method?: string; headers?: Record<string, string> } = {},
  ) =>
    new NextRequest(`http://localhost${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
    })
  return { gate, clock, k1, k2, admin, POST, GET, request }
}

const tokens = (report: UsageReport) => report.limits.find((l) => l.rule === 'user-daily')!

describe('@tollgate/next usageRoute (App Router GET handler)', () => {
  it('shows what settled requests used and what is left; only for the caller', async () => {
    const { POST, GET, request, k1, k2, clock } = await setup()
    const context = { params: Promise.resolve({}) }
    for (let i = 0; i < 3; i++)
      expect((await POST(request('/api/chat', k1, { method: 'POST' }), context)).status).toBe(200)
    const response = await GET(request('/api/usage', k1))
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const report = (await response.json()) as UsageReport
    expect(report.subject).toEqual(u1)
    expect(tokens(report)).toMatchObject({ used: 300, held: 0, remaining: 1700 })
    expect(report.limits.find((l) => l.rule === 'user-rpm')).toMatchObject({ used: 3, remaining: 0 })
    const other = (await (await GET(request('/api/usage', k2))).json()) as UsageReport
    expect(other.subject).toEqual({ tenant: 't2', user: 'u2' })
    expect(tokens(other).used).toBe(0)
    clock.advance('1d')
    expect(tokens((await (await GET(request('/api/usage', k1))).json()) as UsageReport).used).toBe(0)
  })

  it('admin mode refuses without approval and works with it', async () => {
    const { POST, GET, request, k1, k2, admin } = await setup()
    await POST(request('/api/chat', k1, { method: 'POST' }), { params: Promise.resolve({}) })
    const query = '/api/usage?subject.tenant=t1&subject.user=u1'
    expect((await GET(request(query, k2))).status).toBe(403)
    const approved = await GET(request(query, admin))
    expect(approved.status).toBe(200)
    expect(tokens((await approved.json()) as UsageReport).used).toBe(100)
  })

  it('401 without identity, 405 on POST, CORS only for allowed origins', async () => {
    const { GET, request, k1 } = await setup()
    expect((await GET(request('/api/usage', null))).status).toBe(401)
    expect((await GET(request('/api/usage', k1, { method: 'POST' }))).status).toBe(405)
    const allowed = await GET(request('/api/usage', k1, { headers: { origin: dashboard } }))
    expect(allowed.headers.get('access-control-allow-origin')).toBe(dashboard)
    const evil = await GET(request('/api/usage', k1, { headers: { origin: 'https://evil.example' } }))
    expect(evil.headers.get('access-control-allow-origin')).toBeNull()
  })
})
