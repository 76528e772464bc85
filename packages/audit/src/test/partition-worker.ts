/**
 * A child process for the partition test: a PostgreSQL sink made from a connection string through
 * the test's proxy writes one row, says `ready`, and waits for `frozen` on stdin (the proxy then
 * answers nothing). It writes ten more rows and closes with a short `closeTimeoutMs`, says `closed`
 * with what it was told, and then has nothing left to do: the process must exit by itself.
 * Mode `stuck`: close() finds the write still waiting for an answer. Mode `backoff`: the write
 * timed out, and close() finds the retry waiting out a one-minute back-off.
 */
import { postgresSink } from '../postgres/sink.js'
import { connectionString } from './pg.js'
import { decisionRecord } from './records.js'

const [port, table, mode] = process.argv.slice(2) as [string, string, 'stuck' | 'backoff']
const errors: string[] = []
/** Before the proxy freezes, a slow first connection (a loaded machine) is only tried again soon. */
let frozen = false
const sink = postgresSink({
  connectionString: connectionString(Number(port)),
  table,
  flushIntervalMs: 5,
  // stuck: far away, only close() giving up may end the write
  ...(mode === 'stuck'
    ? { writeTimeoutMs: 60_000 }
    : { writeTimeoutMs: 100, backoffMs: () => (frozen ? 60_000 : 10) }),
  closeTimeoutMs: 300,
  onError: (e) => errors.push(`${e.code}:${e.records.length}`),
})

sink.write(decisionRecord('before'))
await sink.flush()
process.stdout.write('ready\n')
let input = ''
for await (const chunk of process.stdin) {
  input += String(chunk)
  if (input.includes('frozen')) break
}
frozen = true
errors.length = 0 // what the start may have hit is not what this test is about
for (let i = 0; i < 10; i++) sink.write(decisionRecord(`during-${i}`))
await new Promise((resolve) => setTimeout(resolve, 50)) // the write is under way, and stuck
await sink.close()
process.stdout.write(`closed; errors ${errors.join(' ')}\n`)
