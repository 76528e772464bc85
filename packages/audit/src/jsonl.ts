/**
 * A sink writing one JSON object per line to a file (appended) or any writable stream. It
 * respects backpressure: while the stream asks to wait, lines wait in memory, in order.
 */
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import { AuditError, report } from './errors.js'
import type { AuditEvent, AuditSink } from './sink.js'

/** Options of {@link jsonLinesSink}. */
export interface JsonLinesSinkOptions {
  /**
   * Called when the stream fails (code `write_failed`, the lost record in `records`). A failed
   * stream is not reopened.
   * @default errors are ignored
   * @example jsonLinesSink('audit.jsonl', { onError: (e) => console.error(e) })
   */
  onError?: (error: AuditError) => void
  /**
   * Whether `close()` ends the stream.
   * @default true for a file path (the sink opened it), false for a stream you passed
   * @example jsonLinesSink(process.stdout, { end: false })
   */
  end?: boolean
}

/**
 * A sink appending each record as one line of JSON.
 * @example auditTo(jsonLinesSink('/var/log/tollgate/audit.jsonl'))
 * @example auditTo(jsonLinesSink(process.stdout))
 */
export function jsonLinesSink(target: string | Writable, given?: JsonLinesSinkOptions): AuditSink {
  // checked now: a mistake here would otherwise lose every record
  if (
    !(typeof target === 'string' && target !== '') &&
    typeof (target as Partial<Writable> | null)?.write !== 'function'
  )
    throw new TypeError('jsonLinesSink: the target must be a file path or a writable stream')
  const options = given ?? {} // a JS caller's null is no options, as undefined is
  if (options.end !== undefined && typeof options.end !== 'boolean')
    throw new TypeError('jsonLinesSink: end must be true or false')
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new TypeError('jsonLinesSink: onError must be a function')
  const stream = typeof target === 'string' ? createWriteStream(target, { flags: 'a' }) : target
  const end = options.end ?? typeof target === 'string'
  const waiting: AuditEvent[] = []
  const idle: (() => void)[] = []
  let inFlight = 0
  let blocked = false
  let closed = false

  stream.on('error', (cause: unknown) => {
    report(options.onError, new AuditError('write_failed', 'the JSON-lines stream failed', { cause }))
  })

  // A stream closed while lines wait for 'drain' never drains: give them up, so flush returns.
  stream.on('close', () => {
    if (waiting.length === 0) return
    const lost = waiting.splice(0)
    report(options.onError, new AuditError('write_failed', 'the stream closed', { records: lost }))
    settle()
  })

  const settle = () => {
    if (inFlight > 0 || waiting.length > 0) return
    for (const resolve of idle.splice(0)) resolve()
  }
  const send = (record: AuditEvent) => {
    inFlight++
    const ok = stream.write(`${JSON.stringify(record)}\n`, (error) => {
      inFlight--
      if (error)
        report(
          options.onError,
          new AuditError('write_failed', 'a JSON line was not written', { cause: error, records: [record] }),
        )
      settle()
    })
    if (!ok) {
      blocked = true
      stream.once('drain', resume)
    }
  }
  const resume = () => {
    blocked = false
    while (!blocked && waiting.length > 0) send(waiting.shift()!)
    settle()
  }
  const flush = () =>
    new Promise<void>((resolve) => {
      idle.push(resolve)
      settle()
    })

  return {
    write(record) {
      if (closed) {
        report(options.onError, new AuditError('closed', 'the sink is closed', { records: [record] }))
        return
      }
      if (blocked || stream.destroyed) waiting.push(record)
      else send(record)
      // A destroyed stream never drains: give the waiting lines up rather than hold them forever.
      if (stream.destroyed && waiting.length > 0) {
        const lost = waiting.splice(0)
        report(options.onError, new AuditError('write_failed', 'the stream is destroyed', { records: lost }))
        settle()
      }
    },
    flush,
    async close() {
      if (closed) return flush()
      closed = true
      await flush()
      if (end && !stream.destroyed) await new Promise<void>((resolve) => stream.end(() => resolve()))
    },
  }
}
