/**
 * `closeOnExit` in real child processes: records still queued when the process ends (its event
 * loop runs dry, or it receives SIGTERM) are written before it exits; a close that stalls does
 * not keep the process alive past the deadline, or past a second signal.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { closeOnExit } from './shutdown.js'
import { dropTable, storedRecords, tableName, testPool } from './test/pg.js'
import { within } from './test/proxy.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const WORKER = fileURLToPath(new URL('./test/exit-worker.ts', import.meta.url))
const STALL_WORKER = fileURLToPath(new URL('./test/stall-worker.ts', import.meta.url))
const pool = testPool()
const tables: string[] = []
afterAll(async () => {
  for (const table of tables) await dropTable(pool, table)
  await pool.end()
})

async function runWorker(mode: 'beforeExit' | 'SIGTERM', count: number) {
  const table = tableName(`exit_${mode.toLowerCase()}`)
  tables.push(table)
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, table, mode, String(count)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  const ready = new Promise<void>((resolve) =>
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('ready')) resolve()
    }),
  )
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  await Promise.race([ready, exited])
  expect(output).toContain(`ready ${count}`) // everything was still queued
  if (mode === 'SIGTERM') child.kill('SIGTERM')
  const [code, signal] = await exited
  return { table, code, signal }
}

/** Starts the stalling worker; `said(text)` resolves once it printed `text`. */
async function stallWorker(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', STALL_WORKER, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  const waiting = new Set<() => void>()
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
    for (const check of waiting) check()
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const said = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!output.includes(text)) return
        waiting.delete(check)
        resolve()
      }
      waiting.add(check)
      check()
    })
  await within(Promise.race([said('ready'), exited]), 8_000, 'the worker starting')
  expect(output).toContain('ready')
  return { child, said, exited }
}

describe('closeOnExit', () => {
  it('writes what is queued when the event loop runs dry', async () => {
    const { table, code } = await runWorker('beforeExit', 250)
    expect(code).toBe(0)
    expect((await storedRecords(pool, table)).size).toBe(250)
  }, 30_000)

  it('writes what is queued on SIGTERM, then ends the process by that signal', async () => {
    const { table, signal } = await runWorker('SIGTERM', 250)
    expect(signal).toBe('SIGTERM')
    expect((await storedRecords(pool, table)).size).toBe(250)
  }, 30_000)

  it('raises the signal again once timeoutMs has passed, though a close() is still running', async () => {
    // the webhook's close() waits for a retry until its closeTimeoutMs (30 s), far past 500 ms
    const { child, said, exited } = await stallWorker(['500'])
    try {
      child.kill('SIGTERM')
      await within(said('closing'), 3_000, 'close() beginning')
      const [code, signal] = await within(exited, 5_000, 'the worker ending after SIGTERM')
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' })
    } finally {
      child.kill('SIGKILL')
    }
  }, 15_000)

  it('a second signal ends the process at once, by that signal', async () => {
    const { child, said, exited } = await stallWorker(['60000'])
    try {
      child.kill('SIGTERM')
      await within(said('closing'), 3_000, 'close() beginning')
      child.kill('SIGINT') // a second Ctrl-C, or the orchestrator asking again
      const [code, signal] = await within(exited, 5_000, 'the worker ending after a second signal')
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGINT' })
    } finally {
      child.kill('SIGKILL')
    }
  }, 15_000)

  it('closes once, and can be removed', async () => {
    let closes = 0
    const target = { close: async () => void closes++ }
    const remove = closeOnExit([target], { signals: [] })
    process.emit('beforeExit', 0)
    process.emit('beforeExit', 0)
    remove()
    process.emit('beforeExit', 0)
    await Promise.resolve()
    expect(closes).toBe(1)
  })

  it('refuses targets without close() when called, not at exit, and survives a close() that throws', async () => {
    const hooks = () => process.listenerCount('beforeExit')
    const before = hooks()
    for (const targets of [undefined, null, 'sink', [undefined], [{}], [{ close: 'now' }]])
      expect(() => closeOnExit(targets as never, { signals: [] }), JSON.stringify(targets)).toThrow(
        /^closeOnExit: /,
      )
    expect(() => closeOnExit([], { signals: 'SIGTERM' as never })).toThrow(/signals must be a list/)
    for (const timeoutMs of [-1, Number.NaN, 2 ** 31, '5s' as never])
      expect(() => closeOnExit([], { timeoutMs })).toThrow(/timeoutMs must be a number of ms/)
    expect(hooks()).toBe(before) // nothing was hooked
    let closed = 0
    const remove = closeOnExit(
      [
        {
          close: () => {
            throw new Error('boom')
          },
        },
        { close: async () => void closed++ },
      ],
      { signals: [] },
    )
    process.emit('beforeExit', 0) // would throw out of the listener if the first close() were not caught
    await new Promise((resolve) => setImmediate(resolve))
    remove()
    expect(closed).toBe(1)
  })
})
