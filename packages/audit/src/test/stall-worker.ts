/**
 * A child process for the shutdown tests: an alerts webhook whose endpoint answers 503 with
 * `Retry-After: 300`, so its `close()` waits for the retry until its `closeTimeoutMs` (30 s). It
 * hooks `closeOnExit` (with `timeoutMs` from argv, when given), says `ready` once the first
 * delivery was refused and `closing` when the close begins, and waits like a server until a
 * signal ends it.
 */
import { closeOnExit } from '../shutdown.js'
import { alertWebhook } from '../webhook/send.js'
import { thresholdAlert } from './records.js'
import { hookServer } from './server.js'

const [timeoutMs] = process.argv.slice(2)
let refused: () => void = () => {}
const firstAttempt = new Promise<void>((resolve) => {
  refused = resolve
})
const hook = await hookServer(() => {
  refused()
  return { status: 503, headers: { 'retry-after': '300' } }
})
const webhook = alertWebhook({ url: hook.url, secret: 'whsec_stall_worker_of_32_bytes_or_more' })
const alert = thresholdAlert()
webhook(alert)
await firstAttempt
closeOnExit(
  [
    {
      close() {
        process.stdout.write('closing\n')
        return webhook.close()
      },
    },
  ],
  timeoutMs === undefined ? {} : { timeoutMs: Number(timeoutMs) },
)
setInterval(() => {}, 1_000) // a server: only a signal ends it
process.stdout.write('ready\n')
