/**
 * The Edge route's gate and identity. On the Edge runtime there is no TCP: counters live in a
 * store server (`storeHandler` in front of Redis, see docs/http.md) reached with `fetch` through
 * `httpStore`, and callers carry a JWT from the app's auth upstream (stateless: nothing per isolate).
 * Both are built on first use, so `next build` needs none of the secrets.
 *
 * Environment: TOLLGATE_STORE_URL, TOLLGATE_STORE_SECRET (at least 32 bytes), IDENTITY_JWT_SECRET.
 */
import { createTollgate, definePolicy, type Tollgate } from '@tollgate/core'
import { httpStore } from '@tollgate/http'
import { type Identify, signedIdentity } from '@tollgate/web'

export const edgePolicy = definePolicy({
  models: {
    'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
    'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
  },
  plans: { free: { models: ['tier:low'] } },
  rules: [
    { id: 'user-rpm', per: 'user', limits: { requests: 3 }, window: '60s' },
    { id: 'project-daily-tokens', per: 'project', limits: { tokens: 50_000 }, window: 'day' },
    // a money cap fails closed: with the store server unreachable, the route answers 503
    { id: 'project-monthly-budget', per: 'project', limits: { cost: 20 }, window: 'month' },
  ],
})

function env(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

let gate: Tollgate | undefined
let identify: Identify | undefined

/** The gate on the shared store server; each store call is bounded so a slow server costs ≤ 300 ms. */
export function edgeGate(): Tollgate {
  gate ??= createTollgate({
    policy: edgePolicy,
    store: httpStore({
      url: env('TOLLGATE_STORE_URL'),
      secret: env('TOLLGATE_STORE_SECRET'),
      timeoutMs: 300,
    }),
    timeoutMs: 500,
  })
  return gate
}

/** HS256 JWTs with `sub` (the user), `project` and `plan` claims, issued for audience `tollgate`. */
export function edgeIdentify(): Identify {
  identify ??= signedIdentity({ jwt: { secret: env('IDENTITY_JWT_SECRET'), audience: 'tollgate' } })
  return identify
}
