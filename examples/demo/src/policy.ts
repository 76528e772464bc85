import { definePolicy } from '@tollgate/core'

/** A small SaaS: a free trial, a starter plan with a dollar cap, per-key bursts, a premium model rule. */
export const policy = definePolicy({
  version: 1,
  currency: 'USD',
  models: {
    'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
    'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
    o1: { tier: 'premium', price: { input: 15, output: 60 } },
  },
  plans: { trial: { models: ['tier:low'] } },
  access: [
    { match: { tier: 'premium' }, require: { flags: ['enterprise'] }, otherwise: { downgrade: 'gpt-4o' } },
  ],
  defaults: { alerts: [0.5, 0.9] },
  rules: [
    {
      id: 'trial-tokens',
      match: { plan: 'trial' },
      per: 'workspace',
      limits: { tokens: 15_000 },
      window: 'day',
    },
    {
      id: 'starter-budget',
      match: { plan: 'starter' },
      per: 'workspace',
      limits: { cost: 0.35 },
      window: 'month',
      code: 'plan_allowance_exhausted',
    },
    { id: 'key-burst', per: 'key', limits: { requests: 5 }, window: '60s' },
    { id: 'user-inflight', per: 'user', limits: { concurrency: 2 } },
  ],
})
