import { unhandledRejections } from '@tollgate/core/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { AuditError } from '../errors.js'
import { thresholdAlert } from '../test/records.js'
import { hookServer } from '../test/server.js'
import { type AlertDelivery, alertWebhook, retryAfterMs } from './send.js'
import { SIGNATURE_HEADER, signAlert, verifyAlertSignature } from './sign.js'

const secret = 'whsec_test_5f2_of_32_bytes_or_more!'
const alert = thresholdAlert()

const servers: { close(): Promise<void> }[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const server of servers.splice(0)) await server.close()
})
async function server(...args: Parameters<typeof hookServer>) {
  const s = await hookServer(...args)
  servers.push(s)
  return s
}

describe('alertWebhook', () => {
  it('an async onDelivered or onError that rejects is dropped, not an unhandled rejection (that ended the process)', async () => {
    const unhandled = await unhandledRejections(async () => {
      const failing = async () => {
        throw new Error('the metrics backend is down')
      }
      const hook = await server((attempt) => ({ status: attempt === 1 ? 204 : 400 }))
      const webhook = alertWebhook({ url: hook.url, secret, onDelivered: failing, onError: failing })
      webhook(alert) // delivered: onDelivered
      webhook(alert) // refused (400): onError
      await webhook.close()
      expect(hook.received).toHaveLength(2)
    })
    expect(unhandled).toEqual([])
  })

  it('retries 500s, then delivers once, signed over the exact body', async () => {
    const hook = await server((attempt) => ({ status: attempt <= 2 ? 500 : 204 }))
    const delivered: { attempts: number }[] = []
    const errors: AuditError[] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      backoffMs: () => 0,
      onDelivered: (d) => delivered.push(d),
      onError: (e) => errors.push(e),
    })
    expect(webhook(alert)).toBeUndefined() // returns at once: nothing blocks the engine
    await webhook.close()

    expect(hook.received).toHaveLength(3)
    expect(delivered).toEqual([expect.objectContaining({ attempts: 3, status: 204 })])
    expect(errors).toEqual([])
    const bodies = hook.received.map((r) => JSON.parse(r.body) as AlertDelivery)
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1) // one delivery id across retries
    expect(bodies[2]).toEqual({ id: bodies[0]!.id, event: 'alert', alert })
    const last = hook.received[2]!
    expect(last.headers['content-type']).toBe('application/json')
    const header = last.headers[SIGNATURE_HEADER] as string
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/)
    expect(await verifyAlertSignature(secret, header, last.body)).toBe(true)
    expect(await verifyAlertSignature(secret, header, last.body.replace('520', '521'))).toBe(false)
    expect(await verifyAlertSignature('another-secret-of-32-bytes-or-more!', header, last.body)).toBe(false)
  })

  it('honours Retry-After on 429 and 503', async () => {
    const hook = await server((attempt) =>
      attempt === 1
        ? { status: 429, headers: { 'retry-after': '7' } }
        : attempt === 2
          ? { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } }
          : { status: 200 },
    )
    const waits: [number, number | null][] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      backoffMs: (attempt, after) => {
        waits.push([attempt, after])
        return 0
      },
    })
    webhook(alert)
    await webhook.flush()
    expect(hook.received).toHaveLength(3)
    expect(waits[0]).toEqual([1, 7_000])
    expect(waits[1]![0]).toBe(2)
    expect(waits[1]![1]).toBeGreaterThan(55_000)
    expect(waits[1]![1]).toBeLessThanOrEqual(60_000)
  })

  it('gives up after the retries and tells onError, without throwing', async () => {
    const hook = await server(() => ({ status: 502 }))
    const errors: AuditError[] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      retries: 3,
      backoffMs: () => 0,
      onError: (e) => errors.push(e),
    })
    webhook(alert)
    await webhook.flush()
    expect(hook.received).toHaveLength(4)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: 'delivery_failed', attempt: 4, alert })
    expect(String((errors[0]!.cause as Error).message)).toContain('502')
  })

  it('never follows a redirect: a 301 is a failed delivery that names where it points', async () => {
    // followed, the alert was resent as a GET without its body, and the 200 counted as delivered
    for (const status of [301, 302, 303, 307, 308]) {
      const hook = await server(() => ({ status, headers: { location: '/elsewhere' } }))
      const delivered: unknown[] = []
      const errors: AuditError[] = []
      const webhook = alertWebhook({
        url: hook.url,
        secret,
        backoffMs: () => 0,
        onDelivered: (d) => delivered.push(d),
        onError: (e) => errors.push(e),
      })
      webhook(alert)
      await webhook.flush()
      expect(hook.received, String(status)).toHaveLength(1)
      expect(delivered, String(status)).toEqual([])
      expect(errors.map((e) => e.code)).toEqual(['delivery_failed'])
      expect(String((errors[0]!.cause as Error).message)).toContain(`${status}, a redirect to /elsewhere`)
    }
  })

  it('does not retry a refusal (4xx other than 408 and 429)', async () => {
    const hook = await server(() => ({ status: 401 }))
    const errors: AuditError[] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      backoffMs: () => 0,
      onError: (e) => errors.push(e),
    })
    webhook(alert)
    await webhook.flush()
    expect(hook.received).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: 'delivery_failed' })
  })

  it('retries a 408 (Request Timeout), as a timeout, up to the retries', async () => {
    const hook = await server((attempt) => ({ status: attempt <= 2 ? 408 : 204 }))
    const delivered: number[] = []
    const errors: AuditError[] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      backoffMs: () => 0,
      onDelivered: (d) => delivered.push(d.attempts),
      onError: (e) => errors.push(e),
    })
    webhook(alert)
    await webhook.flush()
    expect(hook.received).toHaveLength(3)
    expect(delivered).toEqual([3])
    expect(errors).toEqual([])

    // always 408: retried until the retries are spent, then given up as any retryable failure
    const busy = await server(() => ({ status: 408 }))
    const given: AuditError[] = []
    const again = alertWebhook({
      url: busy.url,
      secret,
      retries: 2,
      backoffMs: () => 0,
      onError: (e) => given.push(e),
    })
    again(alert)
    await again.flush()
    expect(busy.received).toHaveLength(3)
    expect(given).toHaveLength(1)
    expect(given[0]).toMatchObject({ code: 'delivery_failed', attempt: 3, alert })
    expect(String((given[0]!.cause as Error).message)).toContain('408')
  })

  it('by default waits out Retry-After at most 5 minutes: Retry-After: 86400 retries after 300 s, not a day', async () => {
    let calls = 0
    let firstCall: () => void = () => {}
    const called = new Promise<void>((resolve) => {
      firstCall = resolve
    })
    const delivered: number[] = []
    const errors: AuditError[] = []
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const webhook = alertWebhook({
      url: 'https://ops.example.com/hooks/tollgate',
      secret,
      // no backoffMs: the default one, which reads Retry-After
      fetch: async () => {
        calls++
        firstCall()
        return calls === 1
          ? new Response(null, { status: 503, headers: { 'retry-after': '86400' } })
          : new Response(null, { status: 204 })
      },
      onDelivered: (d) => delivered.push(d.attempts),
      onError: (e) => errors.push(e),
    })
    webhook(alert)
    await called
    await new Promise((resolve) => setImmediate(resolve)) // the 503 is read, and the retry's wait starts

    await vi.advanceTimersByTimeAsync(299_999)
    expect(calls).toBe(1) // Retry-After is honoured, up to its cap
    await vi.advanceTimersByTimeAsync(1)
    // the retry is signed first (Web Crypto, real time on a loaded machine): wait for it, with no
    // more fake time passing
    for (const started = performance.now(); delivered.length === 0 && performance.now() - started < 5_000; )
      await new Promise((resolve) => setImmediate(resolve))
    expect(calls).toBe(2) // 5 minutes on, not a day
    expect(delivered).toEqual([2])
    expect(errors).toEqual([])
    await webhook.close()
  })

  it('retries network errors and timeouts', async () => {
    // first attempt: nobody listens; then a server that hangs once, then answers
    const hook = await server((attempt) => (attempt === 1 ? { status: 0, hang: true } : { status: 200 }))
    let url = 'http://127.0.0.1:1/closed'
    const delivered: number[] = []
    const webhook = alertWebhook({
      url: { toString: () => url } as unknown as URL,
      secret,
      timeoutMs: 100,
      backoffMs: () => {
        url = hook.url
        return 0
      },
      onDelivered: (d) => delivered.push(d.attempts),
    })
    webhook(alert)
    await webhook.close()
    expect(delivered).toEqual([3])
    expect(hook.received).toHaveLength(2)
  })

  it('refuses options that cannot work when it is made, naming the option', () => {
    // with retries NaN, a refused delivery (400) was retried for ever; with maxPending NaN, nothing bounded the alerts in flight
    const bad: [string, Record<string, unknown>][] = [
      ['retries', { retries: Number.NaN }],
      ['retries', { retries: -1 }],
      ['timeoutMs', { timeoutMs: Number.NaN }],
      ['timeoutMs', { timeoutMs: 0 }],
      ['maxPending', { maxPending: Number.NaN }],
      ['maxPending', { maxPending: 0 }],
      // an object with no prototype made the message itself throw, naming nothing
      ['retries', { retries: Object.create(null) }],
      ['timeoutMs', { timeoutMs: Object.create(null) }],
      ['maxPending', { maxPending: Object.create(null) }],
      ['secret', { secret: '' }],
      ['secret', { secret: 'whsec_short' }],
      ['secret', { secret: undefined }],
      ['backoffMs', { backoffMs: 100 }],
      ['fetch', { fetch: 'undici' }],
      ['onError', { onError: console }],
      ['onDelivered', { onDelivered: true }],
      ['headers', { headers: 'authorization: x' }],
      ['url', { url: undefined }],
      // as the sinks': a number of ms a timer keeps (a NaN deadline fired at once, 2 ** 31 too)
      ['closeTimeoutMs', { closeTimeoutMs: -1 }],
      ['closeTimeoutMs', { closeTimeoutMs: Number.NaN }],
      ['closeTimeoutMs', { closeTimeoutMs: 2 ** 31 }],
      ['closeTimeoutMs', { closeTimeoutMs: '1s' }],
      ['closeTimeoutMs', { closeTimeoutMs: Object.create(null) }],
    ]
    for (const [name, extra] of bad)
      expect(() => alertWebhook({ url: 'http://127.0.0.1:1/', secret, ...extra } as never), name).toThrow(
        new RegExp(`^alertWebhook: ${name} must`),
      )
    expect(() =>
      alertWebhook({ url: 'http://127.0.0.1:1/', secret, retries: 0, timeoutMs: 1, closeTimeoutMs: 0 }),
    ).not.toThrow()
    expect(() =>
      alertWebhook({ url: 'http://127.0.0.1:1/', secret, closeTimeoutMs: 2 ** 31 - 1 }),
    ).not.toThrow()
  })

  it('reports alerts after close instead of sending them', async () => {
    const errors: AuditError[] = []
    const webhook = alertWebhook({ url: 'http://127.0.0.1:1/', secret, onError: (e) => errors.push(e) })
    await webhook.close()
    webhook(alert)
    expect(errors[0]).toMatchObject({ code: 'closed', alert })
  })
})

describe('verifyAlertSignature', () => {
  const body = JSON.stringify({ id: 'd1', event: 'alert', alert })
  const at = Date.UTC(2026, 0, 5, 12)

  it('accepts a fresh signature and refuses a stale or future one', async () => {
    const header = await signAlert(secret, body, at)
    expect(await verifyAlertSignature(secret, header, body, { now: at + 299_000 })).toBe(true)
    expect(await verifyAlertSignature(secret, header, body, { now: at + 301_000 })).toBe(false)
    expect(await verifyAlertSignature(secret, header, body, { now: at - 301_000 })).toBe(false)
    expect(await verifyAlertSignature(secret, header, body, { now: at + 61_000, toleranceMs: 60_000 })).toBe(
      false,
    )
  })

  it('refuses a signature moved to another timestamp, and malformed headers', async () => {
    const header = await signAlert(secret, body, at)
    const moved = header.replace(/^t=\d+/, `t=${at / 1000 + 1}`)
    expect(await verifyAlertSignature(secret, moved, body, { now: at })).toBe(false)
    for (const bad of [null, '', 'v1=abc', `t=${at / 1000}`, `t=${at / 1000},v1=zz`, 'garbage'])
      expect(await verifyAlertSignature(secret, bad, body, { now: at })).toBe(false)
  })

  it('refuses options that would pass any timestamp (a NaN now or tolerance) with a TypeError', async () => {
    const header = await signAlert(secret, body, at - 86_400_000) // a day old: a replay
    // signAlert signed `t=NaN` for a NaN time, which every receiver refuses
    for (const time of [Number.NaN, -1, Object.create(null)])
      await expect(signAlert(secret, body, time)).rejects.toThrow(/timestampMs must be ms since the epoch/)
    await expect(signAlert(secret, 5 as never, at)).rejects.toThrow(/body must be the string/)
    for (const now of [Number.NaN, Object.create(null)])
      await expect(verifyAlertSignature(secret, header, body, { now })).rejects.toThrow(
        /now must be ms since the epoch/,
      )
    for (const toleranceMs of [Number.NaN, -1, '5m' as never, Object.create(null)])
      await expect(verifyAlertSignature(secret, header, body, { now: at, toleranceMs })).rejects.toThrow(
        /toleranceMs must be a number/,
      )
    expect(await verifyAlertSignature(secret, header, body, { now: at })).toBe(false)
    // a short secret is refused on both sides, not used
    await expect(verifyAlertSignature('short', header, body, { now: at })).rejects.toBeInstanceOf(TypeError)
    await expect(signAlert('short', body, at)).rejects.toThrow(/at least 32 bytes/)
  })

  it('accepts any of several v1 signatures (secret rotation)', async () => {
    const fresh = await signAlert(secret, body, at)
    const old = await signAlert('old-secret-of-32-bytes-or-more-too!', body, at)
    const both = `${old},${fresh.split(',')[1]}`
    expect(await verifyAlertSignature(secret, both, body, { now: at })).toBe(true)
    expect(await verifyAlertSignature('old-secret-of-32-bytes-or-more-too!', both, body, { now: at })).toBe(
      true,
    )
  })
})

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3')).toBe(3_000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000)
    expect(retryAfterMs(new Date(1_000).toUTCString(), 4_000)).toBe(0)
    expect(retryAfterMs('soon')).toBeNull()
    expect(retryAfterMs(null)).toBeNull()
  })
})
