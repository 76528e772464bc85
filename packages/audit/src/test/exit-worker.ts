/**
 * A child process for the shutdown test: writes decision records to a PostgreSQL sink that would
 * wait a minute before writing, hooks `closeOnExit`, then either lets the event loop run dry
 * (`beforeExit`) or waits like a server until it receives SIGTERM.
 */
import type { AuditRecord } from '@tollgate/core'
import { postgresSink } from '../postgres/sink.js'
import { closeOnExit } from '../shutdown.js'
import { connectionString } from './pg.js'

const [table, mode, count] = process.argv.slice(2) as [string, 'beforeExit' | 'SIGTERM', string]
const sink = postgresSink({ connectionString: connectionString(), table, flushIntervalMs: 60_000 })
closeOnExit([sink])

for (let i = 0; i < Number(count); i++) {
  const record: AuditRecord = {
    event: 'decision',
    id: `exit-${i}`,
    at: Date.UTC(2026, 0, 5),
    decision: 'allow',
    code: null,
    status: 200,
    rule: null,
    partition: null,
    subject: { user: `u${i}` },
    requestedModel: 'small',
    model: 'small',
    feature: null,
    environment: null,
    estimate: { requests: 1 },
    shadowRules: [],
    shadow: false,
    flags: [],
    downgrade: null,
    attempt: 1,
  }
  sink.write(record)
}
if (mode === 'SIGTERM') setInterval(() => {}, 1_000) // a server: only a signal ends it
process.stdout.write(`ready ${sink.pending}\n`)
