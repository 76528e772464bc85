/**
 * The least Redis time a six-counter reserve could take in one Lua script: a probe for issue 3's
 * targets, not a store. In alternating rounds at 64 concurrent loops it runs
 *
 * - `return 1`: the bare `EVALSHA` (the benchmark's floor);
 * - `six reads, six writes`: an all-or-nothing check of six counters (`HGET` each, refuse if any
 *   would pass its cap) and an `HINCRBY` of each; no record, no expiry, no answer;
 * - `… and a TTL each`: the same with a `PEXPIRE` per counter, as any key that must not grow for ever
 *
 * over the keys of the memory suite's six-limit workload (1000 users, 50 teams, 5 orgs), and prints
 * Redis µs per call (`INFO commandstats`, which it resets) and calls per second, medians over `ROUNDS`
 * (default 3). A reservation that can be settled by id also needs its record, its index entry and
 * answers; see docs/redis-performance.md, "How far the targets are". Keys live under a prefix unique to the run
 * and are deleted at the end.
 *
 *   node bench/redis-minimal.mjs     # BENCH_REDIS_URL, default redis://127.0.0.1:6379
 */
import { randomUUID } from 'node:crypto'
import Redis from 'ioredis'
import { subjects } from './headline.mjs'
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
const shas = {}
for (const [name, source] of Object.entries(scripts)) shas[name] = await client.script('LOAD', source)

/** One round of one script: calls per second and Redis µs per call. */
async function round(sha) {
  await client.config('RESETSTAT')
  let n = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: LOOPS }, async () => {
      for (let c = 0; c < CALLS; c++) {
        const s = subjects[n++ % subjects.length]
        const keys = [s.user, s.team, s.org].flatMap((id) => [
          `{${run}}:${id}:requests`,
          `{${run}}:${id}:tokens`,
        ])
        await client.evalsha(sha, 6, ...keys, 1, 200, 1, 200, 1, 200)
      }
    }),
  )
  const perSec = n / ((performance.now() - started) / 1000)
  const [, calls, usec] = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await client.info('commandstats'))
  return { perSec, redisUs: Number(usec) / Number(calls) }
}

const rounds = Number(process.env.ROUNDS ?? 3)
const results = Object.fromEntries(Object.keys(shas).map((name) => [name, []]))
try {
  for (let r = 0; r < rounds; r++)
    for (const [name, sha] of Object.entries(shas)) results[name].push(await round(sha))
} finally {
  await deleteMatching(client, `{${run}}*`)
  await client.quit()
}
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
console.log(`six-counter scripts, ${LOOPS} loops, medians of ${rounds} rounds`)
for (const [name, list] of Object.entries(results)) {
  const us = median(list.map((x) => x.redisUs))
    .toFixed(1)
    .padStart(6)
  const perSec = Math.round(median(list.map((x) => x.perSec)))
    .toLocaleString('en-US')
    .padStart(8)
  console.log(`  ${name.padEnd(24)} Redis ${us} µs/call  ${perSec}/s`)
}
