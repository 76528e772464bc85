import { readFileSync } from 'node:fs'
import { createTollgate, memoryStore } from '@tollgate/core'
import { policy, writeTraffic } from './simulate.ts'
import { simulate, simulateFile } from '../src/simulate/run.ts'
const file = '/tmp/exp-traffic.jsonl'
const N = Number(process.argv[2] ?? 200000)
await writeTraffic(file, N)
const text = readFileSync(file, 'utf8').split('\n').filter(Boolean)
const cpu = async (name: string, fn: () => Promise<unknown>) => {
  const c0 = process.cpuUsage(); const w0 = performance.now()
  await fn()
  const c = process.cpuUsage(c0); const w = performance.now() - w0
  console.log(name.padEnd(28), 'cpu', ((c.user + c.system) / 1e6).toFixed(1), 's', 'wall', (w / 1000).toFixed(1), 's', Math.round(N / ((c.user + c.system) / 1e6)), 'req/cpu-s')
}
async function raw() {
  const clock = { t: 0, now() { return this.t } }
  const gate = createTollgate({ policy, store: memoryStore({ clock, idempotencyMs: 60000 }) })
  for (const line of text) {
    const l = JSON.parse(line)
    clock.t = l.t
    const d = await gate.reserve({ subject: l.subject, attributes: l.attributes, model: l.model, feature: l.feature, estimate: { inputTokens: l.inputTokens, maxOutputTokens: l.maxOutputTokens } })
    if (d.allowed) await gate.settle(d.id, { inputTokens: l.inputTokens, outputTokens: l.outputTokens })
  }
}
const which = process.argv[3] ?? 'all'
if (which === 'all' || which === 'raw') await cpu('raw engine (parse+reserve+settle)', raw)
if (which === 'all' || which === 'sim') await cpu('simulate strings', () => simulate(policy, text))
if (which === 'all' || which === 'file') await cpu('simulateFile', () => simulateFile(policy, file))
