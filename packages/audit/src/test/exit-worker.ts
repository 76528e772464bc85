/**
 * A child process for the shutdown test: writes decision records to a PostgreSQL sink that would
 * wait a minute before writing, hooks `closeOnExit`, then either lets the event loop run dry
 * (`beforeExit`) or waits like a server until it receives SIGTERM.
 */
import { postgresSink } from '../postgres/sink.js'
import { closeOnExit } from '../shutdown.js'
import { connectionString } from './pg.js'
import { decisionRecord } from './records.js'

const [table, mode, count] = process.argv.slice(2) as [string, 'beforeExit' | 'SIGTERM', string]
const sink = postgresSink({ connectionString: connectionString(), table, flushIntervalMs: 60_000 })
closeOnExit([sink])

for (let i = 0; i < Number(count); i++) {
  const record = decisionRecord(`exit-${i}`, { subject: { user: `u${i}` } })
  sink.write(record)
}
if (mode === 'SIGTERM') setInterval(() => {}, 1_000) // a server: only a signal ends it
process.stdout.write(`ready ${sink.pending}\n`)
