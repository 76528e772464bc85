/**
 * A sink writing one JSON object per line to a file (appended) or any writable stream. It
 * respects backpressure: while the stream asks to wait, lines wait in memory, in order, up to
 * `maxQueue`; `flush()` and `close()` wait for a stream that does not drain at most `closeTimeoutMs`.
 */
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import { AuditError, report } from './errors.js'
import type { AuditEvent, AuditSink } from './sink.js'

/** Options of {@link jsonLinesSink}. */
export interface JsonLinesSinkOptions {
  /**
   * Called when the stream fails (code `write_failed`, the lost record in `records`), when a
   * record is dropped because the queue is full (`queue_full`), and when `flush()` or `close()`
   * gives up (`close_timeout`). A failed stream is not reopened.
   * @default errors are ignored
   * @example jsonLinesSink('audit.jsonl', { onError: (e) => console.error(e) })
   */
  onError?: (error: AuditError) => void
  /**
   * Whether `close()` ends the stream. When the stream does not finish within `closeTimeoutMs`,
   * it is destroyed instead.
   * @default true for a file path (the sink opened it), false for a stream you passed
   * @example jsonLinesSink(process.stdout, { end: false })
   */
  end?: boolean
  /**
   * Most records held in memory (waiting for the stream to drain, and handed to it but not yet
   * written) while the stream is slow or stalled, e.g. a socket to a log shipper that stopped
   * reading. When full, a new record drops the oldest waiting one, reported to `onError` with
   * code `queue_full` and the dropped record. As `maxQueue` of `postgresSink`.
   * @default 100_000
   * @example jsonLinesSink(socket, { maxQueue: 10_000 })
   */
  maxQueue?: number
  /**
   * Longest time `flush()` and `close()` wait for the stream. Past it, the records not written
   * are given up and reported to `onError` (code `close_timeout`, with the records), and the
   * call resolves; lines already handed to the stream are reported too, though they may still
   * be written if it drains later. After a `flush()` gives up, later records are written as the
   * stream drains again, or wait, up to `maxQueue`.
   * @default 30_000
   * @example jsonLinesSink(socket, { closeTimeoutMs: 5_000 })
   */
  closeTimeoutMs?: number
}

/** A JSON-lines sink; `pending` is how many records are waiting or being written. */
export interface JsonLinesSink extends AuditSink {
  readonly pending: number
}

/** The longest delay a Node timer keeps (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647

/** First in, first out, with a constant-time `shift` (an array's copies it: slow on a long backlog). */
function fifo<T>() {
  let items: (T | undefined)[] = []
  let head = 0
  return {
    get length() {
      return items.length - head
    },
    push(item: T) {
      items.push(item)
    },
    shift(): T | undefined {
      if (head === items.length) return undefined
      const item = items[head]
      items[head++] = undefined
      if (head === items.length) {
        items = []
        head = 0
      } else if (head >= 1024 && head * 2 >= items.length) {
        items = items.slice(head)
        head = 0
      }
      return item
    },
    /** Removes and returns everything, oldest first. */
    take(): T[] {
      const out = items.slice(head) as T[]
      items = []
      head = 0
      return out
    },
  }
}

/**
 * A sink appending each record as one line of JSON.
 * @example auditTo(jsonLinesSink('/var/log/tollgate/audit.jsonl'))
 * @example auditTo(jsonLinesSink(process.stdout))
 */
export function jsonLinesSink(target: string | Writable, given?: JsonLinesSinkOptions): JsonLinesSink {
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
  const maxQueue = options.maxQueue ?? 100_000
  if (!Number.isInteger(maxQueue) || maxQueue < 1)
    throw new RangeError('jsonLinesSink: maxQueue must be a whole number ≥ 1')
  const closeTimeoutMs = options.closeTimeoutMs ?? 30_000
  if (typeof closeTimeoutMs !== 'number' || !(closeTimeoutMs >= 0) || closeTimeoutMs > MAX_TIMER_MS)
    throw new RangeError(`jsonLinesSink: closeTimeoutMs must be a number of ms from 0 to ${MAX_TIMER_MS}`)
  const stream = typeof target === 'string' ? createWriteStream(target, { flags: 'a' }) : target
  const end = options.end ?? typeof target === 'string'
  const fail = (error: AuditError) => report(options.onError, error)
  /** Records waiting for the stream to drain, oldest first. */
  const waiting = fifo<AuditEvent>()
  /** Lines handed to the stream whose write has not called back yet. */
  const sent = new Set<{ record: AuditEvent }>()
  /** Resolves the `flush()` calls waiting for everything to be written. */
  const idle = new Set<() => void>()
  let blocked = false
  let closed = false
  let closing: Promise<void> | undefined

  stream.on('error', (cause: unknown) => {
    fail(new AuditError('write_failed', 'the JSON-lines stream failed', { cause }))
  })

  // A stream closed while lines wait for 'drain' never drains: give them up, so flush returns.
  stream.on('close', () => {
    if (waiting.length === 0) return
    fail(new AuditError('write_failed', 'the stream closed', { records: waiting.take() }))
    settle()
  })

  function settle() {
    if (sent.size > 0 || waiting.length > 0) return
    for (const resolve of [...idle]) resolve()
  }
  const send = (record: AuditEvent) => {
    const entry = { record }
    sent.add(entry)
    const ok = stream.write(`${JSON.stringify(record)}\n`, (error) => {
      // an entry no longer there was given up, and reported as such, by flush() or close()
      if (!sent.delete(entry)) return
      if (error)
        fail(
          new AuditError('write_failed', 'a JSON line was not written', { cause: error, records: [record] }),
        )
      settle()
    })
    if (!ok) {
      blocked = true
      stream.once('drain', resume)
    }
  }
  function resume() {
    blocked = false
    while (!blocked && waiting.length > 0) send(waiting.shift()!)
    settle()
  }

  /** Gives up every record not yet written, reported once as `close_timeout`. */
  const giveUp = (by: string) => {
    const lost = [...[...sent].map((entry) => entry.record), ...waiting.take()]
    sent.clear()
    if (lost.length > 0)
      fail(
        new AuditError('close_timeout', `${by} gave up on ${lost.length} audit records`, { records: lost }),
      )
    settle()
  }
  /** Waits for everything to be written, at most `closeTimeoutMs`; true when it gave up. */
  const drained = (by: string) =>
    new Promise<boolean>((resolve) => {
      if (sent.size === 0 && waiting.length === 0) return resolve(false)
      const done = () => {
        clearTimeout(deadline)
        idle.delete(done)
        resolve(false)
      }
      const deadline = setTimeout(() => {
        idle.delete(done)
        giveUp(by)
        resolve(true)
      }, closeTimeoutMs)
      idle.add(done)
    })

  return {
    get pending() {
      return waiting.length + sent.size
    },
    write(record) {
      if (closed) {
        fail(new AuditError('closed', 'the sink is closed', { records: [record] }))
        return
      }
      if (blocked || stream.destroyed) {
        if (waiting.length + sent.size >= maxQueue) {
          // the oldest waiting record goes; with none waiting (all handed to the stream), the new one
          const oldest = waiting.shift()
          fail(
            new AuditError('queue_full', 'the audit queue is full; dropped the oldest', {
              records: [oldest ?? record],
            }),
          )
          if (!oldest) return
        }
        waiting.push(record)
      } else if (sent.size >= maxQueue) {
        fail(new AuditError('queue_full', 'the audit queue is full', { records: [record] }))
        return
      } else send(record)
      // A destroyed stream never drains: give the waiting lines up rather than hold them forever.
      if (stream.destroyed && waiting.length > 0) {
        fail(new AuditError('write_failed', 'the stream is destroyed', { records: waiting.take() }))
        settle()
      }
    },
    async flush() {
      await drained('flush()')
    },
    close() {
      closed = true
      closing ??= (async () => {
        const started = Date.now()
        const late = await drained('close()')
        if (!end || stream.destroyed) return
        // a stream that could not take its lines in time will not finish either: destroyed, it
        // frees its file or socket, and nothing of it keeps the process alive
        if (late) return void stream.destroy()
        let timer: ReturnType<typeof setTimeout> | undefined
        const finished = await Promise.race([
          new Promise<boolean>((resolve) => stream.end(() => resolve(true))),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), Math.max(0, closeTimeoutMs - (Date.now() - started)))
          }),
        ])
        clearTimeout(timer)
        if (!finished) stream.destroy()
      })()
      return closing
    },
  }
}
