/**
 * `simulate`: replay traffic through the real engine and memory store on a virtual clock.
 * Each line is reserved at its time, then settled with what it really used (after its
 * `durationMs`, so concurrency rules see calls overlap).
 */
import {
  type CompiledPolicy,
  createTollgate,
  memoryStore,
  type PolicyInput,
  parsePolicy,
  type ReserveRequest,
  TollgateError,
  type Usage,
} from '@tollgate/core'
import { virtualClock } from '../clock.js'
import { type CollectorOptions, createCollector } from './collect.js'
import { EndHeap } from './heap.js'
import type { SimulationState } from './state.js'
import { chartsOf, summarize } from './summarize.js'
import { checkLine, parseLine, TrafficError, type TrafficLine } from './traffic.js'
import type { Chart, SimulationSummary } from './types.js'

/**
 * The options as given (`null` is none), checked: a `bucketMs` of 0, a negative or a tiny one made
 * the charts' buckets endless and ran the process out of memory; a `top` that is no count sorted
 * nothing. Throws a `TypeError` naming the option.
 */
export function checkSimulateOptions<O extends SimulateOptions>(given: O | null | undefined): O {
  const options = (given ?? {}) as O
  if (typeof options !== 'object') throw new TypeError('simulate: options must be an object')
  const { top, bucketMs, series, skipInvalid } = options
  if (top !== undefined && !(Number.isSafeInteger(top) && top >= 1))
    throw new TypeError('simulate: top must be a whole number, 1 or more')
  if (bucketMs !== undefined && !(Number.isSafeInteger(bucketMs) && bucketMs >= 1))
    throw new TypeError('simulate: bucketMs must be a whole number of ms, 1 or more')
  for (const [name, value] of [
    ['series', series],
    ['skipInvalid', skipInvalid],
  ] as const)
    if (value !== undefined && typeof value !== 'boolean')
      throw new TypeError(`simulate: ${name} must be true or false`)
  return options
}

/** Options of {@link simulate}. */
export interface SimulateOptions extends CollectorOptions {
  /**
   * Count traffic lines that are not JSON, lack a time or a subject, or give an amount the engine
   * refuses (at the reserve's line check, or at the settle) as failed requests (`invalid_line`)
   * instead of stopping with a `TrafficError`.
   * @default false
   * @example { skipInvalid: true }
   */
  skipInvalid?: boolean
}

/** What {@link simulate} returns. */
export interface SimulationResult {
  summary: SimulationSummary
  /** Usage against each cap over time; empty unless `options.series` is set. */
  charts: Chart[]
}

/** Replay only the lines whose `subject[dimension]` hashes to `index` of `count` shards. */
export interface Shard {
  index: number
  count: number
  dimension: string
  /** Rules whose partition keys are recorded, to check that shards share none. */
  track: string[]
}

/**
 * Traffic to replay: parsed lines or JSON-lines text, from any iterable; an async iterable may
 * also yield batches of text lines (as {@link readLines} does).
 */
export type Traffic = Iterable<TrafficLine | string> | AsyncIterable<TrafficLine | string | readonly string[]>

/**
 * FNV-1a of a string, for assigning tenants to shards. An id that is no string (missing, or a
 * malformed line's list or number) goes to shard 0, where the engine refuses it as one thread
 * would: it crashed the worker, and the whole run, instead of counting one failed line.
 */
export function shardOf(id: unknown, count: number): number {
  if (typeof id !== 'string') return 0
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return (h >>> 0) % count
}

/** Replay `traffic` through `policy` from an empty memory store, into a mergeable state. */
export async function replay(
  policy: CompiledPolicy,
  traffic: Traffic,
  options: SimulateOptions = {},
  shard?: Shard,
): Promise<SimulationState> {
  const collector = createCollector(policy, options, shard?.track)
  const clock = virtualClock(0)
  // closed ids are remembered only for a minute: nothing settles twice here, and a day of traffic stays small
  const store = memoryStore({ clock, idempotencyMs: 60_000 })
  const gate = createTollgate({ policy, store, onAlert: (alert) => collector.alert(alert) })
  const inFlight = new EndHeap()
  const first = !shard || shard.index === 0 // counts what every shard sees: bad and late lines

  async function one(line: TrafficLine, at: number, number: number) {
    const request: ReserveRequest = {
      subject: line.subject,
      attributes: line.attributes,
      model: line.model,
      feature: line.feature,
      estimate: { inputTokens: line.inputTokens, maxOutputTokens: line.maxOutputTokens, units: line.units },
    }
    let decision: Awaited<ReturnType<typeof gate.reserve>>
    try {
      decision = await gate.reserve(request)
    } catch (error) {
      if (!TollgateError.isInstance(error)) throw error
      collector.error(error.code, `line ${number}: ${error.message}`, number, at)
      return
    }
    const charged = collector.decision(decision, at, number, request.subject)
    if (!decision.allowed) return
    const admitted = decision
    const id = decision.id
    const usage: Usage = {
      inputTokens: line.inputTokens,
      outputTokens: line.outputTokens,
      cachedInputTokens: line.cachedInputTokens,
      units: line.units,
    }
    const settle = async () => {
      let amounts: Awaited<ReturnType<typeof gate.settle>>['amounts']
      try {
        amounts = (await gate.settle(id, usage)).amounts
      } catch (error) {
        if (!(TollgateError.isInstance(error) && error.code === 'invalid_amount')) throw error
        // usage the line check cannot price ahead (a cost past the engine's bound): the refused settle
        // left the hold open, so it is released, and the line is bad like any other
        await gate.release(id)
        const bad = new TrafficError(number, `the engine refused its usage: ${error.message}`)
        if (!options.skipInvalid) throw bad
        collector.unsettled(admitted, bad.message, number)
        return
      }
      collector.settle(charged, amounts)
    }
    if (line.durationMs) inFlight.push({ at: at + line.durationMs, settle })
    else await settle()
  }

  async function drain(until: number) {
    while (inFlight.size > 0 && inFlight.peek() <= until) {
      const call = inFlight.pop()!
      clock.advance(call.at)
      await call.settle()
    }
  }

  let number = 0
  let last = Number.NEGATIVE_INFINITY
  for await (const chunk of traffic) {
    for (const item of Array.isArray(chunk)
      ? (chunk as readonly string[])
      : [chunk as TrafficLine | string]) {
      number++
      let line: TrafficLine
      let at: number
      try {
        if (typeof item === 'string') {
          const parsed = parseLine(item, number)
          if (!parsed) continue
          line = parsed.request
          at = parsed.at
        } else {
          line = item
          at = checkLine(item, number)
        }
      } catch (error) {
        if (!(error instanceof TrafficError) || !options.skipInvalid) throw error
        if (first) collector.error('invalid_line', error.message, error.line)
        continue
      }
      if (at < last) {
        if (first) collector.outOfOrder()
        at = last
      }
      last = at
      if (shard && shardOf(line.subject[shard.dimension], shard.count) !== shard.index) continue
      await drain(at)
      clock.advance(at)
      await one(line, at, number)
    }
  }
  await drain(Number.POSITIVE_INFINITY)
  return collector.state
}

/**
 * Replay `traffic` (parsed lines or JSON-lines text) through `policy` from an empty memory store.
 * Lines should be in time order; a line earlier than the one before runs at the earlier line's time.
 *
 * @example
 * const { summary } = await simulate(readFileSync('policy.yaml', 'utf8'), readLines('traffic.jsonl'))
 * console.log(`${summary.refused} of ${summary.requests} refused`)
 */
export async function simulate(
  policy: PolicyInput | CompiledPolicy | string,
  traffic: Traffic,
  given?: SimulateOptions,
): Promise<SimulationResult> {
  const options = checkSimulateOptions(given)
  const lines = traffic as unknown as Partial<Record<symbol, unknown>> | null | undefined
  if (typeof lines?.[Symbol.iterator] !== 'function' && typeof lines?.[Symbol.asyncIterator] !== 'function')
    throw new TypeError('simulate: traffic must be lines (a list, an iterable or an async iterable)')
  const started = performance.now()
  const compiled = parsePolicy(policy)
  const state = await replay(compiled, traffic, options)
  return resultOf(compiled, state, options, performance.now() - started, 1)
}

/** The summary and charts of a replayed state. */
export function resultOf(
  policy: CompiledPolicy,
  state: SimulationState,
  options: SimulateOptions,
  elapsedMs: number,
  workers: number,
): SimulationResult {
  const top = options.top ?? 5
  return {
    summary: summarize(policy, state, top, elapsedMs, workers),
    charts: options.series ? chartsOf(policy, state, top, options.bucketMs ?? 300_000) : [],
  }
}
