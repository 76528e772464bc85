/**
 * The webhook's deadline: `close()` and `flush()` wait at most `closeTimeoutMs` for alerts an
 * endpoint will not take (a 503 with `Retry-After: 300` held `close()` for up to 25 minutes, and
 * the process with it), report each alert they give up, end its retry wait and abort its request,
 * so nothing of the webhook keeps the process alive.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { AuditError } from '../errors.js'
import { within } from '../test/proxy.js'
import { thresholdAlert } from '../test/records.js'
import { type Answer, hookServer, type Received } from '../test/server.js'
import { type AlertDelivery, alertWebhook } from './send.js'

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
const WORKER = fileURLToPath(new URL('../test/webhook-close-worker.ts', import.meta.url))
const secret = 'whsec_test_5f2_of_32_bytes_or_more!'
const alertFor = (rule: string) => thresholdAlert({ rule })
/** What an endpoint that wants the sender to come back in five minutes answers. */
const busy: Answer = { status: 503, headers: { 'retry-after': '300' } }
const ruleOf = (received: Received) => (JSON.parse(received.body) as AlertDelivery).alert.rule

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

/** Resolves once `ok()` holds, checked every few ms; rejects naming `what` after `ms`. */
async function until(what: string, ok: () => boolean, ms = 2_000) {
  const started = Date.now()
  while (!ok()) {
    if (Date.now() - started > ms) throw new Error(`${what}: not after ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Timers that keep this process alive (unref'd ones are not listed). */
const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('alertWebhook closeTimeoutMs', () => {
  it('close() gives up at closeTimeoutMs on a 503 with Retry-After: 300, reports each alert it gave up, and resolves', async () => {
    const hook = await server((_, received) =>
      ruleOf(received).startsWith('stuck') ? busy : { status: 204 },
    )
    const errors: AuditError[] = []
    const delivered: string[] = []
    const baseline = activeTimers()
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      closeTimeoutMs: 200,
      onError: (e) => errors.push(e),
      onDelivered: (d) => delivered.push(d.alert.rule),
    })
    webhook(alertFor('stuck-1'))
    webhook(alertFor('fine'))
    webhook(alertFor('stuck-2'))
    await until('the first attempts', () => hook.received.length === 3)

    const started = Date.now()
    await within(webhook.close(), 3_000, 'close() on an endpoint asking to retry in 5 minutes')
    expect(Date.now() - started).toBeGreaterThanOrEqual(150) // it did wait for the deadline
    expect(delivered).toEqual(['fine'])
    expect(errors.map((e) => [e.code, e.alert?.rule, e.attempt])).toEqual([
      ['close_timeout', 'stuck-1', 1],
      ['close_timeout', 'stuck-2', 1],
    ])
    expect(errors[0]!.alert).toEqual(alertFor('stuck-1'))
    expect(String((errors[0]!.cause as Error).message)).toContain('503') // why it was still waiting
    // the five-minute retry waits were ended, the deadline cleared: no timer holds the process
    expect(activeTimers()).toBeLessThanOrEqual(baseline)

    // nothing is retried after the deadline, and nothing more is reported
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(hook.received).toHaveLength(3)
    expect(errors).toHaveLength(2)

    // an alert after close() is reported as closed, as before, and not sent
    webhook(alertFor('late'))
    expect(errors[2]).toMatchObject({ code: 'closed', alert: alertFor('late'), attempt: 0 })
    await within(webhook.close(), 100, 'a second close()')
    expect(errors).toHaveLength(3)
    expect(hook.received).toHaveLength(3)
  })

  it('flush() gives up at closeTimeoutMs too; later alerts are delivered as usual', async () => {
    const hook = await server((attempt) => (attempt === 1 ? busy : { status: 204 }))
    const errors: AuditError[] = []
    const delivered: { rule: string; attempts: number }[] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      closeTimeoutMs: 100,
      onError: (e) => errors.push(e),
      onDelivered: (d) => delivered.push({ rule: d.alert.rule, attempts: d.attempts }),
    })
    webhook(alertFor('first'))
    await until('the first attempt', () => hook.received.length === 1)
    await within(webhook.flush(), 3_000, 'flush() on an endpoint asking to retry in 5 minutes')
    expect(errors.map((e) => [e.code, e.alert?.rule])).toEqual([['close_timeout', 'first']])

    webhook(alertFor('second'))
    await within(webhook.flush(), 3_000, 'flush() of an alert the endpoint takes')
    expect(delivered).toEqual([{ rule: 'second', attempts: 1 }])
    // the alert given up was not retried behind the second one's back
    expect(hook.received.map(ruleOf)).toEqual(['first', 'second'])
    expect(errors).toHaveLength(1)
    await webhook.close()
  })

  it('a request in flight at the deadline is aborted, and its alert reported once', async () => {
    const hook = await server(() => ({ status: 0, hang: true }))
    const errors: AuditError[] = []
    const webhook = alertWebhook({
      url: hook.url,
      secret,
      closeTimeoutMs: 100, // timeoutMs stays 10 s: only the deadline can end this request in time
      onError: (e) => errors.push(e),
    })
    webhook(alertFor('hanging'))
    await until('the first attempt', () => hook.received.length === 1)
    await within(webhook.close(), 3_000, 'close() on an endpoint that never answers')
    expect(errors.map((e) => [e.code, e.alert?.rule, e.attempt])).toEqual([['close_timeout', 'hanging', 1]])
    await until('the request aborted', () => hook.aborted === 1)
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(errors).toHaveLength(1) // the aborted request is no delivery_failed on top
  })

  it('waits 30 s by default, then aborts the request and gives the alert up', async () => {
    let called: () => void = () => {}
    const sent = new Promise<void>((resolve) => {
      called = resolve
    })
    let signal: AbortSignal | undefined
    const errors: AuditError[] = []
    const webhook = alertWebhook({
      url: 'https://ops.example.com/hooks/tollgate',
      secret,
      // an endpoint that never answers
      fetch: (_, init) =>
        new Promise((_, reject) => {
          signal = init?.signal ?? undefined
          signal?.addEventListener('abort', () => reject(signal?.reason))
          called()
        }),
      onError: (e) => errors.push(e),
    })
    webhook(alertFor('silent'))
    await sent
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    let closed = false
    const closing = webhook.close().then(() => {
      closed = true
    })
    await vi.advanceTimersByTimeAsync(29_999)
    expect(closed).toBe(false)
    expect(errors).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    await closing
    expect(closed).toBe(true)
    expect(errors.map((e) => [e.code, e.alert?.rule])).toEqual([['close_timeout', 'silent']])
    expect(signal?.aborted).toBe(true)
  })

  for (const mode of ['503 with Retry-After: 300', 'a request that never answers'] as const)
    it(`after close() gives up, nothing keeps the process alive (${mode})`, async () => {
      const hook = await server(() =>
        mode === 'a request that never answers' ? { status: 0, hang: true } : busy,
      )
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, hook.url, '300'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
      let output = ''
      const closed = new Promise<void>((resolve) =>
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes('closed')) resolve()
        }),
      )
      try {
        // starting a process with tsx takes a while on a busy machine: only the exit is timed closely
        await within(Promise.race([closed, exited]), 6_000, 'close() in the worker')
        expect(output).toContain('closed')
        const [code] = await within(exited, 1_000, 'the worker exiting after close() resolved')
        expect(code).toBe(0)
        expect(output.trim()).toBe('closed close_timeout:1:team-day')
        expect(hook.received).toHaveLength(1)
        if (mode === 'a request that never answers') expect(hook.aborted).toBe(1)
      } finally {
        child.kill('SIGKILL')
      }
    }, 10_000)
})
