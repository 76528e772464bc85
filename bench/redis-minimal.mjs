/**
 * The least Redis time a six-counter reserve could take in one Lua script: a probe for issue 3's
 * targets, not a store. In alternating rounds at 64 concurrent loops it runs
 *
 * - `return 1`: the bare `EVALSHA` (the benchmark's floor);
 * - `six reads, six writes`: an all-or-nothing check of six counters (`HGET` each, refuse if any
 *   would pass its cap) and an `HINCRBY` of each; no record, no expiry, no answer;
 * - `… and a TTL each`: the same with a `PEXPIRE` per counter, as any key that must not grow for ever;
 * - `rlf 6× consume`: rate-limiter-flexible's six `RateLimiterRedis.consume` calls for the same six
 *   limits, awaited one after another (the benchmark's comparison, with its client work)
 *
 * over the keys of the memory suite's six-limit workload (1000 users, 50 teams, 5 orgs), and prints
 * Redis µs per call (all commands in `INFO commandstats`, which it resets) and calls per second, medians over `ROUNDS`
 * (default 3). A reservation that can be settled by id also needs its record, its index entry and
 * answers; see docs/redis-performance.md, "How far the targets are". Keys live under a prefix unique to the run
 * and are deleted at the end.
 *
 *   node bench/redis-minimal.mjs     # BENCH_REDIS_URL, default redis://127.0.0.1:6379
 */
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import Redis from 'ioredis'
import { consumeSix, sixLimiters, subjects } from './headline.mjs'
import { deleteMatching } from './keys.mjs'

const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
client.on('error', () => {})
await client.connect()
const run = `tgminimal-${randomUUID().slice(0, 8)}`
const LOOPS = 64
const CALLS = 1_500 // per loop and round

const SIX = /* lua */ `
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'u') or '0') + tonumber(ARGV[i]) > 1e12 then return 0 end
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'u', ARGV[i])
  --TTL
end
return 1`
const scripts = {
  'return 1': 'return 1',
  'six reads, six writes': SIX,
  '… and a TTL each': SIX.replace('--TTL', "redis.call('PEXPIRE', KEYS[i], 120000)"),
}
const { RateLimiterRedis } = createRequire(import.meta.url)('rate-limiter-flexible')
const six = sixLimiters(RateLimiterRedis, { storeClient: client }, `{${run}}`)
const shas = {}
for (const [name, source] of Object.entries(scripts)) shas[name] = await client.script('LOAD', source)

/** One iteration of a task: a six-counter script, or RLF's six consumes. */
const iterations = {
  ...Object.fromEntries(
    Object.entries(shas).map(([name, sha]) => [
      name,
      (s) =>
        client.evalsha(
          sha,
          6,
          ...[s.user, s.team, s.org].flatMap((id) => [`{${run}}:${id}:requests`, `{${run}}:${id}:tokens`]),
          1,
          200,
          1,
          200,
          1,
          200,
        ),
    ]),
  ),
  'rlf 6× consume': (s) => consumeSix(six, s),
}

/** One round of one task: iterations per second and Redis µs per iteration (every command). */
async function round(iteration) {
  await client.config('RESETSTAT')
  let n = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: LOOPS }, async () => {
      for (let c = 0; c < CALLS; c++) await iteration(subjects[n++ % subjects.length])
    }),
  )
  const perSec = n / ((performance.now() - started) / 1000)
  let usec = 0
  for (const [, command, us] of (await client.info('commandstats')).matchAll(
    /cmdstat_(\w+):calls=\d+,usec=(\d+)/g,
  ))
    if (command !== 'config' && command !== 'info') usec += Number(us)
  return { perSec, redisUs: usec / n }
}

const rounds = Number(process.env.ROUNDS ?? 3)
const results = Object.fromEntries(Object.keys(iterations).map((name) => [name, []]))
try {
  for (let r = 0; r < rounds; r++)
    for (const [name, iteration] of Object.entries(iterations)) results[name].push(await round(iteration))
} finally {
  await deleteMatching(client, `{${run}}*`)
  await client.quit()
}
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
console.log(`six counters, ${LOOPS} loops, medians of ${rounds} rounds`)
for (const [name, list] of Object.entries(results)) {
  const us = median(list.map((x) => x.redisUs))
    .toFixed(1)
    .padStart(6)
  const perSec = Math.round(median(list.map((x) => x.perSec)))
    .toLocaleString('en-US')
    .padStart(8)
  console.log(`  ${name.padEnd(24)} Redis ${us} µs/call  ${perSec}/s`)
}
const rate = (name) => median(results[name].map((x) => x.perSec))
for (const name of Object.keys(shas))
  console.log(`  ${name} / rlf 6× consume: ${(rate(name) / rate('rlf 6× consume')).toFixed(2)}×`)
