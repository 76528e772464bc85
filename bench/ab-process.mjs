/**
 * Two builds of `@tollgate/core` compared in separate processes: the memory headline (six limits,
 * reserve+settle) measured in one process per build, alternating A B, B A, A B… for `PAIRS` (default
 * 16) pairs, and the median of the pairs' ratios printed. Slower than `ab-memory.mjs`, which runs both
 * builds in one process, but without its order bias: there, two identical builds measured up to 10%
 * apart (2026-12-06). See bench/README.md.
 *
 *   node bench/ab-process.mjs <build A's dist/index.js> [<build B's dist/index.js>, default this one]
 *
 * `ROLLING=1` measures the same on rolling 60 s windows instead of calendar minutes.
 *
 * `MIXED=1` first runs other paths in each process, as the memory suite's tasks do before its
 * interleaved comparison (and an application with more than one policy would): reserve+settle on
 * rolling windows and reserve+release, each on a gate of its own.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { estimate, otherPaths, policy, subjects, usage } from './headline.mjs'

const ITERATIONS = 100_000
const ROUNDS = 8 // per process: the first two warm up, the best of the rest counts

/** One process's figure: the best ns per reserve+settle over its rounds. */
async function measure(build) {
  const lib = await import(pathToFileURL(build).href)
  if (process.env.MIXED === '1') await otherPaths(lib)
  const rules =
    process.env.ROLLING === '1' ? policy.rules.map((rule) => ({ ...rule, window: '60s' })) : policy.rules
  const gate = lib.createTollgate({ policy: { rules }, store: lib.memoryStore() })
  let n = 0
  let best = Number.POSITIVE_INFINITY
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now()
    for (let i = 0; i < ITERATIONS; i++) {
      const d = await gate.reserve({ subject: subjects[n++ % subjects.length], estimate })
      if (!d.allowed) throw new Error(`refused: ${d.code}`)
      await gate.settle(d.id, usage)
    }
    const ns = ((performance.now() - started) / ITERATIONS) * 1e6
    if (round >= 2) best = Math.min(best, ns)
  }
  return best
}

if (process.argv[2] === '--measure') {
  console.log(String(await measure(process.argv[3])))
} else {
  const a = process.argv[2]
  const b = process.argv[3] ?? fileURLToPath(new URL('../packages/core/dist/index.js', import.meta.url))
  if (!a) {
    console.error('usage: node bench/ab-process.mjs <build A dist/index.js> [<build B dist/index.js>]')
    process.exit(2)
  }
  const self = fileURLToPath(import.meta.url)
  const run = (build) => Number(execFileSync(process.execPath, [self, '--measure', build]).toString())
  const times = { a: [], b: [] }
  const pairs = Number(process.env.PAIRS ?? 16)
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      times.a.push(run(a))
      times.b.push(run(b))
    } else {
      times.b.push(run(b))
      times.a.push(run(a))
    }
  }
  const ratios = times.a.map((t, i) => t / times.b[i]).sort((x, y) => x - y)
  const median = (values) => [...values].sort((x, y) => x - y)[values.length >> 1]
  console.log(
    `A: median ${median(times.a).toFixed(0)} ns per reserve+settle; B: ${median(times.b).toFixed(0)} ns`,
  )
  console.log(`A/B time, per pair (above 1: B is faster): ${ratios.map((r) => r.toFixed(3)).join(' ')}`)
  console.log(`median A/B ${median(ratios).toFixed(3)} over ${pairs} pairs`)
}
