import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { callbackSink } from './callback.js'
import type { AuditError } from './errors.js'
import { jsonLinesSink } from './jsonl.js'
import { type AuditEvent, auditTo } from './sink.js'
import { within } from './test/proxy.js'
import { decisionRecord } from './test/records.js'
import { playTraffic } from './test/traffic.js'

const dir = mkdtempSync(join(tmpdir(), 'tollgate-audit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

/**
 * A real TCP connection to a reader that stopped reading (a log shipper that hung): once the
 * kernel's buffers are full, the socket never drains. `read()` starts reading, and resolves with
 * every whole line received once the writer ends or destroys the connection.
 */
async function stalledSocket() {
  const server: Server = createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(socket, 'connect')
  const [peer] = await accepted
  cleanups.push(() => {
    socket.destroy()
    peer.destroy()
    server.close()
  })
  return {
    socket,
    async read() {
      let text = ''
      peer.setEncoding('utf8')
      peer.on('data', (chunk: string) => {
        text += chunk
      })
      peer.resume()
      await Promise.race([once(peer, 'end'), once(peer, 'close')])
      return lines(text.slice(0, text.lastIndexOf('\n') + 1)) // a line cut off by a destroy is not one
    },
  }
}

/** Decisions of about 256 KB each: a few of them fill the kernel's socket buffers. */
const big = 'x'.repeat(256 * 1024)
const decision = (i: number) => decisionRecord(`r${i}`, { subject: { user: 'u1' }, feature: big })
const ids = (records: readonly { id: string }[]) => records.map((r) => r.id)

const lines = (text: string) =>
  text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line))

describe('jsonLinesSink', () => {
  it('refuses a target or options that cannot work when made (every record was lost)', () => {
    for (const target of ['', 5, null, {}, Object.create(null)])
      expect(() => jsonLinesSink(target as never)).toThrow(/a file path or a writable stream/)
    const stream = new Writable({ write: (_chunk, _encoding, done) => done() })
    expect(() => jsonLinesSink(stream, { end: 'yes' as never })).toThrow(/end must be true or false/)
    expect(() => jsonLinesSink(stream, { onError: 1 as never })).toThrow(/onError must be a function/)
    for (const maxQueue of [0, 1.5, Number.NaN, '10' as never])
      expect(() => jsonLinesSink(stream, { maxQueue })).toThrow(/maxQueue must be a whole number/)
    for (const closeTimeoutMs of [-1, Number.NaN, 2 ** 31, '1s' as never])
      expect(() => jsonLinesSink(stream, { closeTimeoutMs })).toThrow(/closeTimeoutMs must be a number of ms/)
    expect(() => jsonLinesSink(stream, null as never)).not.toThrow()
  })

  it('appends one JSON object per record to a file; close waits for all of it', async () => {
    const file = join(dir, 'audit.jsonl')
    writeFileSync(file, '{"kept":true}\n')
    const sink = jsonLinesSink(file)
    const { decisions, settles } = await playTraffic(auditTo(sink), 200)
    await sink.close()
    const written = lines(readFileSync(file, 'utf8'))
    expect(written[0]).toEqual({ kept: true }) // appended, not truncated
    expect(written.slice(1)).toHaveLength(decisions.length + settles.length)
    expect(written.filter((r) => r.event === 'decision')).toEqual(decisions)
    expect(written.filter((r) => r.event === 'settle' || r.event === 'release')).toEqual(settles)
  })

  it('respects backpressure: waits for drain, keeps order, flush waits for the slow stream', async () => {
    const chunks: string[] = []
    let pendingCallbacks: (() => void)[] = []
    const slow = new Writable({
      highWaterMark: 64,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString())
        pendingCallbacks.push(callback)
      },
    })
    let drains = 0
    slow.on('drain', () => drains++)
    const sink = jsonLinesSink(slow)
    const emitted: AuditEvent[] = []
    await playTraffic(
      auditTo(
        sink,
        callbackSink((r) => void emitted.push(r)),
      ),
      60,
    )
    const total = emitted.length
    expect(chunks).toHaveLength(1) // one write at a time reached the stream; the rest wait
    let flushed = false
    const flushing = sink.flush().then(() => {
      flushed = true
    })
    while (pendingCallbacks.length > 0) {
      const now = pendingCallbacks
      pendingCallbacks = []
      for (const callback of now) callback()
      await new Promise((resolve) => setImmediate(resolve))
      if (chunks.length < total) expect(flushed).toBe(false)
    }
    await flushing
    expect(drains).toBeGreaterThan(10)
    expect(lines(chunks.join(''))).toEqual(emitted) // in the order the gate emitted them
    expect(chunks).toHaveLength(total)
    await sink.close()
    expect(slow.writableEnded).toBe(false) // a stream it did not open is left open
  })

  it('reports a stream that fails, and does not hang flush', async () => {
    const errors: AuditError[] = []
    const sink = jsonLinesSink(join(dir, 'missing-dir', 'audit.jsonl'), { onError: (e) => errors.push(e) })
    await playTraffic(auditTo(sink), 5)
    await sink.close()
    expect(errors.length).toBeGreaterThan(0)
    expect(errors.every((e) => e.code === 'write_failed')).toBe(true)
  })

  it('holds at most maxQueue records while the stream does not drain: the oldest are dropped and reported', async () => {
    const { socket, read } = await stalledSocket()
    const errors: AuditError[] = []
    const sink = jsonLinesSink(socket, { maxQueue: 100, closeTimeoutMs: 200, onError: (e) => errors.push(e) })
    const records = Array.from({ length: 1_000 }, (_, i) => decision(i))
    for (const record of records) sink.write(record)

    // every record past the first 100 pushed one out, the oldest still waiting
    const full = errors.filter((e) => e.code === 'queue_full')
    expect(full).toHaveLength(900)
    expect(sink.pending).toBe(100)
    const dropped = full.flatMap((e) => ids(e.records))
    const first = records.findIndex((r) => r.id === dropped[0])
    expect(first).toBeGreaterThan(0) // the first record went to the stream at once
    expect(dropped).toEqual(ids(records.slice(first, first + 900)))

    // flush() waits at most closeTimeoutMs for a stream that never drains, then gives up the rest
    await within(sink.flush(), 3_000, 'flush() on a stream that never drains')
    const gaveUp = errors.filter((e) => e.code === 'close_timeout')
    expect(gaveUp).toHaveLength(1)
    expect(gaveUp[0]!.records.length).toBeGreaterThan(0)
    expect(sink.pending).toBe(0)

    // every record was written, dropped or given up; none was dropped and written too
    socket.end()
    const received = ids(await read())
    const accounted = new Set([...received, ...dropped, ...ids(gaveUp[0]!.records)])
    expect(accounted.size).toBe(records.length)
    expect(received.filter((id) => dropped.includes(id))).toEqual([])
    await sink.close()
  })

  it('when the queue is full, drops the oldest waiting record, not the newest, and keeps the newest waiting', async () => {
    // a stream that takes one write and never calls it back: r1 is handed to it, the rest wait
    const stalled = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, _callback) {},
    })
    const errors: AuditError[] = []
    const sink = jsonLinesSink(stalled, { maxQueue: 3, closeTimeoutMs: 0, onError: (e) => errors.push(e) })
    const records = Array.from({ length: 6 }, (_, i) => decision(i + 1))
    for (const record of records) sink.write(record)

    // r1 in the stream and r2, r3 waiting fill the queue; r4, r5, r6 each push out the oldest waiting
    const full = errors.filter((e) => e.code === 'queue_full')
    expect(full.map((e) => ids(e.records))).toEqual([['r2'], ['r3'], ['r4']])
    expect(sink.pending).toBe(3)

    // what is left is the line handed to the stream and the two newest records
    await within(sink.flush(), 1_000, 'flush() on a stream that never calls back')
    const gaveUp = errors.filter((e) => e.code === 'close_timeout')
    expect(gaveUp.map((e) => ids(e.records))).toEqual([['r1', 'r5', 'r6']])
    expect(sink.pending).toBe(0)
    await sink.close()
  })

  it('close() gives up after closeTimeoutMs on a stream that never drains, reports what it gave up, and ends the stream', async () => {
    const { socket, read } = await stalledSocket()
    const errors: AuditError[] = []
    const sink = jsonLinesSink(socket, { end: true, closeTimeoutMs: 200, onError: (e) => errors.push(e) })
    const records = Array.from({ length: 100 }, (_, i) => decision(i))
    for (const record of records) sink.write(record)
    expect(errors).toEqual([])

    await within(sink.close(), 3_000, 'close() on a stream that never drains')
    expect(errors.map((e) => e.code)).toEqual(['close_timeout'])
    const gaveUp = ids(errors[0]!.records)
    expect(gaveUp.length).toBeGreaterThan(50) // the kernel's buffers hold a few MB at most
    expect(socket.destroyed).toBe(true) // it could not end cleanly: it was destroyed, and frees its handle
    expect(sink.pending).toBe(0)
    const received = ids(await read())
    expect(new Set([...received, ...gaveUp]).size).toBe(records.length)

    sink.write(decision(100))
    expect(errors.map((e) => e.code)).toEqual(['close_timeout', 'closed'])
  })
})
