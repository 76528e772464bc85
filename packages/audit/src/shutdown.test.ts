/**
 * `closeOnExit` in real child processes: records still queued when the process ends (its event
 * loop runs dry, or it receives SIGTERM) are written before it exits.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { closeOnExit } from './shutdown.js'
import { dropTable, storedRecords, tableName, testPool } from './test/pg.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const WORKER = fileURLToPath(new URL('./test/exit-worker.ts', import.meta.url))
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
