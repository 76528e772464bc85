/**
 * The proxy's policy: per API key, a request rate; per tenant, a daily token allowance and a
 * monthly dollar budget. Prices come from `@tollgate/llm`'s default table.
 */
import { definePolicy } from '@tollgate/core'
import { withDefaultPrices } from '@tollgate/llm'

export const policy = withDefaultPrices(
  definePolicy({
    rules: [
      { id: 'key-rpm', per: 'key', limits: { requests: 60 }, window: '60s' },
      { id: 'tenant-daily-tokens', per: 'tenant', limits: { tokens: 200_000 }, window: 'day' },
      { id: 'tenant-monthly-budget', per: 'tenant', limits: { cost: 50 }, window: 'month' },
    ],
  }),
)
