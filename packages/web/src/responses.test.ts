import { type DeniedDecision, TollgateError } from '@tollgate/core'
import { checkRateLimitHeaders } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'
import { unauthenticated } from './identity/types.js'
import { denialResponse, type ErrorBody, errorResponse, refusalResponse, selectHeaders } from './responses.js'
import { testGate } from './test/fixtures.js'

const request = (user: string, extra: object = {}) => ({
  subject: { tenant: 't1', user },
  model: 'gpt-4o-mini',
  estimate: { inputTokens: 100, maxOutputTokens: 100 },
  ...extra,
})

async function denied(reserve: () => Promise<unknown>): Promise<DeniedDecision> {
  const decision = (await reserve()) as DeniedDecision
  expect(decision.allowed).toBe(false)
  return decision
}

describe('denialResponse', () => {
  it('a rate limit: 429 rate_limit_error, retry-after and retry-after-ms, x-should-retry true', async () => {
    const { gate, clock } = testGate()
    for (let i = 0; i < 3; i++) expect((await gate.reserve(request('u1'))).allowed).toBe(true)
    const decision = await denied(() => gate.reserve(request('u1')))
    const response = denialResponse(decision)
    expect(response.status).toBe(429)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await response.json()) as ErrorBody
    expect(body).toEqual({
      error: {
        message: decision.message,
        type: 'rate_limit_error',
        code: 'rate_limited',
        param: null,
        rule: 'user-rpm',
        partition: { user: 'u1' },
        reset_at: new Date(decision.resetAt!).toISOString(),
      },
    })
    expect(Date.parse(body.error.reset_at!)).toBeGreaterThan(clock.now())
    const retryMs = Number(response.headers.get('retry-after-ms'))
    expect(retryMs).toBe(decision.retryAfterMs)
    expect(retryMs).toBeGreaterThan(0)
    expect(response.headers.get('retry-after')).toBe(String(Math.ceil(retryMs / 1000)))
    expect(response.headers.get('x-should-retry')).toBe('true')
    checkRateLimitHeaders(response.headers)
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0')
  })

  it('a used-up daily quota: 429 insufficient_quota, the reset as retry-after, x-should-retry false', async () => {
    const { gate } = testGate()
    const big = { estimate: { inputTokens: 1500, maxOutputTokens: 400 } }
    expect((await gate.reserve(request('u2', big))).allowed).toBe(true)
    const decision = await denied(() => gate.reserve(request('u2')))
    expect(decision.retryAfterMs).toBe(86_400_000) // the fake clock starts at midnight
    const response = denialResponse(decision)
    expect(response.status).toBe(429)
    const body = (await response.json()) as ErrorBody
    expect(body.error).toMatchObject({
      type: 'insufficient_quota',
      code: 'quota_exceeded',
      rule: 'user-daily',
    })
    expect(response.headers.get('x-should-retry')).toBe('false')
    expect(response.headers.get('retry-after')).toBe('86400')
    checkRateLimitHeaders(response.headers)
  })

  it('a budget: 402 insufficient_quota, x-should-retry false', async () => {
    const { gate } = testGate({
      models: { 'gpt-4o': { price: { input: 2.5, output: 10 } } },
      rules: [{ id: 'tenant-budget', per: 'tenant', limits: { cost: 1 }, window: 'month' }],
    })
    const decision = await denied(() =>
      gate.reserve(
        request('u3', { model: 'gpt-4o', estimate: { inputTokens: 500_000, maxOutputTokens: 1000 } }),
      ),
    )
    const response = denialResponse(decision)
    expect(response.status).toBe(402)
    const body = (await response.json()) as ErrorBody
    expect(body.error).toMatchObject({
      type: 'insufficient_quota',
      code: 'budget_exceeded',
      rule: 'tenant-budget',
      partition: { tenant: 't1' },
    })
    expect(response.headers.get('x-should-retry')).toBe('false')
  })

  it('a model rule: 403 permission_error with no retry-after', async () => {
    const { gate } = testGate({
      models: { 'gpt-4o': { tier: 'frontier' }, 'gpt-4o-mini': { tier: 'low' } },
      plans: { free: { models: ['tier:low'] } },
      rules: [{ id: 'rpm', per: 'user', limits: { requests: 10 }, window: '60s' }],
    })
    const decision = await denied(() =>
      gate.reserve(request('u4', { model: 'gpt-4o', attributes: { plan: 'free' } })),
    )
    const response = denialResponse(decision)
    expect(response.status).toBe(403)
    expect(((await response.json()) as ErrorBody).error).toMatchObject({
      type: 'permission_error',
      code: 'model_not_allowed',
      reset_at: null,
    })
    expect(response.headers.get('retry-after')).toBeNull()
    expect(response.headers.get('x-should-retry')).toBe('false')
  })

  it('turns header families off but always keeps retry headers', async () => {
    const { gate } = testGate()
    for (let i = 0; i < 3; i++) await gate.reserve(request('u5'))
    const decision = await denied(() => gate.reserve(request('u5')))
    const names = (config: Parameters<typeof denialResponse>[1]) =>
      [...denialResponse(decision, config).headers.keys()].filter((n) => n !== 'content-type').sort()
    const retry = ['retry-after', 'retry-after-ms', 'x-should-retry']
    expect(names(false)).toEqual(retry)
    expect(names({ openai: false })).toEqual(['ratelimit', 'ratelimit-policy', ...retry])
    expect(names({ ietf: false }).filter((n) => n.startsWith('ratelimit'))).toEqual([])
    expect(names({ ietf: false })).toContain('x-ratelimit-limit-requests')
    expect(selectHeaders({ 'x-custom': '1', ratelimit: 'x' }, false)).toEqual({ 'x-custom': '1' })
  })
})

describe('refusals and errors', () => {
  it('an identity refusal is a 401 OpenAI-shaped body that says not to retry', async () => {
    const response = refusalResponse(unauthenticated('Invalid API key.'))
    expect(response.status).toBe(401)
    expect(response.headers.get('x-should-retry')).toBe('false')
    expect(await response.json()).toEqual({
      error: {
        message: 'Invalid API key.',
        type: 'authentication_error',
        code: 'unauthenticated',
        param: null,
        rule: null,
        partition: null,
        reset_at: null,
      },
    })
  })

  it('a TollgateError keeps its status and code', async () => {
    const response = errorResponse(new TollgateError('invalid_subject', 'rule "x" needs a "user" id'))
    expect(response.status).toBe(400)
    expect(((await response.json()) as ErrorBody).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'invalid_subject',
    })
  })
})
