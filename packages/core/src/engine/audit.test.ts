import { describe, expect, it } from 'vitest'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import type { AuditRecord, SettleRecord } from './audit.js'
import { createTollgate } from './gate.js'
import type { Alert } from './types.js'

const policy: PolicyInput = {
  models: { 'gpt-4o-mini': { price: { input: 1, output: 2 } } },
  rules: [
    {
      id: 'team-day',
      owner: 'ml-platform@example.com',
      per: 'team',
      limits: { tokens: 1_000 },
      window: 'day',
      alerts: [0.5],
    },
    { id: 'spend', limits: { cost: 10 }, window: 'month' },
  ],
}

function setup() {
  const clock = fakeClock(Date.UTC(2026, 0, 5, 12))
  const decisions: AuditRecord[] = []
  const settles: SettleRecord[] = []
  const alerts: Alert[] = []
  const gate = createTollgate({
    policy,
    clock,
    onDecision: (r) => decisions.push(r),
    onSettle: (r) => settles.push(r),
    onAlert: (a) => alerts.push(a),
  })
  return { clock, gate, decisions, settles, alerts }
}

const request = {
  subject: { team: 't:1', user: 'u1' },
  model: 'gpt-4o-mini',
  estimate: { inputTokens: 100, maxOutputTokens: 200 },
}

describe('audit records', () => {
  it('records the attempt number with the decision, and what the settle really charged', async () => {
    const { gate, decisions, settles, clock } = setup()
    const decision = await gate.reserve({ ...request, attempt: 2 })
    expect(decisions).toHaveLength(1)
    expect(decisions[0]).toMatchObject({ event: 'decision', id: decision.id, attempt: 2, decision: 'allow' })
    clock.advance(1_500)
    await gate.settle(decision.id, { inputTokens: 100, outputTokens: 50, estimated: true })
    expect(settles).toEqual([
      {
        event: 'settle',
        id: decision.id,
        at: Date.UTC(2026, 0, 5, 12) + 1_500,
        status: 'settled',
        model: 'gpt-4o-mini',
        estimate: {
          requests: 1,
          concurrency: 1,
          inputTokens: 100,
          outputTokens: 200,
          tokens: 300,
          cost: 500,
        },
        actual: { requests: 1, concurrency: 1, inputTokens: 100, outputTokens: 50, tokens: 150, cost: 200 },
        cost: 200,
        overrun: {},
        late: false,
        estimated: true,
      },
    ])
    // a duplicate settle is not recorded twice
    await gate.settle(decision.id, { inputTokens: 100, outputTokens: 50 })
    expect(settles).toHaveLength(1)
  })

  it('records a release with nothing charged, and defaults the attempt to 1', async () => {
    const { gate, decisions, settles } = setup()
    const decision = await gate.reserve(request)
    await gate.release(decision.id)
    expect(decisions[0]!.attempt).toBe(1)
    expect(settles[0]).toMatchObject({ event: 'release', status: 'released', cost: 0, estimated: false })
    expect(settles[0]!.actual.tokens).toBe(0)
  })

  it('refuses an attempt number that is not a whole number from 1', async () => {
    const { gate } = setup()
    await expect(gate.reserve({ ...request, attempt: 0 })).rejects.toMatchObject({ code: 'invalid_request' })
    await expect(gate.reserve({ ...request, attempt: 1.5 })).rejects.toMatchObject({
      code: 'invalid_request',
    })
  })
})

describe('alerts', () => {
  it("carry the rule's owner and the partition as scope", async () => {
    const { gate, alerts } = setup()
    await gate.reserve({ ...request, estimate: { inputTokens: 300, maxOutputTokens: 300 } })
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({
      type: 'threshold',
      rule: 'team-day',
      owner: 'ml-platform@example.com',
      scope: 'team=t:1',
      threshold: 0.5,
    })
  })
})

describe('allowed decisions', () => {
  it('serialise with their limits and headers, computed on first read', async () => {
    const { gate } = setup()
    const decision = await gate.reserve(request)
    const json = JSON.parse(JSON.stringify(decision))
    expect(json).toMatchObject({ allowed: true, id: decision.id, model: 'gpt-4o-mini' })
    expect(json.limits.map((l: { rule: string }) => l.rule)).toEqual(['team-day', 'spend'])
    expect(json.headers).toEqual(decision.headers)
    expect(Object.keys(json.headers).length).toBeGreaterThan(0)
  })
})

describe('the decision record', () => {
  it('names the subject the engine charged, whatever the caller does to its object meanwhile', async () => {
    // built from the caller's live object after an await, the record named whoever it held by then
    const { gate, decisions } = setup()
    const subject = { team: 't1', user: 'u1' }
    const pending = gate.reserve({
      subject,
      model: 'gpt-4o-mini',
      estimate: { inputTokens: 10, maxOutputTokens: 10 },
    })
    subject.user = 'u2'
    expect((await pending).allowed).toBe(true)
    expect(decisions[0]!.subject).toEqual({ team: 't1', user: 'u1' })
  })
})

describe('the settle record', () => {
  it('says cost null when no rule counts cost, as documented (it said 0)', async () => {
    const settles: SettleRecord[] = []
    const gate = createTollgate({
      policy: { rules: [{ id: 'day', per: 'user', limits: { tokens: 1000 }, window: 'day' }] },
      onSettle: (r) => settles.push(r),
    })
    const d = await gate.reserve({
      subject: { user: 'u1' },
      estimate: { inputTokens: 1, maxOutputTokens: 1 },
    })
    await gate.settle(d.allowed ? d.id : '', { inputTokens: 1, outputTokens: 1 })
    expect(settles[0]!.cost).toBeNull()
  })
})

describe('the settle record of a call made while the store was down (mutation audit)', () => {
  it('says what the call used, not what was estimated', async () => {
    const store = memoryStore({ clock: fakeClock(Date.UTC(2026, 0, 5, 12)) })
    const down = () => Promise.reject(new Error('ECONNREFUSED'))
    const settles: SettleRecord[] = []
    const gate = createTollgate({
      policy: { ...policy, rules: [policy.rules[0]!] }, // a token rule: it fails open
      store: { ...store, lane: undefined, reserve: down, commit: down },
      onSettle: (r) => settles.push(r),
    })
    const d = await gate.reserve(request)
    expect(d).toMatchObject({ allowed: true, flags: ['store_degraded'] })
    expect(await gate.settle(d.id, { inputTokens: 100, outputTokens: 50 })).toMatchObject({
      status: 'degraded',
    })
    expect(settles).toMatchObject([
      { event: 'settle', status: 'degraded', actual: { inputTokens: 100, outputTokens: 50, tokens: 150 } },
    ])
  })
})
