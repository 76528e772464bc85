/**
 * Redis time of the lean reserve script (`fast`), this checkout's against another's, side by side:
 * the measuring tool for changes to the Lua of issue 3. Not part of `pnpm bench`.
 *
 * It replays one six-counter reserve (the memory suite's policy: user, team and org rules, each with
 * requests and tokens over calendar minutes, 1000 users) straight through `EVALSHA`, no gate and no
 * client work, in pipelined blocks of 200. Each round runs every script on an empty key space under
 * its own prefix (deleted after), in alternating order, and reads `INFO commandstats` (which it
 * resets): Redis µs per call. Prints, per script, the median over the rounds, and the median of the
 * rounds' ratios `other / this` (above 1: this checkout's script is cheaper). Also prints where this
 * checkout's script spends its time: the commands it runs inside, per call.
 *
 *   npx tsx bench/redis-scripts.ts [<other checkout>]   # e.g. a `git worktree add /tmp/base main`
 *
 * `ROUNDS` (default 15) and `CALLS` (per script and round, default 2000). `PARTS=1` adds this
 * checkout's script cut short after each of its parts (prelude, block and override names with their
 * `MGET`, skew check, look, hold, record; the full script also indexes the record), so that the
 * differences between rows are what each part costs. `BENCH_REDIS_URL`, default
 * redis://127.0.0.1:6379. The machine's speed drifts by up to 2× within minutes: trust the ratio of
 * alternating rounds, not one script's figure against another run's.
 */
import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import { SCRIPTS } from '../packages/redis/src/scripts.js'
import { deleteMatching } from './keys.mjs'

type Scripts = { fast: string }

const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ROUNDS = Number(process.env.ROUNDS ?? 15)
const CALLS = Number(process.env.CALLS ?? 2000)
const other = process.argv[2]
const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false })
await client.connect()
const run = `tgscripts-${randomUUID().slice(0, 8)}`

const scripts: Record<string, string> = { this: SCRIPTS.fast }
if (process.env.PARTS) {
  // this checkout's script cut short (`do return 1 end`) before each part, to see what each part costs
  const full = SCRIPTS.fast
  const cut = (marker: string) => {
    const at = full.lastIndexOf(marker) // the lean path (the general fallback holds a copy too)
    if (at < 0) throw new Error(`redis-scripts: the lean reserve has no "${marker}" any more`)
    return `${full.slice(0, at)}do return 1 end\n${full.slice(at)}`
  }
  scripts['to: prelude'] = cut('local id, ttl, meta = ARGV[6]')
  scripts['to: names, MGET'] = cut('-- Skew: the window')
  scripts['to: skew'] = cut('-- Look at every counter')
  scripts['to: look'] = cut('if not refused then')
  scripts['to: hold'] = cut('  local key = recordKey(id)')
  scripts['to: record'] = cut('  index(key, id, expiresAt')
}
if (other) {
  const path = pathToFileURL(resolve(other, 'packages/redis/src/scripts.ts')).href
  scripts.other = ((await import(path)) as { SCRIPTS: Scripts }).SCRIPTS.fast
}
// The same arguments to a script that does nothing: what receiving them costs.
scripts['return 1'] = 'return 1'

/** The arguments the store sends for call `i` of a six-counter reserve under `prefix` (see codec.ts). */
function args(prefix: string, i: number): (string | number)[] {
  const minute = Math.floor(Date.now() / 60_000) * 60_000
  const bounds = [minute - 60_000, minute, minute + 60_000, minute + 120_000].join(',')
  const ids = { user: `user-${i % 1000}`, team: `team-${i % 50}`, org: `org-${i % 5}` }
  const meta = '{"model":"","amounts":{"requests":1,"inputTokens":100,"outputTokens":100,"tokens":200}}'
  const out: (string | number)[] = [
    1,
    `{${prefix}}:x`,
    '',
    prefix,
    3_600_000,
    86_400_000,
    25,
    `id${i}`,
    600_000,
  ]
  out.push(meta, 3, `org=${ids.org}`, `team=${ids.team}`, `user=${ids.user}`, 6)
  for (const dimension of ['user', 'team', 'org'] as const)
    for (const [metric, amount, cap] of [
      ['requests', 1, 1e9],
      ['tokens', 200, 1e12],
    ] as const)
      out.push(
        `${dimension}:${metric}:${dimension}=${ids[dimension]}`,
        `{${prefix}}`,
        metric,
        amount,
        cap,
        'k1',
        bounds,
      )
  return out
}

const deleteKeys = (pattern: string) => deleteMatching(client, pattern)

/** Runs `CALLS` calls of one script; answers the `INFO commandstats` rows, µs per call of the script. */
async function measure(sha: string, prefix: string) {
  await client.config('RESETSTAT')
  for (let i = 0; i < CALLS; i += 200) {
    const pipeline = client.pipeline()
    for (let j = i; j < Math.min(i + 200, CALLS); j++) pipeline.evalsha(sha, ...(args(prefix, j) as [number]))
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error
  }
  const stats: Record<string, { calls: number; usec: number }> = {}
  for (const line of (await client.info('commandstats')).split('\n')) {
    const m = /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line)
    if (m) stats[m[1]!] = { calls: Number(m[2]) / CALLS, usec: Number(m[3]) / CALLS }
  }
  await deleteKeys(`*${prefix}*`)
  return stats
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!

try {
  const shas = Object.fromEntries(
    await Promise.all(
      Object.entries(scripts).map(async ([name, text]) => [name, String(await client.script('LOAD', text))]),
    ),
  )
  const names = Object.keys(shas)
  const usec: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]))
  let inside: Record<string, { calls: number; usec: number }> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const stats = await measure(shas[name]!, `${run}-${round}-${name.replace(/\W/g, '')}`)
      usec[name]!.push(stats.evalsha?.usec ?? Number.NaN)
      if (name === 'this') inside = stats
    }
  }
  console.log(`lean six-counter reserve, Redis µs per call, medians of ${ROUNDS} rounds of ${CALLS} calls`)
  for (const name of names) console.log(`  ${name.padEnd(18)} ${median(usec[name]!).toFixed(1).padStart(7)}`)
  if (usec.other) {
    const ratios = usec.other.map((x, i) => x / usec.this![i]!)
    console.log(
      `  other / this: median ${median(ratios).toFixed(3)} (rounds from ${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)})`,
    )
  }
  console.log("this checkout's script, last round: commands inside it, per call (calls, µs)")
  for (const [command, { calls, usec: time }] of Object.entries(inside))
    if (command !== 'evalsha')
      console.log(`  ${command.padEnd(16)} ${calls.toFixed(2).padStart(5)} ${time.toFixed(2).padStart(7)}`)
} finally {
  await deleteKeys(`*${run}*`)
  client.disconnect()
}
