/**
 * `pnpm bench`: runs every benchmark suite in turn, or only those named on the
 * command line (`pnpm bench memory`, `pnpm bench redis`). A suite is a module exporting `run()`;
 * to add one, import it and list it in `suites`.
 */
import { run as simulate } from '../packages/cli/bench/simulate.js'
import { run as llm } from '../packages/llm/bench/index.js'
import { run as memory } from './memory.js'
import { run as redis } from './redis.js'

const suites: Record<string, () => Promise<void>> = { memory, redis, llm, simulate }

const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !(name in suites))
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${Object.keys(suites).join(', ')}`)
  process.exit(2)
}
for (const [name, run] of Object.entries(suites)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue
  console.log(`\n=== ${name} ===`)
  await run()
}
