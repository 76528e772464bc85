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
import { alternate, gateChunk, rlfChunk } from './headline.mjs'

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
const rounds = Number(process.env.ROUNDS ?? 12)
const { ratio, per } = await alternate(tasks, CHUNK, rounds)
console.log(`other ${per('other')}, this ${per('this')}, rlf ${per('rlf')} (medians of ${rounds} rounds)`)
console.log(
  `this/other ${ratio('this', 'other', 3)}, other/rlf ${ratio('other', 'rlf', 3)}, this/rlf ${ratio('this', 'rlf', 3)}`,
)
