/**
 * The memory suite's interleaved comparison in a process of its own (`memory.ts` starts it): the
 * headline (Tollgate reserve+settle on `memoryStore()`) and rate-limiter-flexible's six sequential
 * consumes in alternating chunks of 50,000 iterations, after two warm-up chunks each. Prints JSON:
 * the median of the per-pair ratios and each side's median rate.
 *
 * A process of its own because what a process ran before changes the code V8 compiles for the
 * headline: after the suite's other tasks it ran 10–15% slower (bench/README.md, "What a process
 * ran before"). Both sides start from the same fresh process.
 *
 *   npx --yes pnpm@10 build && node bench/interleaved.mjs [pairs, default 16]
 *
 * `BENCH_BEFORE=mixed` first runs other paths on gates of their own (`otherPaths` in headline.mjs),
 * to see what a process's history costs the headline.
 */
import { createRequire } from 'node:module'
import { gateChunk, otherPaths, rlfChunk } from './headline.mjs'

const require = createRequire(import.meta.url)
const lib = await import(new URL('../packages/core/dist/index.js', import.meta.url).href)
const { RateLimiterMemory } = require('rate-limiter-flexible')

const CHUNK = 50_000
if (process.env.BENCH_BEFORE === 'mixed') await otherPaths(lib)
const pairs = Number(process.argv[2] ?? 16)
const tollgate = gateChunk(lib, CHUNK)
const rlf = rlfChunk(RateLimiterMemory, CHUNK)
/** Iterations per second of one chunk. */
const timed = async (chunk) => {
  const started = performance.now()
  await chunk()
  return (CHUNK / (performance.now() - started)) * 1000
}
for (let i = 0; i < 2; i++) {
  await tollgate()
  await rlf()
}
const rates = []
for (let i = 0; i < pairs; i++) rates.push([await timed(tollgate), await timed(rlf)])
const median = (values) => values.sort((a, b) => a - b)[values.length >> 1]
console.log(
  JSON.stringify({
    ratio: median(rates.map(([t, r]) => t / r)),
    tollgate: median(rates.map(([t]) => t)),
    rlf: median(rates.map(([, r]) => r)),
  }),
)
