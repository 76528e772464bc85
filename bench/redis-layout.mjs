/**
 * How much Redis time one six-counter reserve could cost under another key layout: a probe for the
 * next step of issue 3, not a store. It runs, in alternating rounds at 64 concurrent loops:
 *
 * - `store`: the real `redisStore` reserve through a gate (the memory suite's six-limit policy);
 * - `layout: record per key`: a lean script doing a reserve's Redis work with one hash per tag
 *   and calendar window for all six counters (one `HMGET`, one `HSET`), one control hash per tag
 *   for block markers and overrides (one `HMGET`), and the record as its own key (hash, `PEXPIRE`)
 *   indexed in a sorted set, as today;
 * - `layout: record in a tag hash`: the same, with the record as one field of a hash per tag;
 * - `rlf 6× consume`: rate-limiter-flexible's six `RateLimiterRedis.consume` calls for the same six
 *   limits, awaited one after another (the benchmark's comparison), so that every row's ratio to it
 *   comes from the same run.
 *
 * The probe scripts leave out what a real reserve also does (the skew check, breakers, alerts,
 * exact answers, expiring what is due), so their figures are a floor for that layout, not a
 * promise. Prints Redis µs per call (every command in `INFO commandstats`) and calls per second for each,
 * the medians over `ROUNDS` (default 3) rounds. Resets the Redis command statistics. Keys live under
 * a prefix unique to the run and are deleted at the end.
 *
 *   npx --yes pnpm@10 build && node bench/redis-layout.mjs     # BENCH_REDIS_URL, default redis://127.0.0.1:6379
 */
import { randomUUID } from 'node:crypto'
import { createTollgate } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import Redis from 'ioredis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { consumeSix, estimate, limits, policy, sixLimiters, subjects } from './headline.mjs'
import { deleteMatching } from './keys.mjs'

const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const client = new Redis(url, {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  lazyConnect: true,
})
client.on('error', () => {})
await client.connect()
const run = `tgprobe-${randomUUID().slice(0, 8)}`
const LOOPS = 64
const CALLS = 1_500 // per loop and round

const PROBE = /* lua */ `
local call, tonumber, floor, unpack = redis.call, tonumber, math.floor, unpack
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
-- ARGV: tag, id, ttlMs, number of block markers, markers..., number of counters,
-- then per counter: field, amount, cap, window start; then the window's end
local T, INDEX = ARGV[1], KEYS[1]
call('ZRANGEBYSCORE', INDEX, '-inf', now, 'LIMIT', 0, 16) -- what is due (nothing, here)
local id, ttl, nb = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5 + nb])
local base = 6 + nb
local names = {}
for i = 1, nb do names[i] = 'b:' .. ARGV[4 + i] end
local q = base
for i = 1, n do
  names[nb + i] = 'o:' .. ARGV[q]
  q = q + 4
end
local control = call('HMGET', T .. ':c', unpack(names))
for i = 1, nb do
  if control[i] then return { 'blocked', now, i - 1, control[i] } end
end
local stop = tonumber(ARGV[base + 4 * n])
local window = T .. ':w:' .. ARGV[base + 3]
local fields = {}
q = base
for i = 1, n do
  fields[2 * i - 1], fields[2 * i] = 'u' .. ARGV[q], 'h' .. ARGV[q]
  q = q + 4
end
local v = call('HMGET', window, unpack(fields))
local reply, sets, refused = { 'ok', now }, {}, false
q = base
for i = 1, n do
  local u, h = tonumber(v[2 * i - 1]) or 0, tonumber(v[2 * i]) or 0
  local amount, cap = tonumber(ARGV[q + 1]), tonumber(control[nb + i]) or tonumber(ARGV[q + 2])
  if u + amount > cap then refused = true end
  reply[#reply + 1], reply[#reply + 1], reply[#reply + 1] = cap, u + amount, h + amount
  sets[4 * i - 3], sets[4 * i - 2], sets[4 * i - 1], sets[4 * i] = fields[2 * i - 1], u + amount, fields[2 * i], h + amount
  q = q + 4
end
if refused then return { 'denied', now } end
call('HSET', window, unpack(sets))
call('PEXPIRE', window, stop - now + 60000, 'NX')
local expiresAt = now + ttl
local entries = table.concat(ARGV, ',', base, base + 4 * n - 1)
if RECORD_IN_TAG_HASH then
  call('HSET', T .. ':r', id, 'held,' .. expiresAt .. ',' .. entries)
  call('PEXPIRE', T .. ':r', ttl + 600000, 'GT')
else
  local record = T .. ':r:' .. id
  call('HSET', record, 's', 'held', 'e', expiresAt, 'x', entries)
  call('PEXPIRE', record, ttl + 600000)
end
call('ZADD', INDEX, expiresAt, id)
return reply
`

function storeTask() {
  const gate = createTollgate({ policy, store: redisStore({ client, prefix: `${run}-store` }) })
  return async (k, i) => {
    const d = await gate.reserve({ subject: subjects[(k * CALLS + i) % 1000], estimate })
    if (!d.allowed) throw new Error(`refused: ${d.code}`)
  }
}

async function probeTask(recordInTagHash) {
  const sha = await client.script('LOAD', PROBE.replace('RECORD_IN_TAG_HASH', String(recordInTagHash)))
  let next = 0
  return async (k, i) => {
    const s = subjects[(k * CALLS + i) % 1000]
    const minute = Math.floor(Date.now() / 60_000) * 60_000
    const tag = `{${run}-probe:${s.org}}`
    const args = [tag, `id${next++}`, 600_000, 3, `u:${s.user}`, `t:${s.team}`, `o:${s.org}`, 6]
    for (const d of ['user', 'team', 'org'])
      args.push(
        `${d}:${s[d]}:requests`,
        1,
        limits.requests,
        minute,
        `${d}:${s[d]}:tokens`,
        200,
        limits.tokens,
        minute,
      )
    args.push(minute + 60_000)
    const reply = await client.evalsha(sha, 1, `${tag}:x`, ...args)
    if (reply[0] !== 'ok') throw new Error(`refused: ${reply}`)
  }
}

function rlfTask() {
  const six = sixLimiters(RateLimiterRedis, { storeClient: client }, `${run}-rlf`)
  return (k, i) => consumeSix(six, subjects[(k * CALLS + i) % 1000])
}

async function measure(call) {
  await client.config('RESETSTAT')
  const started = performance.now()
  await Promise.all(
    Array.from({ length: LOOPS }, async (_, k) => {
      for (let i = 0; i < CALLS; i++) await call(k, i)
    }),
  )
  const seconds = (performance.now() - started) / 1000
  let total = 0
  for (const [, command, us] of (await client.info('commandstats')).matchAll(
    /cmdstat_(\w+):calls=\d+,usec=(\d+)/g,
  ))
    if (command !== 'config' && command !== 'info') total += Number(us)
  return { rate: (LOOPS * CALLS) / seconds, usec: total / (LOOPS * CALLS) }
}

const cleanup = () => deleteMatching(client, `*${run}*`)

try {
  const tasks = {
    store: storeTask(),
    'layout: record per key': await probeTask(false),
    'layout: record in a tag hash': await probeTask(true),
    'rlf 6× consume': rlfTask(),
  }
  for (const call of Object.values(tasks)) await measure(call) // warm-up
  const rounds = Number(process.env.ROUNDS ?? 3)
  const results = Object.fromEntries(Object.keys(tasks).map((name) => [name, []]))
  for (let r = 0; r < rounds; r++)
    for (const [name, call] of Object.entries(tasks)) results[name].push(await measure(call))
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
  console.log(`six-counter reserves, ${LOOPS} loops, medians of ${rounds} rounds`)
  for (const [name, list] of Object.entries(results)) {
    const usec = median(list.map((x) => x.usec)).toFixed(1)
    const rate = Math.round(median(list.map((x) => x.rate))).toLocaleString('en-US')
    console.log(`  ${name.padEnd(30)} Redis ${usec.padStart(6)} µs/call   ${rate.padStart(7)}/s`)
  }
  const rate = (name) => median(results[name].map((x) => x.rate))
  for (const name of Object.keys(tasks).slice(0, -1))
    console.log(`  ${name} / rlf 6× consume: ${(rate(name) / rate('rlf 6× consume')).toFixed(2)}×`)
} finally {
  await cleanup()
  client.disconnect()
}
