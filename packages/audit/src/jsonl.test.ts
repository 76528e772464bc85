import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { callbackSink } from './callback.js'
import type { AuditError } from './errors.js'
import { jsonLinesSink } from './jsonl.js'
import { type AuditEvent, auditTo } from './sink.js'
import { playTraffic } from './test/traffic.js'

const dir = mkdtempSync(join(tmpdir(), 'tollgate-audit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

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
})
