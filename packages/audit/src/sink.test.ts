import type { AuditRecord, SettleRecord } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { callbackSink } from './callback.js'
import type { AuditError } from './errors.js'
import { type AuditEvent, type AuditSink, auditTo } from './sink.js'
import { playTraffic } from './test/traffic.js'

const collect = () => {
  const records: AuditEvent[] = []
  return { records, sink: callbackSink((r) => void records.push(r)) }
}

describe('auditTo', () => {
  it('sends every decision and settle of a real gate to every sink, in order', async () => {
    const a = collect()
    const b = collect()
    const { decisions, settles } = await playTraffic(auditTo(a.sink, b.sink), 120)
    expect(a.records).toHaveLength(decisions.length + settles.length)
    expect(b.records).toEqual(a.records)
    expect(a.records.filter((r): r is AuditRecord => r.event === 'decision')).toEqual(decisions)
    expect(a.records.filter((r): r is SettleRecord => r.event !== 'decision')).toEqual(settles)
  })

  it('a sink that throws does not keep the record from the others, nor throw into the gate', async () => {
    const broken: AuditSink = {
      write() {
        throw new Error('broken sink')
      },
      flush: async () => {},
      close: async () => {},
    }
    const after = collect()
    const hooks = auditTo(broken, after.sink)
    const { decisions } = await playTraffic(hooks, 20)
    expect(after.records.filter((r) => r.event === 'decision')).toHaveLength(decisions.length)
  })
})

describe('callbackSink', () => {
  it('refuses a callback or options that cannot work when made (every record was lost)', () => {
    expect(() => callbackSink('log' as never)).toThrow(/the callback must be a function/)
    expect(() => callbackSink(() => {}, { onError: true as never })).toThrow(/onError must be a function/)
    expect(() => callbackSink(() => {}, null as never)).not.toThrow()
  })

  it('flush and close wait for the promises the callback returns', async () => {
    const done: string[] = []
    const releases: (() => void)[] = []
    const sink = callbackSink(
      (r) =>
        new Promise<void>((resolve) => {
          releases.push(() => {
            done.push(r.id)
            resolve()
          })
        }),
    )
    const { decisions } = await playTraffic(auditTo(sink), 5)
    let flushed = false
    const flushing = sink.flush().then(() => {
      flushed = true
    })
    await Promise.resolve()
    expect(flushed).toBe(false)
    for (const release of releases) release()
    await flushing
    expect(done.slice(0, decisions.length).length).toBe(decisions.length)
    await sink.close()
  })

  it('reports a failing callback and later writes after close, never throwing', async () => {
    const errors: AuditError[] = []
    const sink = callbackSink(
      async (r) => {
        if (r.event === 'decision') throw new Error('queue down')
      },
      { onError: (e) => errors.push(e) },
    )
    const { decisions } = await playTraffic(auditTo(sink), 10)
    await sink.close()
    expect(errors).toHaveLength(decisions.length)
    expect(errors[0]).toMatchObject({ code: 'write_failed', records: [decisions[0]] })
    sink.write(decisions[0]!)
    expect(errors.at(-1)).toMatchObject({ code: 'closed' })
  })
})
