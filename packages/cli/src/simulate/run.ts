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
import { checkLine, parseLine, readLines, type TrafficLine, TrafficError } from './traffic.js'
import type { Chart, SimulationSummary } from './types.js'

/** Options of {@link simulate}. */
export interface SimulateOptions extends CollectorOptions {
  /**
   * Count traffic lines that are not JSON or lack a time or a subject as failed requests
   * (`invalid_line`) instead of stopping with a `TrafficError`.
   * @default false
   */
  skipInvalid?: boolean
}

/** What {@link simulate} returns. */
export interface SimulationResult {
  summary: SimulationSummary
  /** Usage against each cap over time; empty unless `options.series` is set. */
  charts: Chart[]
}

type Traffic = Iterable<TrafficLine | string> | AsyncIterable<TrafficLine | string>

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
  options: SimulateOptions = {},
): Promise<SimulationResult> {
  const started = performance.now()
  const compiled = parsePolicy(policy)
  const collector = createCollector(compiled, options)
  const clock = virtualClock(0)
  // closed ids are remembered only for a minute: nothing settles twice here, and a day of traffic stays small
  const store = memoryStore({ clock, idempotencyMs: 60_000 })
  const gate = createTollgate({ policy: compiled, store, onAlert: (alert) => collector.alert(alert) })
  const inFlight = new EndHeap()
  const advance = clock.advance

  async function replay(line: TrafficLine, at: number, number: number) {
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
      collector.error(error.code, `line ${number}: ${error.message}`)
      return
    }
    const charged = collector.decision(decision, at)
    if (!decision.allowed) return
    const id = decision.id
    const usage: Usage = {
      inputTokens: line.inputTokens,
      outputTokens: line.outputTokens,
      cachedInputTokens: line.cachedInputTokens,
      units: line.units,
    }
    const settle = async () => collector.settle(charged, (await gate.settle(id, usage)).amounts)
    if (line.durationMs) inFlight.push({ at: at + line.durationMs, settle })
    else await settle()
  }

  async function drain(until: number) {
    while (inFlight.size > 0 && inFlight.peek() <= until) {
      const call = inFlight.pop()!
      advance(call.at)
      await call.settle()
    }
  }

  let number = 0
  let last = Number.NEGATIVE_INFINITY
  for await (const item of traffic) {
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
      collector.error('invalid_line', error.message)
      continue
    }
    if (at < last) {
      collector.outOfOrder()
      at = last
    }
    last = at
    await drain(at)
    advance(at)
    await replay(line, at, number)
  }
  await drain(Number.POSITIVE_INFINITY)
  return {
    summary: collector.summary(performance.now() - started),
    charts: collector.charts(),
  }
}

/** {@link simulate} on a JSON-lines file (`-` for standard input). */
export function simulateFile(
  policy: PolicyInput | CompiledPolicy | string,
  path: string,
  options: SimulateOptions = {},
): Promise<SimulationResult> {
  return simulate(policy, readLines(path), options)
}
