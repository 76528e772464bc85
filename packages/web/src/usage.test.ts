import type { LimitState, Tollgate } from '@tollgate/core'
import { describe, expect, it, vi } from 'vitest'
import { apiKeyIdentity, type KeyGrant, memoryKeyRegistry } from './identity/keys.js'
import { identified } from './identity/types.js'
import { handleRequest } from './request.js'
import type { ErrorBody } from './responses.js'
import { testGate, testPolicy } from './test/fixtures.js'
import {
  type UsageAdminRequest,
  type UsageHandlerOptions,
  type UsageLimit,
  type UsageReport,
  usageHandler,
} from './usage.js'

const u1 = { tenant: 't1', user: 'u1' }
const u2 = { tenant: 't2', user: 'u2' }
const policy = {
  ...testPolicy,
  rules: [
    ...testPolicy.rules!,
    {
      id: 'user-frontier',
      per: 'user',
      match: { model: 'gpt-4o' },
      limits: { requests: 5 },
      window: 'day' as const,
    },
  ],
}

async function setup(options: Partial<UsageHandlerOptions> = {}) {
  const { gate, clock } = testGate(policy)
  const keys = memoryKeyRegistry()
  const issue = async (grant: KeyGrant) => (await keys.issue(grant)).key
  const k1 = await issue({ subject: u1, features: ['chat'] })
  const k2 = await issue({ subject: u2 })
  const admin = await issue({ subject: { tenant: 'ops', user: 'root' }, attributes: { role: 'admin' } })
  const identify = apiKeyIdentity(keys, { keyDimension: false })
  const usage = usageHandler(gate, { identify, ...options })
  const get = (query = '', key: string | null = k1, init: RequestInit = {}) =>
    usage(
      new Request(`http://x/v1/usage${query}`, {
        ...init,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
      }),
    )
  return { gate, clock, keys, k1, k2, admin, identify, usage, get }
}

const body = async (response: Response) => (await response.json()) as UsageReport
const limit = (report: UsageReport, rule: string, metric: string): UsageLimit => {
  const found = report.limits.find((l) => l.rule === rule && l.metric === metric)
  if (!found) throw new Error(`no ${rule}.${metric} in ${JSON.stringify(report.limits)}`)
  return found
}

/** Two requests for u1: one settled with 100 tokens and $0.25, one still held (300 tokens). */
async function spend(gate: Tollgate) {
  const estimate = { inputTokens: 100, maxOutputTokens: 200 }
  const first = await gate.reserve({ subject: u1, model: 'gpt-4o-mini', estimate })
  if (!first.allowed) throw new Error('refused')
  await gate.settle(first.reservation.id, { inputTokens: 90, outputTokens: 10, cost: 250_000 })
  const second = await gate.reserve({ subject: u1, model: 'gpt-4o-mini', estimate })
  if (!second.allowed) throw new Error('refused')
}

describe('usageHandler: the caller’s own usage', () => {
  it('shows used, held, remaining and reset after reserved and settled requests', async () => {
    const { gate, clock, get } = await setup()
    const before = await body(await get())
    expect(limit(before, 'user-daily', 'tokens')).toMatchObject({ used: 0, remaining: 2000 })

    await spend(gate)
    const response = await get()
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const report = await body(response)
    expect(report.subject).toEqual(u1)
    expect(report.currency).toBe('USD')
    expect(limit(report, 'user-rpm', 'requests')).toMatchObject({
      kind: 'rolling',
      limit: 3,
      used: 2,
      held: 1,
      remaining: 1,
      windowMs: 60_000,
      shadow: false,
      partition: { user: 'u1' },
    })
    // 100 settled + 300 held (100 in, 200 out)
    expect(limit(report, 'user-daily', 'tokens')).toMatchObject({
      kind: 'calendar',
      limit: 2000,
      used: 400,
      held: 300,
      remaining: 1600,
      resetAt: Date.parse('2026-01-06T00:00:00Z'),
    })
    const budget = limit(report, 'tenant-budget', 'cost')
    expect(budget.partition).toEqual({ tenant: 't1' })
    expect(budget.limit).toBe(1_000_000) // micro-units, as core counts them
    expect(budget.limitAmount).toBe(1)
    expect(budget.used - budget.held).toBe(250_000)
    expect(budget.usedAmount).toBe(budget.used / 1_000_000)
    expect(budget.remainingAmount).toBe(budget.remaining / 1_000_000)
    expect(limit(report, 'user-daily', 'tokens')).not.toHaveProperty('usedAmount')

    // the rolling window moves on with the (fake) clock
    clock.advance('61s')
    expect(limit(await body(await get()), 'user-rpm', 'requests')).toMatchObject({ used: 0, remaining: 3 })
  })

  it('HEAD answers the headers without a body', async () => {
    const { get } = await setup()
    const response = await get('', undefined, { method: 'HEAD' })
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(await response.text()).toBe('')
  })

  it('selects rules by ?model= and ?feature=, and refuses a feature the key may not use', async () => {
    const { get, k2 } = await setup()
    const rules = async (query: string, key?: string) =>
      (await body(await get(query, key))).limits.map((l) => l.rule)
    expect(await rules('')).toContain('user-frontier') // no model: every rule that may apply
    expect(await rules('?model=gpt-4o')).toContain('user-frontier')
    expect(await rules('?model=gpt-4o-mini')).not.toContain('user-frontier')
    expect((await get('?feature=chat')).status).toBe(200)
    const refused = await get('?feature=images')
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as ErrorBody).error.code).toBe('feature_not_allowed')
    expect((await get('?feature=images', k2)).status).toBe(200) // k2 may use every feature
  })

  it('passes through every field gate.usage returns, with amounts for money', async () => {
    const { gate } = await setup()
    const extended: Tollgate = {
      ...gate,
      usage: async (request) =>
        (await gate.usage(request)).map((l) => ({
          ...l,
          utilization: 0.5,
          projected: 3_000_000,
          custom: 'x',
        })),
    }
    const identify = () => identified(u1)
    const report = await body(await usageHandler(extended, { identify })(new Request('http://x/usage')))
    const budget = limit(report, 'tenant-budget', 'cost')
    expect(budget).toMatchObject({ utilization: 0.5, projected: 3_000_000, projectedAmount: 3, custom: 'x' })
    expect(limit(report, 'user-daily', 'tokens')).toMatchObject({ utilization: 0.5, projected: 3_000_000 })
    expect(limit(report, 'user-daily', 'tokens')).not.toHaveProperty('projectedAmount')

    const include = (l: LimitState) => l.metric === 'cost'
    const filtered = await body(
      await usageHandler(extended, { identify, include })(new Request('http://x/usage')),
    )
    expect(filtered.limits.map((l) => l.rule)).toEqual(['tenant-budget'])
  })
})

describe('usageHandler: options', () => {
  it('refuses options that cannot work when it is made (each request threw a TypeError)', async () => {
    const { gate } = testGate(policy)
    const identify = apiKeyIdentity(memoryKeyRegistry())
    const bad: [Partial<UsageHandlerOptions>, RegExp][] = [
      [{ cors: { origins: 'https://a.example' as never } }, /cors origins must be a list/],
      [{ cors: { origins: null as never } }, /cors origins must be a list/],
      [{ cors: ['https://a.example', 5 as never] }, /cors origins must be a list/],
      [{ cors: 'https://a.example' as never }, /cors must be a list of origins/],
      [{ cors: { origins: [], allowHeaders: 'authorization' as never } }, /allowHeaders must be a list/],
      [{ cors: { origins: [], allowHeaders: ['bad header'] } }, /cors.allowHeaders must be a header name/],
      [{ cors: { origins: [], maxAgeSeconds: Number.NaN } }, /maxAgeSeconds must be a whole number/],
      [{ cors: { origins: [], credentials: 'yes' as never } }, /credentials must be true or false/],
      [{ admin: {} as never }, /admin must be \{ authorize/],
      [{ include: 'shadow' as never }, /include must be a function/],
      [{ onError: console as never }, /onError must be a function/],
    ]
    for (const [options, message] of bad)
      expect(() => usageHandler(gate, { identify, ...options }), String(message)).toThrow(message)
    expect(() =>
      usageHandler(gate, { identify, cors: { origins: (o) => o.endsWith('.example') } }),
    ).not.toThrow()
  })
})

describe('usageHandler: refusals', () => {
  it('answers a missing or bad identity with the same 401/403 as the gated routes', async () => {
    const { gate, get, identify, keys, k2 } = await setup()
    const middleware = (key: string | null) =>
      handleRequest(
        new Request('http://x/chat', { headers: key ? { authorization: `Bearer ${key}` } : {} }),
        { gate, identify },
      ).then((a) => (a.allowed ? null : a.response))
    for (const key of [null, 'tg_not-a-key']) {
      const response = await get('', key)
      const expected = (await middleware(key))!
      expect(response.status).toBe(401)
      expect(await response.json()).toEqual(await expected.json())
      expect(response.headers.get('x-should-retry')).toBe('false')
      expect(response.headers.get('cache-control')).toBe('no-store')
    }
    const [record] = await keys.list({ subject: u2 })
    await keys.revoke(record!.keyId)
    const revoked = await get('', k2)
    expect(revoked.status).toBe(403)
    expect(((await revoked.json()) as ErrorBody).error.code).toBe('key_revoked')
  })

  it('answers 503 when identity or the store fails, without the store’s message', async () => {
    const onError = vi.fn()
    const { gate, get } = await setup({ onError, identify: () => Promise.reject(new Error('redis down')) })
    const down = await get()
    expect(down.status).toBe(503)
    expect(((await down.json()) as ErrorBody).error.code).toBe('identity_unavailable')
    const broken: Tollgate = { ...gate, usage: () => Promise.reject(new Error('secret host 10.0.0.7')) }
    const store = await usageHandler(broken, { identify: () => identified(u1), onError })(
      new Request('http://x/usage'),
    )
    expect(store.status).toBe(503)
    expect(await store.text()).not.toContain('10.0.0.7')
    expect(onError).toHaveBeenCalledTimes(2)
  })

  it('answers 405 to any method but GET and HEAD', async () => {
    const { get } = await setup()
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const response = await get('', undefined, { method })
      expect(response.status).toBe(405)
      expect(response.headers.get('allow')).toBe('GET, HEAD')
      expect(((await response.json()) as ErrorBody).error.code).toBe('method_not_allowed')
    }
  })
})

describe('usageHandler: other subjects', () => {
  it('a caller sees only its own subject, and cannot name another without admin mode', async () => {
    const { gate, get, k2 } = await setup()
    await spend(gate)
    const own = await body(await get('', k2))
    expect(own.subject).toEqual(u2)
    expect(JSON.stringify(own)).not.toMatch(/u1|t1/)
    expect(limit(own, 'user-daily', 'tokens').used).toBe(0)
    for (const query of ['?subject.user=u1', '?subject.user=u1&subject.tenant=t1', '?attributes.plan=pro']) {
      const refused = await get(query, k2)
      expect(refused.status).toBe(403)
      const text = await refused.text()
      expect((JSON.parse(text) as ErrorBody).error.code).toBe('subject_not_allowed')
      expect(text).not.toMatch(/"used"/)
    }
  })

  it('admin mode reports the named subject only when authorize approves', async () => {
    const authorize = vi.fn(({ identity }: UsageAdminRequest) => identity.attributes.role === 'admin')
    const { gate, get, k1, k2, admin } = await setup({ admin: { authorize } })
    await spend(gate)
    const refused = await get('?subject.user=u1&subject.tenant=t1', k2)
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as ErrorBody).error.code).toBe('subject_not_allowed')
    expect(authorize).toHaveBeenCalledOnce()
    expect(authorize.mock.calls[0]![0]).toMatchObject({
      identity: { subject: u2 },
      subject: u1,
      attributes: {},
    })

    const approved = await get('?subject.user=u1&subject.tenant=t1&attributes.plan=pro', admin)
    expect(approved.status).toBe(200)
    const report = await body(approved)
    expect(report.subject).toEqual(u1)
    expect(limit(report, 'user-daily', 'tokens')).toMatchObject({ used: 400, held: 300 })
    expect(authorize.mock.calls[1]![0]).toMatchObject({ subject: u1, attributes: { plan: 'pro' } })

    // without a named subject, an admin sees its own usage and authorize is not asked
    expect((await body(await get('', admin))).subject).toEqual({ tenant: 'ops', user: 'root' })
    expect(authorize).toHaveBeenCalledTimes(2)
    // a partial subject reports the rules it partitions
    const team = await body(await get('?subject.tenant=t1', admin))
    expect(team.limits.map((l) => l.rule)).toEqual(['tenant-budget'])
    // the caller's own key still reports its own subject
    expect((await body(await get('', k1))).subject).toEqual(u1)
  })

  it('admin mode: only `true` approves; a throw is a 503; malformed subjects are a 400', async () => {
    const onError = vi.fn()
    let answer: unknown = 'yes'
    const { get } = await setup({
      onError,
      admin: {
        authorize: () => {
          if (answer instanceof Error) throw answer
          return answer as boolean
        },
      },
    })
    expect((await get('?subject.user=u1')).status).toBe(403) // truthy is not approval
    answer = new Error('auth service down')
    expect((await get('?subject.user=u1')).status).toBe(503)
    expect(onError).toHaveBeenCalledOnce()
    answer = true
    expect((await get('?subject.user=u1')).status).toBe(200)
    for (const query of [
      '?subject.user=',
      '?subject.=u1',
      '?subject.user=u1&subject.user=u2',
      '?subject.__proto__=x&subject.user=u1',
      '?attributes.plan=pro',
    ])
      expect((await get(query)).status, query).toBe(400)
  })

  it('admin mode does not accept an unidentified caller', async () => {
    const authorize = vi.fn(() => true)
    const { get } = await setup({ admin: { authorize } })
    expect((await get('?subject.user=u1', null)).status).toBe(401)
    expect(authorize).not.toHaveBeenCalled()
  })
})

describe('usageHandler: CORS', () => {
  const dashboard = 'https://dash.example.com'

  it('sends CORS headers only to allowed origins, also on refusals', async () => {
    const { get } = await setup({ cors: [dashboard] })
    const allowed = await get('', undefined, { headers: { origin: dashboard } })
    expect(allowed.status).toBe(200)
    expect(allowed.headers.get('access-control-allow-origin')).toBe(dashboard)
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull()
    expect(allowed.headers.get('vary')).toMatch(/origin/i)
    const other = await get('', undefined, { headers: { origin: 'https://evil.example' } })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
    expect(other.headers.get('vary')).toMatch(/origin/i)
    const none = await get()
    expect(none.headers.get('access-control-allow-origin')).toBeNull()
    const unauthenticated = await get('', null, { headers: { origin: dashboard } })
    expect(unauthenticated.status).toBe(401)
    expect(unauthenticated.headers.get('access-control-allow-origin')).toBe(dashboard)
  })

  it('answers preflights for allowed origins only', async () => {
    const { get } = await setup({
      cors: { origins: (origin) => origin.endsWith('.example.com'), credentials: true, maxAgeSeconds: 60 },
    })
    const preflight = await get('', null, {
      method: 'OPTIONS',
      headers: { origin: dashboard, 'access-control-request-method': 'GET' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe(dashboard)
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true')
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, HEAD')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')
    expect(preflight.headers.get('access-control-max-age')).toBe('60')
    const refused = await get('', null, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } })
    expect(refused.status).toBe(403)
    expect(refused.headers.get('access-control-allow-origin')).toBeNull()
    const post = await get('', undefined, { method: 'POST', headers: { origin: dashboard } })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS')
  })

  it('an origins function allows an origin only when it answers exactly true, never a truthy value', async () => {
    // an async function (a Promise), a regex match or a count allowed every origin, with credentials
    const answers: [string, (origin: string) => unknown][] = [
      ['a Promise of false', async () => false],
      ['a Promise of true', async () => true],
      ['a match', (origin) => origin.match(/evil/)],
      ['1', () => 1],
      ['"true"', () => 'true'],
      ['an object', () => ({})],
    ]
    for (const [what, origins] of answers) {
      const { get } = await setup({ cors: { origins: origins as never, credentials: true } })
      const response = await get('', undefined, { headers: { origin: 'https://evil.example' } })
      expect(response.status, what).toBe(200)
      expect(response.headers.get('access-control-allow-origin'), what).toBeNull()
      expect(response.headers.get('access-control-allow-credentials'), what).toBeNull()
      const preflight = await get('', null, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
      })
      expect(preflight.status, what).toBe(403)
      expect(preflight.headers.get('access-control-allow-origin'), what).toBeNull()
    }
    const { get } = await setup({ cors: { origins: (origin) => origin === dashboard, credentials: true } })
    const allowed = await get('', undefined, { headers: { origin: dashboard } })
    expect(allowed.headers.get('access-control-allow-origin')).toBe(dashboard)
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true')
  })

  it('without cors, no CORS headers at all', async () => {
    const { get } = await setup()
    const response = await get('', undefined, { headers: { origin: dashboard } })
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
    expect(response.headers.get('vary')).toBeNull()
  })
})

/** Compile-time: the report's limits are `LimitState`s. */
export type _Check = UsageLimit extends LimitState ? true : never
