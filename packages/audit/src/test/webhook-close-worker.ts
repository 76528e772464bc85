/**
 * A child process for the webhook deadline tests: sends one alert to the URL in argv (a server in
 * the parent that answers 503 with `Retry-After: 300`, or never answers), closes the webhook
 * with `closeTimeoutMs` from argv, says `closed` and what `onError` was told, and then has
 * nothing left to do: it exits only if nothing of the webhook keeps it alive.
 */
import type { AuditError } from '../errors.js'
import { alertWebhook } from '../webhook/send.js'
import { thresholdAlert } from './records.js'

const [url, closeTimeoutMs] = process.argv.slice(2) as [string, string]
const errors: AuditError[] = []
const webhook = alertWebhook({
  url,
  secret: 'whsec_close_worker_of_32_bytes_or_more',
  closeTimeoutMs: Number(closeTimeoutMs),
  onError: (e) => errors.push(e),
})
const alert = thresholdAlert()
webhook(alert)
await webhook.close()
process.stdout.write(
  `closed ${errors.map((e) => `${e.code}:${e.attempt}:${e.alert?.rule ?? '-'}`).join(' ')}\n`,
)
