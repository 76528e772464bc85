/**
 * The hot path's look-up of plans from a request's parts (`Plans.knownOf`, through `PlanIndex`)
 * against making the plan afresh: it finds a plan only when it is the one the request's context
 * makes, for subjects of any dimensions, order and ids, however many share an id.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Subject } from '../decision.js'
import { parsePolicy } from '../policy/load.js'
import { type MatchContext, NO_ATTRIBUTES } from '../policy/match.js'
import { Plans } from './plan.js'
import { type Indexed, PlanIndex } from './plan-index.js'

const policy = parsePolicy({
  models: { m1: { tier: 'low' }, m2: { tier: 'high' } },
  rules: [
    { id: 'per-user', per: 'user', limits: { requests: 1 }, window: 'day' },
    { id: 'per-team', per: 'team', limits: { requests: 1 }, window: 'day' },
    { id: 'high', match: { tier: 'high' }, per: 'user', limits: { requests: 1 }, window: 'day' },
  ],
})

const id = fc.constantFrom('a', 'b', 'a:b', '{a}')
/** Subjects of a user, a team and maybe more, in any order, with few ids: many share an id. */
const subject: fc.Arbitrary<Subject> = fc
  .uniqueArray(fc.tuple(fc.constantFrom('user', 'team', 'org', 'key'), id), {
    selector: ([dimension]) => dimension,
    minLength: 2,
    maxLength: 4,
  })
  .filter((pairs) => pairs.some(([d]) => d === 'user') && pairs.some(([d]) => d === 'team'))
  .map((pairs) => Object.fromEntries(pairs))
const request = fc.record({
  subject,
  model: fc.constantFrom(undefined, 'm1', 'm2'),
  feature: fc.constantFrom(undefined, 'f', 'a'),
})

type Request = { subject: Subject; model: string | undefined; feature: string | undefined }
const contextOf = (r: Request) =>
  ({
    subject: r.subject,
    model: r.model,
    feature: r.feature,
    tier: r.model === 'm2' ? 'high' : r.model === undefined ? undefined : 'low',
    attributes: NO_ATTRIBUTES,
  }) as MatchContext

describe('plans found from a request’s parts', () => {
  it('are the plans its context makes, and only for requests planned before', () => {
    let hits = 0
    // steps over a few requests, so that many come again
    const steps = fc
      .tuple(
        fc.array(request, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 60 }),
      )
      .map(([pool, picks]) => picks.map(([n, make]) => [pool[n % pool.length]!, make] as const))
    fc.assert(
      fc.property(steps, (steps) => {
        const plans = new Plans(policy)
        const made = new Set<string>()
        // the same ids in the same order (a request keyed by text instead is never found here)
        const keyOf = (r: Request) => JSON.stringify([r.model, r.feature, Object.entries(r.subject)])
        for (const [r, make] of steps) {
          const found = plans.knownOf(r.model, r.feature, r.subject)
          if (found !== undefined) {
            hits++
            expect(made.has(keyOf(r))).toBe(true)
            expect(found).toBe(plans.of(contextOf(r)))
          }
          if (make) {
            plans.of(contextOf(r))
            made.add(keyOf(r))
          }
        }
      }),
    )
    expect(hits).toBeGreaterThan(100)
  })

  it('are found by the dimension with the most distinct ids, and past a crowded id by the trie', () => {
    const plans = new Plans(policy)
    // one org, twenty users: the index keys by user; twelve shapes share user `u0`
    const requests: Request[] = Array.from({ length: 20 }, (_, i) => ({
      subject: { org: 'o', team: 't', user: `u${i}` },
      model: undefined,
      feature: undefined,
    }))
    for (let i = 0; i < 12; i++)
      requests.push({ subject: { org: 'o', team: 't', user: 'u0' }, model: undefined, feature: `f${i}` })
    for (const r of requests) plans.of(contextOf(r))
    for (const r of requests) {
      const plan = plans.knownOf(r.model, r.feature, r.subject)
      expect(plan).toBe(plans.of(contextOf(r)))
      expect(plans.knownOf(r.model, r.feature, r.subject)).toBe(plan) // now from the index
    }
    // the same ids under other dimensions, fewer or more of them, are other requests: with one
    // shape known for the key id, and with many
    const first = { user: 'u30', team: 't', org: 'o' }
    const second = { subject: { ...first, user: 'u31' }, model: undefined, feature: 'f' }
    plans.of(contextOf(second))
    expect(plans.knownOf(undefined, 'f', second.subject)).toBeDefined()
    for (const user of ['u30', 'u31']) {
      const known = { ...first, user }
      plans.of(contextOf({ subject: known, model: undefined, feature: undefined }))
      expect(plans.knownOf(undefined, undefined, known)).toBeDefined()
      expect(plans.knownOf(undefined, undefined, known)).toBeDefined()
      expect(plans.knownOf(undefined, undefined, { user, team: 't' })).toBeUndefined()
      expect(plans.knownOf(undefined, undefined, { user, team: 't', key: 'o' })).toBeUndefined()
      expect(plans.knownOf(undefined, undefined, { user, team: 't', org: 'o', key: 'k' })).toBeUndefined()
    }
    expect(plans.knownOf(undefined, undefined, { org: 'u1', team: 't', user: 'o' })).toBeUndefined()
    expect(plans.knownOf(undefined, undefined, { org: 'o', team: 't', user: 'u1', key: 'k' })).toBeUndefined()
    expect(plans.knownOf(undefined, undefined, { org: 'o', user: 'u1' })).toBeUndefined()
  })

  it('holds subjects of any length itself: each id in its place, every other subject missed', () => {
    for (let length = 1; length <= 6; length++) {
      const index = new PlanIndex<Indexed & { name: string }>(100)
      const dimensions = ['user', 'team', 'org', 'key', 'project', 'region'].slice(0, length)
      const subject: Subject = Object.fromEntries(dimensions.map((d) => [d, `${d}-1`]))
      index.learn(subject)
      index.read(subject)
      const plan = { name: `plan ${length}`, ...unindexed() }
      index.add(undefined, undefined, plan)
      expect(index.find(undefined, undefined, { ...subject })).toBe(plan)
      for (const d of dimensions) {
        // the same ids but one (the key dimension's included), and the ids shifted by one place
        expect(index.find(undefined, undefined, { ...subject, [d]: 'other' })).toBeUndefined()
        const shifted = Object.fromEntries(dimensions.map((e, i) => [e, `${dimensions[(i + 1) % length]}-1`]))
        if (length > 1) expect(index.find(undefined, undefined, shifted)).toBeUndefined()
      }
      expect(index.find(undefined, undefined, { ...subject, extra: 'x' })).toBeUndefined()
    }
  })
})

/** The index's fields of a plan it does not keep yet. */
function unindexed(): Indexed {
  return {
    model: undefined,
    feature: undefined,
    dimensions: [],
    ids: [],
    id0: undefined,
    id1: undefined,
    id2: undefined,
    n: -1,
  }
}
