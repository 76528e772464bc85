/**
 * Two builds of `@tollgate/core` and rate-limiter-flexible in one process, in alternating chunks:
 * the headline task of the memory suite (six limits, reserve+settle) on each build, and RLF's six
 * consumes, 50,000 iterations a chunk, `ROUNDS` (12) rounds; prints the median of the per-round
 * ratios, which the machine's drift over minutes does not skew. See bench/README.md.
 *
 *   node bench/ab-memory.mjs <other build's dist/index.js>   # e.g. a git worktree at the base commit
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { gateChunk, rlfChunk } from './headline.mjs'

const require = createRequire(import.meta.url)
const other = process.argv[2]
if (!other) {
  console.error('usage: node bench/ab-memory.mjs <path to another build of packages/core/dist/index.js>')
  process.exit(2)
}
const A = await import(pathToFileURL(other).href)
const B = await import(new URL('../packages/core/dist/index.js', import.meta.url).href)
const { RateLimiterMemory } = require('rate-limiter-flexible')

const CHUNK = 50_000

const tasks = {
  other: gateChunk(A, CHUNK),
  this: gateChunk(B, CHUNK),
  rlf: rlfChunk(RateLimiterMemory, CHUNK),
}
const timed = async (f) => {
  const started = performance.now()
  await f()
  return (CHUNK / (performance.now() - started)) * 1000
}
for (const f of Object.values(tasks)) {
  await f()
  await f()
}
const rounds = Number(process.env.ROUNDS ?? 12)
const rates = { other: [], this: [], rlf: [] }
for (let r = 0; r < rounds; r++)
  for (const name of Object.keys(tasks)) rates[name].push(await timed(tasks[name]))
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
const ratio = (a, b) => median(rates[a].map((x, i) => x / rates[b][i])).toFixed(3)
const per = (name) => `${Math.round(median(rates[name])).toLocaleString('en-US')}/s`
console.log(`other ${per('other')}, this ${per('this')}, rlf ${per('rlf')} (medians of ${rounds} rounds)`)
console.log(
  `this/other ${ratio('this', 'other')}, other/rlf ${ratio('other', 'rlf')}, this/rlf ${ratio('this', 'rlf')}`,
)
