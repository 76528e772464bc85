/**
 * Profiles the memory suite's headline task — Tollgate reserve+settle on `memoryStore()`,
 * six limits, the same subject rotation — as a bare loop, and prints the top self-time
 * functions with their source location and main caller:
 *
 *   node --enable-source-maps --import tsx bench/profile-memory.ts [iterations] [--save]
 *
 * `--save` also writes bench/results/memory.cpuprofile (open it in Chrome DevTools).
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { createTollgate, memoryStore, type Subject } from '@tollgate/core'
import { hotSpots, printHotSpots } from './cpuprofile.js'

const iterations = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 300_000)
const WARMUP = 20_000

const subjects: Subject[] = Array.from({ length: 1_000 }, (_, i) => ({
  org: `org-${(i % 50) % 5}`,
  team: `team-${i % 50}`,
  user: `user-${i}`,
}))
const limits = { requests: 1e9, tokens: 1e12 }
const gate = createTollgate({
  policy: { rules: ['user', 'team', 'org'].map((d) => ({ id: d, per: d, limits, window: 'minute' })) },
  store: memoryStore(),
})

async function loop(from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const decision = await gate.reserve({
      subject: subjects[i % subjects.length]!,
      estimate: { inputTokens: 100, maxOutputTokens: 100 },
    })
    if (!decision.allowed) throw new Error(`refused: ${decision.code}`)
    await gate.settle(decision.id, { inputTokens: 100, outputTokens: 80 })
  }
}

await loop(0, Math.min(WARMUP, iterations)) // unprofiled: let the JIT settle first
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.start')
const started = performance.now()
await loop(0, iterations)
const ms = performance.now() - started
const { profile } = await session.post('Profiler.stop')
session.disconnect()

console.log(
  `${iterations} reserve+settle in ${ms.toFixed(0)} ms (profiled): ${Math.round((iterations / ms) * 1000)} ops/s\n`,
)
printHotSpots(hotSpots(profile, 20))
if (process.argv.includes('--save')) {
  const path = new URL('./results/memory.cpuprofile', import.meta.url)
  await writeFile(path, JSON.stringify(profile))
  console.log(`\nwritten to ${path.pathname}`)
}
