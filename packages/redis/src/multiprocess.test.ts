/**
 * Many processes, one budget (SPEC.md §7.2, §7.3): four child processes, each with its own
 * ioredis client and gate on one shared prefix, fire hundreds of reservations at once against
 * one lifetime token budget and one concurrency cap on the real Redis.
 *
 * The processes share a private redis-server. During the reserve and settle phases the test holds
 * it paused for writes (`CLIENT PAUSE … WRITE`) until every worker has a call waiting in it, so
 * the processes' calls are in flight together however slowly a busy machine starts them.
 *
 * Phases, each started on every worker and awaited from all of them:
 * 1. reserve — every call in flight before the first answer; nothing is settled yet, so holds
 *    only grow and their final sum is the most that was ever held: it must fit the cap.
 * 2. settle — actuals that differ from the estimates (some beyond them), a fifth released;
 *    the counter in Redis must then equal the sum of the actuals.
 * 3. duplicate — each worker settles or releases another worker's closed reservations again:
 *    every one is a duplicate and no counter moves.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTollgate, type LimitState } from '@tollgate/core'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from './store.js'
import {
  CONCURRENCY_CAP,
  type Command,
  ORG,
  policy,
  type Report,
  TIMEOUT_MS,
  TOKEN_CAP,
} from './test/multiprocess.js'
import { testClient } from './test/redis.js'
import { startRedis, type TestServer } from './test/server.js'

const WORKERS = 4
const BUDGET_CALLS = 300
const AGENT_CALLS = 100
/** Longest wait for one phase on every worker (the first includes starting node and tsx). */
const PHASE_MS = 15_000

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const WORKER = fileURLToPath(new URL('./test/worker.ts', import.meta.url))
const SEED = Number(process.env.TOLLGATE_SEED ?? Math.floor(Math.random() * 2 ** 31))

const PREFIX = 'multiprocess'
let server: TestServer
let client: Redis
const children: ChildProcess[] = []

beforeAll(async () => {
  server = await startRedis()
  client = testClient(server.url)
})

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await client?.quit()
  await server?.kill()
})

type Reply<T extends Report['type']> = Extract<Report, { type: T }>

/** A worker process and its inbox. */
function startWorker(index: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    cwd: ROOT,
    env: {
      ...process.env,
      // The repository's paths: @tollgate/core from its sources, built or not.
      TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'),
      TG_REDIS_URL: server.url,
      TG_PREFIX: PREFIX,
      TG_SEED: String(SEED + index),
      TG_BUDGET_CALLS: String(BUDGET_CALLS),
      TG_AGENT_CALLS: String(AGENT_CALLS),
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000)
  })
  const inbox: Report[] = []
  const wake = new Set<() => void>()
  const poke = () => {
    for (const fn of wake) fn()
  }
  child.on('message', (report: Report) => {
    inbox.push(report)
    poke()
  })
  child.on('exit', poke)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))

  return {
    exited,
    send(command: Command) {
      child.send(command)
    },
    /** The next report, which must be of `type`; rejects on a failure, an early exit or after PHASE_MS. */
    next<T extends Report['type']>(type: T): Promise<Reply<T>> {
      return new Promise((resolve, reject) => {
        const fail = (why: string) => {
          cleanup()
          reject(new Error(`worker ${index} (seed ${SEED + index}): ${why}\n${stderr}`))
        }
        const check = () => {
          const report = inbox.shift()
          if (report) {
            cleanup()
            if (report.type === 'failed') fail(report.error)
            else if (report.type !== type) fail(`expected ${type}, got ${report.type}`)
            else resolve(report as Reply<T>)
          } else if (child.exitCode !== null || child.signalCode !== null) {
            fail(`exited (${child.exitCode ?? child.signalCode}) before "${type}"`)
          }
        }
        const timer = setTimeout(() => fail(`no "${type}" within ${PHASE_MS} ms`), PHASE_MS)
        const cleanup = () => {
          clearTimeout(timer)
          wake.delete(check)
        }
        wake.add(check)
        check()
      })
    },
  }
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0)

/**
 * Waits until Redis, paused for writes, holds a call from each of `count` connections: every
 * worker then has calls in flight, none answered yet. Fails after PHASE_MS.
 */
async function waitForWaiting(count: number): Promise<void> {
  const deadline = Date.now() + PHASE_MS
  for (;;) {
    const info = await client.info('clients')
    const waiting = Number(/blocked_clients:(\d+)/.exec(info)?.[1] ?? 0)
    if (waiting >= count) return
    if (Date.now() > deadline) throw new Error(`only ${waiting} of ${count} workers had a call in Redis`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('many processes sharing one Redis', () => {
  it(
    'never admit holds beyond a cap, and the counters end at the sum of the actuals',
    async () => {
      const gate = createTollgate({
        policy,
        store: redisStore({ client, prefix: PREFIX, timeoutMs: TIMEOUT_MS }),
        timeoutMs: TIMEOUT_MS,
      })
      const state = async (rule: string, metric: string): Promise<LimitState> => {
        const states = await gate.usage({ subject: { org: ORG } })
        const found = states.find((s) => s.rule === rule && s.metric === metric)
        if (!found) throw new Error(`no state for ${rule}.${metric}`)
        return found
      }
      const seed = `seed ${SEED} (set TOLLGATE_SEED to replay)`

      const workers = Array.from({ length: WORKERS }, (_, i) => startWorker(i))
      await Promise.all(workers.map((w) => w.next('ready')))
      /**
       * Every worker starts the phase while Redis holds writes; they run once each worker has a
       * call waiting. The pause lifts by itself after PHASE_MS should the test fail before.
       */
      const phase = async <T extends Report['type']>(command: 'reserve' | 'settle', reply: T) => {
        await client.call('CLIENT', 'PAUSE', String(PHASE_MS), 'WRITE')
        for (const w of workers) w.send({ type: command })
        const replies = Promise.all(workers.map((w) => w.next(reply)))
        // Waiting for the workers' calls fails first if a worker fails: no unhandled rejection.
        replies.catch(() => {})
        try {
          await waitForWaiting(WORKERS)
        } finally {
          await client.call('CLIENT', 'UNPAUSE')
        }
        return replies
      }

      // 1. Every worker reserves at once: 4 × 400 calls in flight against one budget.
      const reserved = await phase('reserve', 'reserved')
      for (const r of reserved) expect(r.unexpected, seed).toEqual([])
      // The four processes really competed: each had all its calls in flight at once, and all had
      // calls waiting in Redis before the first was answered (`phase`).
      for (const r of reserved) expect(r.timing.maxInFlight).toBe(BUDGET_CALLS + AGENT_CALLS)
      const held = reserved.flatMap((r) => r.budget)
      const heldTokens = sum(held.map((h) => h.tokens))
      const denied = reserved.flatMap((r) => r.budgetDenied)
      expect(held.length + denied.length).toBe(WORKERS * BUDGET_CALLS)
      expect(new Set(held.map((h) => h.id)).size).toBe(held.length)
      // Demand was about twice the cap, so the cap bound…
      expect(denied.length, seed).toBeGreaterThan(0)
      // …and was never exceeded: nothing settled yet, so this sum is the most ever held at once.
      expect(heldTokens, seed).toBeLessThanOrEqual(TOKEN_CAP)
      // Nor was anything refused that fitted: a refusal saw at least the final room, and did not fit in it.
      expect(TOKEN_CAP - heldTokens, seed).toBeLessThan(Math.min(...denied))
      expect(await state('budget', 'tokens')).toMatchObject({ used: heldTokens, held: heldTokens })
      expect(await state('budget', 'requests')).toMatchObject({ used: held.length, held: held.length })
      // The concurrency cap across processes: exactly the cap's worth of calls in flight, the rest refused.
      const running = reserved.flatMap((r) => r.agent)
      expect(running.length, seed).toBe(CONCURRENCY_CAP)
      expect(sum(reserved.map((r) => r.agentDenied))).toBe(WORKERS * AGENT_CALLS - CONCURRENCY_CAP)
      expect(await state('inflight', 'concurrency')).toMatchObject({ used: CONCURRENCY_CAP })

      // 2. Every worker settles (actuals ≠ estimates, some beyond them) or releases its own, at once.
      const settled = await phase('settle', 'settled')
      for (const r of settled) expect(r.unexpected, seed).toEqual([])
      for (const [i, r] of settled.entries()) expect(r.settled + r.released).toBe(reserved[i]!.budget.length)
      expect(sum(settled.map((r) => r.released))).toBeGreaterThan(0)
      expect(sum(settled.map((r) => r.overruns))).toBeGreaterThan(0)
      const actual = sum(settled.map((r) => r.actualTokens))
      const charged = sum(settled.map((r) => r.settled))
      expect(await state('budget', 'tokens')).toMatchObject({ used: actual, held: 0 })
      expect(await state('budget', 'requests')).toMatchObject({ used: charged, held: 0 })
      expect(await state('inflight', 'concurrency')).toMatchObject({ used: 0 })

      // 3. Each worker settles or releases its neighbour's reservations again: all duplicates.
      for (const [i, w] of workers.entries()) {
        const other = reserved[(i + 1) % WORKERS]!
        w.send({ type: 'duplicate', budget: other.budget, agent: other.agent })
      }
      const duplicated = await Promise.all(workers.map((w) => w.next('duplicated')))
      for (const [i, r] of duplicated.entries()) {
        expect(r.unexpected, seed).toEqual([])
        const other = reserved[(i + 1) % WORKERS]!
        expect(r.duplicates).toBe(other.budget.length + other.agent.length)
      }
      expect(await state('budget', 'tokens')).toMatchObject({ used: actual, held: 0 })
      expect(await state('budget', 'requests')).toMatchObject({ used: charged, held: 0 })
      expect(await state('inflight', 'concurrency')).toMatchObject({ used: 0 })

      for (const w of workers) w.send({ type: 'exit' })
      expect(await Promise.all(workers.map((w) => w.exited))).toEqual(workers.map(() => 0))
    },
    4 * PHASE_MS,
  )
})
