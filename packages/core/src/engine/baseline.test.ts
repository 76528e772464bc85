import { describe, expect, it } from 'vitest'
import { parsePolicy } from '../policy/load.js'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'
import type { Alert } from './types.js'

const HOUR = 3_600_000
const policy: PolicyInput = {
  rules: [
    {
      id: 'runaway',
      per: ['workspace', 'feature'],
      // the floor: a feature with no history may use 250 requests an hour
      limits: { requests: 250 },
      window: 'hour',
      circuit: { cooldown: '30m', baseline: { factor: 3, over: '24h' } },
    },
  ],
}

function setup() {
  const clock = fakeClock(Date.UTC(2026, 4, 4))
  const alerts: Alert[] = []
  const gate = createTollgate({ policy, store: memoryStore({ clock }), onAlert: (a) => alerts.push(a) })
  const call = async (feature: string) => {
    const d = await gate.reserve({ subject: { workspace: 'w1' }, feature })
    if (d.allowed) await gate.settle(d.id)
    return d
  }
  /** `count` calls of a feature, spread over the current hour. */
  const hour = async (feature: string, count: number) => {
    const refused = []
    for (let i = 0; i < count; i++) {
      const d = await call(feature)
      if (!d.allowed) refused.push(d)
      clock.advance(Math.floor(HOUR / count))
    }
    clock.set(Math.ceil(clock.now() / HOUR) * HOUR)
    return refused
  }
  return { clock, gate, alerts, call, hour }
}

describe('runaway breaker on a trailing baseline', () => {
  it('stops a feature burning more than 3× its hourly average, for the cool-down, with an alert', async () => {
    const { clock, alerts, call, hour } = setup()
    // a day of normal use, 200 calls an hour, under the floor while the history builds up
    for (let h = 0; h < 24; h++) expect(await hour('chat', 200)).toEqual([])
    // a runaway hour: the cap is now 3 × 200 = 600
    let first: Awaited<ReturnType<typeof call>> | undefined
    let admitted = 0
    for (let i = 0; i < 1_000 && !first; i++) {
      const d = await call('chat')
      if (d.allowed) admitted++
      else first = d
    }
    expect(admitted).toBeGreaterThanOrEqual(590)
    expect(admitted).toBeLessThanOrEqual(600)
    expect(first).toMatchObject({ allowed: false, code: 'circuit_open', status: 503, rule: 'runaway' })
    expect(alerts).toEqual([
      expect.objectContaining({ type: 'circuit', rule: 'runaway', scope: 'workspace=w1, feature=chat' }),
    ])
    // another feature goes on working
    expect((await call('search')).allowed).toBe(true)
    // open for the cool-down; past it, this hour is still over its cap, so it trips again
    clock.advance(20 * 60_000)
    expect((await call('chat')).allowed).toBe(false)
    clock.advance(11 * 60_000)
    expect(await call('chat')).toMatchObject({ allowed: false, code: 'circuit_open' })
    expect(alerts).toHaveLength(2)
    // a new hour, past the second cool-down: the feature works again
    clock.advance(HOUR)
    expect((await call('chat')).allowed).toBe(true)
  })

  it('uses the policy cap as the floor when there is no history', async () => {
    const { hour } = setup()
    expect((await hour('new', 251)).length).toBe(1)
  })

  it('refuses a baseline on a window it cannot compare with', () => {
    expect(() =>
      parsePolicy({
        rules: [
          {
            id: 'x',
            limits: { requests: 1 },
            window: 'lifetime',
            circuit: { cooldown: '1m', baseline: { factor: 2, over: '1d' } },
          },
          {
            id: 'y',
            limits: { requests: 1 },
            window: 'day',
            circuit: { cooldown: '1m', baseline: { factor: 2, over: '1d' } },
          },
        ],
      }),
    ).toThrow(/rules\.0\.circuit\.baseline[\s\S]*rules\.1\.circuit\.baseline\.over/)
  })
})
