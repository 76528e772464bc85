/**
 * The memory store's heap under calls that are never settled: `ROUNDS` × 200,000 reservations, each
 * for a new user (one plan, partition and counters per call), a third of them left open, on a store
 * bounded at 20,000 counters and reservations. Prints the heap after each round (after a full GC):
 * it must level off, not grow with the calls. See bench/README.md.
 *
 *   npx --yes pnpm@10 build && node --expose-gc bench/bound-memory.mjs [minute|60s] [lane|general] [rounds]
 */
import { createTollgate, memoryStore } from '../packages/core/dist/index.js'

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc')
  process.exit(2)
}
const [window = 'minute', path = 'lane', rounds = '6'] = process.argv.slice(2)
const limits = { requests: 1e9, tokens: 1e12 }
const policy = {
  rules: ['user', 'team', 'org'].map((d) => ({ id: d, per: d, limits, window })),
  // a per-call cap that never binds turns the memory store's lane off: the general path decides
  ...(path === 'general' ? { caps: [{ maxTokens: 1e12 }] } : {}),
}
const gate = createTollgate({ policy, store: memoryStore({ maxCounters: 20_000, maxReservations: 20_000 }) })
const estimate = { inputTokens: 1, maxOutputTokens: 1 }
for (let round = 0; round < Number(rounds); round++) {
  for (let i = 0; i < 200_000; i++) {
    const n = round * 200_000 + i
    const subject = { org: `o${n % 7}`, team: `t${n % 500}`, user: `u${n}` }
    const decision = await gate.reserve({ subject, estimate })
    if (!decision.allowed) throw new Error(`refused: ${decision.code}`)
    if (i % 3 !== 0) await gate.settle(decision.id, { inputTokens: 1 })
  }
  globalThis.gc()
  const mb = (process.memoryUsage().heapUsed / 1e6).toFixed(1)
  console.log(`${window} ${path}: ${(round + 1) * 200_000} calls, heap ${mb} MB`)
}
