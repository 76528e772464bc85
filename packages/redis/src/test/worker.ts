/**
 * One app process of the multi-process test (`multiprocess.test.ts`): its own ioredis client and
 * gate on the shared prefix, driven phase by phase over the IPC channel, so that every process
 * has its calls in flight at the same time. Started with `node --import tsx worker.ts`, the
 * repository's tsconfig paths resolving `@tollgate/core` to the sources (no build needed).
 *
 * Environment: `TG_REDIS_URL`, `TG_PREFIX`, `TG_SEED`, `TG_BUDGET_CALLS`, `TG_AGENT_CALLS`.
 */
import { createTollgate } from '@tollgate/core'
import { Redis } from 'ioredis'
import { redisStore } from '../store.js'
import { type Command, type Held, ORG, policy, type Report, TIMEOUT_MS, type Timing } from './multiprocess.js'

/** A small seeded generator (mulberry32), so that a failure replays with the same seed. */
function random(seed: number) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * Starts every task at once (each one's command is written before the first answer is read) and
 * waits for all of them. A task that throws is recorded in `errors`, never left unhandled.
 */
async function burst(errors: string[], tasks: (() => Promise<void>)[]): Promise<Timing> {
  let inFlight = 0
  let maxInFlight = 0
  await Promise.all(
    tasks.map(async (task) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight)
      try {
        await task()
      } catch (error) {
        errors.push(error instanceof Error ? (error.stack ?? error.message) : String(error))
      } finally {
        inFlight--
      }
    }),
  )
  return { maxInFlight }
}

async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name]
    if (value === undefined) throw new Error(`worker: ${name} is not set`)
    return value
  }
  const prefix = env('TG_PREFIX')
  const rand = random(Number(env('TG_SEED')))
  const between = (low: number, high: number) => low + Math.floor(rand() * (high - low + 1))
  const budgetCalls = Number(env('TG_BUDGET_CALLS'))
  const agentCalls = Number(env('TG_AGENT_CALLS'))

  const storeErrors: string[] = []
  const client = new Redis(env('TG_REDIS_URL'), {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
  })
  client.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve)
    client.once('end', () => reject(new Error('worker: could not connect to Redis')))
  })
  const gate = createTollgate({
    policy,
    store: redisStore({ client, prefix, timeoutMs: TIMEOUT_MS }),
    timeoutMs: TIMEOUT_MS,
    // A store error would turn into a failure-mode decision: reported, and the test fails.
    onStoreError: (error) => storeErrors.push(`store error: ${String(error)}`),
  })
  const subject = { org: ORG }
  // Load the scripts and the connection before the timed phases.
  await gate.usage({ subject })

  const send = (report: Report) => process.send!(report)
  let budget: Held[] = []
  let agent: string[] = []
  /** Estimates per budget reservation, to draw actuals that differ from them. */
  const estimates = new Map<string, { input: number; output: number }>()

  const handle = async (command: Command): Promise<void> => {
    if (command.type === 'exit') {
      await client.quit()
      process.disconnect()
      return
    }
    const unexpected: string[] = []
    if (command.type === 'reserve') {
      const calls = [
        ...Array.from({ length: budgetCalls }, () => 'chat' as const),
        ...Array.from({ length: agentCalls }, () => 'agent' as const),
      ]
      for (let i = calls.length - 1; i > 0; i--) {
        const j = between(0, i)
        ;[calls[i], calls[j]] = [calls[j]!, calls[i]!]
      }
      const budgetDenied: number[] = []
      let agentDenied = 0
      const timing = await burst(
        unexpected,
        calls.map((feature) => async () => {
          const input = between(20, 200)
          const output = between(20, 300)
          const decision = await gate.reserve({
            subject,
            feature,
            estimate: { inputTokens: input, maxOutputTokens: output },
          })
          if (decision.flags.length > 0) unexpected.push(`flags ${decision.flags.join(',')}`)
          if (feature === 'chat') {
            if (decision.allowed) {
              budget.push({ id: decision.id, tokens: input + output })
              estimates.set(decision.id, { input, output })
            } else if (decision.code === 'BUDGET') budgetDenied.push(input + output)
            else unexpected.push(`chat refused with ${decision.code}: ${decision.message}`)
          } else if (decision.allowed) agent.push(decision.id)
          else if (decision.code === 'INFLIGHT') agentDenied++
          else unexpected.push(`agent refused with ${decision.code}: ${decision.message}`)
        }),
      )
      unexpected.push(...storeErrors.splice(0))
      send({ type: 'reserved', budget, budgetDenied, agent, agentDenied, unexpected, timing })
      return
    }
    if (command.type === 'settle') {
      let actualTokens = 0
      let settled = 0
      let released = 0
      let overruns = 0
      const timing = await burst(unexpected, [
        ...budget.map(({ id }) => async () => {
          const { input, output } = estimates.get(id)!
          if (rand() < 0.2) {
            const result = await gate.release(id)
            if (result.status === 'released') released++
            else unexpected.push(`release ${id}: ${result.status}`)
            return
          }
          // Actuals differ from the estimates: fewer or more input tokens, output up to 1.5× the maximum.
          const inputTokens = Math.max(0, input + between(-15, 15))
          const outputTokens = between(0, Math.floor(output * 1.5))
          if (inputTokens + outputTokens > input + output) overruns++
          const result = await gate.settle(id, { inputTokens, outputTokens })
          if (result.status === 'settled' && result.amounts.tokens === inputTokens + outputTokens) {
            actualTokens += inputTokens + outputTokens
            settled++
          } else unexpected.push(`settle ${id}: ${result.status} ${JSON.stringify(result.amounts)}`)
        }),
        ...agent.map((id) => async () => {
          const result = await gate.release(id)
          if (result.status !== 'released') unexpected.push(`release agent ${id}: ${result.status}`)
        }),
      ])
      budget = []
      agent = []
      unexpected.push(...storeErrors.splice(0))
      send({ type: 'settled', actualTokens, settled, released, overruns, unexpected, timing })
      return
    }
    // Settles and releases of another process's reservations, already closed there: all duplicates.
    let duplicates = 0
    const check = (id: string, status: string) => {
      if (status === 'duplicate') duplicates++
      else unexpected.push(`duplicate of ${id}: ${status}`)
    }
    const timing = await burst(unexpected, [
      ...command.budget.map(
        ({ id, tokens }) =>
          async () =>
            check(
              id,
              rand() < 0.5
                ? (await gate.settle(id, { inputTokens: tokens * 3, outputTokens: 7 })).status
                : (await gate.release(id)).status,
            ),
      ),
      ...command.agent.map((id) => async () => check(id, (await gate.settle(id)).status)),
    ])
    unexpected.push(...storeErrors.splice(0))
    send({ type: 'duplicated', duplicates, unexpected, timing })
  }

  process.on('message', (command: Command) => {
    handle(command).catch((error: unknown) => {
      send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) })
    })
  })
  send({ type: 'ready' })
}

// The parent went away (crash, timeout): leave at once rather than linger.
process.on('disconnect', () => process.exit(0))
main().catch((error: unknown) => {
  process.send?.({
    type: 'failed',
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  })
  process.exitCode = 1
  process.disconnect?.()
})
