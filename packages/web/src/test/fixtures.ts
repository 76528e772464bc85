/** Test helper: a gate on the memory store with a fake clock, and a policy with every kind of refusal. */
import {
  createTollgate,
  type PolicyInput,
  type SettleRecord,
  type Subject,
  type Tollgate,
} from '@tollgate/core'
import { type FakeClock, fakeClock } from '@tollgate/core/testing'
import type { EventMeter } from '../meter.js'

/**
 * Per user: 3 requests a minute (rolling, retryable), 2,000 tokens a day (quota, not retryable);
 * per tenant: $1 a month (budget, 402). Prices for `gpt-4o-mini` and `gpt-4o`.
 */
export const testPolicy: PolicyInput = {
  models: {
    'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
    'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
  },
  rules: [
    { id: 'user-rpm', per: 'user', limits: { requests: 3 }, window: '60s' },
    { id: 'user-daily', per: 'user', limits: { tokens: 2000 }, window: 'day' },
    { id: 'tenant-budget', per: 'tenant', limits: { cost: 1 }, window: 'month' },
  ],
}

export interface TestGate {
  gate: Tollgate
  clock: FakeClock
  /** The gate's settle and release records (`onSettle`), in order. */
  records: SettleRecord[]
}

export function testGate(policy: PolicyInput = testPolicy): TestGate {
  const clock = fakeClock()
  const records: SettleRecord[] = []
  return { gate: createTollgate({ policy, clock, onSettle: (r) => records.push(r) }), clock, records }
}

/** `used` (settled plus held) of one rule's metric for a subject. */
export async function used(gate: Tollgate, subject: Subject, rule: string, metric: string): Promise<number> {
  const states = await gate.usage({ subject })
  const state = states.find((s) => s.rule === rule && s.metric === metric)
  if (!state) throw new Error(`no state for ${rule}.${metric}`)
  return state.used
}

/** `held` of one rule's metric for a subject. */
export async function held(gate: Tollgate, subject: Subject, rule: string, metric: string): Promise<number> {
  const states = await gate.usage({ subject })
  return states.find((s) => s.rule === rule && s.metric === metric)?.held ?? 0
}

/**
 * An event meter that counts one output token per character of `delta` (flagged `estimated`, as
 * `@tollgate/llm`'s meters flag output counted from text), or takes `usage` when sent.
 */
export function charMeter(): EventMeter {
  let output = 0
  let usage: { inputTokens: number; outputTokens: number } | undefined
  return {
    push(item) {
      const event = item as { delta?: string; usage?: { inputTokens: number; outputTokens: number } }
      output += event.delta?.length ?? 0
      if (event.usage) usage = event.usage
    },
    finish: () =>
      usage ? { usage, estimated: false } : { usage: { outputTokens: output }, estimated: true },
  }
}
