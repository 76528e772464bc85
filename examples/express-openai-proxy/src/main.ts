/**
 * Runs the proxy: `UPSTREAM_URL` (default https://api.openai.com) with `OPENAI_API_KEY`, on `PORT`
 * (default 8787). Keys live in memory here and one is issued at start; use `redisKeyRegistry`
 * from `@tollgate/web/redis` (and `redisStore` from `@tollgate/redis`) to share them between processes.
 */
import { createTollgate } from '@tollgate/core'
import { memoryKeyRegistry } from '@tollgate/web'
import { policy } from './policy.js'
import { createProxy } from './proxy.js'

const keys = memoryKeyRegistry()
const { key } = await keys.issue({ subject: { tenant: 'demo', user: 'you' }, plan: 'starter' })
const app = createProxy({
  gate: createTollgate({ policy }),
  keys,
  upstreamUrl: process.env.UPSTREAM_URL ?? 'https://api.openai.com',
  upstreamKey: process.env.OPENAI_API_KEY,
})
const port = Number(process.env.PORT ?? 8787)
app.listen(port, () => {
  console.log(`OpenAI-compatible proxy on http://localhost:${port}/v1`)
  console.log(`  OPENAI_BASE_URL=http://localhost:${port}/v1 OPENAI_API_KEY=${key}`)
})
