/**
 * The app's gate and key registry, created once per server process. In production, share them
 * between instances: `redisStore` from `@tollgate/redis` and `redisKeyRegistry` from
 * `@tollgate/web/redis` (both need the Node.js runtime).
 */
import { createTollgate, definePolicy } from '@tollgate/core'
import { memoryKeyRegistry } from '@tollgate/web'

export const policy = definePolicy({
  models: {
    'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
    'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
  },
  plans: { free: { models: ['tier:low'] } },
  rules: [
    { id: 'key-rpm', per: 'key', limits: { requests: 30 }, window: '60s' },
    { id: 'project-daily-tokens', per: 'project', limits: { tokens: 50_000 }, window: 'day' },
    { id: 'project-monthly-budget', per: 'project', limits: { cost: 20 }, window: 'month' },
  ],
})

export const gate = createTollgate({ policy })
export const keys = memoryKeyRegistry()

/**
 * A key to try the route with: `DEMO_API_KEY=<20 or more characters> next dev` (or `next start`)
 * stores it for a free-plan project; send it as `Authorization: Bearer <key>`. Without it the
 * registry is empty and every request is refused with 401 (issue keys with `keys.issue`).
 */
const demoKey = process.env.DEMO_API_KEY
export const ready = demoKey
  ? keys.add(demoKey, { subject: { project: 'demo', user: 'you' }, plan: 'free', name: 'demo' })
  : Promise.resolve()
