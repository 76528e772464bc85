import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parsePolicy } from '../policy/load.js'
import { type Attributes, type MatchContext, NO_ATTRIBUTES } from '../policy/match.js'
import { matchRules } from './counters.js'
import { Plans } from './plan.js'

const policy = parsePolicy({
  models: { m1: { tier: 'low' }, m2: { tier: 'high' } },
  rules: [
    { id: 'per-user', per: 'user', limits: { requests: 1 }, window: 'day' },
    { id: 'per-team-model', per: ['team', 'model'], limits: { requests: 1 }, window: 'day' },
    { id: 'pro', match: { plan: 'pro' }, per: 'feature', limits: { requests: 1 }, window: 'day' },
    { id: 'high', match: { tier: 'high' }, limits: { requests: 1 }, window: 'day' },
  ],
})

const id = fc.stringMatching(/^[a-c:1-]{1,4}$/)
const context = fc.record({
  subject: fc.record({ user: id, team: id }, { requiredKeys: ['user', 'team'] }),
  model: fc.constantFrom('m1', 'm2'),
  feature: fc.option(id, { nil: undefined }),
  attributes: fc.constantFrom<Attributes>({}, { plan: 'pro' }, { plan: 'free' }),
})

const contextOf = (c: Omit<MatchContext, 'tier'>) =>
  ({ ...c, tier: c.model === 'm2' ? 'high' : 'low' }) as MatchContext
/** The rules and partition keys matched, or the error code when matching refuses. */
const outcome = (match: () => ReturnType<typeof matchRules>) => {
  try {
    return match().map((m) => [m.rule.id, m.partitionKey])
  } catch (error) {
    return (error as { code: string }).code
  }
}

describe('plans', () => {
  it('remember exactly what matching the request afresh gives, for any ids', () => {
    const plans = new Plans(policy)
    fc.assert(
      fc.property(fc.array(context, { minLength: 1, maxLength: 30 }), (contexts) => {
        for (const raw of contexts) {
          const c = contextOf(raw)
          expect(outcome(() => plans.of(c).matched)).toEqual(outcome(() => matchRules(policy, c)))
        }
      }),
      { numRuns: 200 },
    )
  })

  it('know a plan only once it was made, and only for the same ids under the same dimensions', () => {
    // one id under several dimensions, in any order: {user: a} and {team: a} reach the same depth
    const subject = fc.dictionary(fc.constantFrom('user', 'team', 'org'), fc.constantFrom('a', 'b'))
    fc.assert(
      fc.property(fc.array(subject, { minLength: 1, maxLength: 30 }), (subjects) => {
        const plans = new Plans(policy)
        const made = new Set<string>()
        for (const s of subjects) {
          const c = contextOf({ subject: s, model: 'm1', feature: undefined, attributes: NO_ATTRIBUTES })
          const shape = JSON.stringify(Object.entries(s))
          const known = plans.known(c)
          if (known !== undefined) expect(made.has(shape)).toBe(true)
          const result = outcome(() => plans.of(c).matched)
          expect(result).toEqual(outcome(() => matchRules(policy, c)))
          if (typeof result === 'string') continue // refused: no plan made
          made.add(shape)
          // an id first seen under another dimension at this depth is planned by text, and not known
          const again = plans.known(c)
          if (again !== undefined) expect(again).toBe(plans.of(c))
          if (known !== undefined) expect(known).toBe(plans.of(c))
        }
      }),
      { numRuns: 300 },
    )
  })

  it('know the plan of a request made before, unless it has attributes (those are planned by text)', () => {
    const plans = new Plans(policy)
    const plain = contextOf({
      subject: { user: 'a', team: 'b' },
      model: 'm1',
      feature: undefined,
      attributes: NO_ATTRIBUTES,
    })
    expect(plans.known(plain)).toBeUndefined()
    expect(plans.known(plain)).toBeUndefined() // looking made nothing
    const plan = plans.of(plain)
    expect(plans.known(plain)).toBe(plan)
    expect(plans.known({ ...plain, subject: { team: 'b', user: 'a' } })).toBeUndefined()
    expect(plans.known({ ...plain, subject: { user: 'b', team: 'b' } })).toBeUndefined()
    expect(plans.known({ ...plain, subject: { user: 'a' } })).toBeUndefined()
    const c = contextOf({
      subject: { user: 'a', team: 'b' },
      model: 'm1',
      feature: undefined,
      attributes: { plan: 'free' },
    })
    plans.of(c)
    expect(plans.known(c)).toBeUndefined()
    expect(plans.of(c)).toBe(plans.of(c))
  })

  it('keep nothing of a request that cannot be planned, however many new ids it brings', () => {
    const pairs = parsePolicy({
      rules: [{ id: 'pair', per: ['user', 'team'], limits: { requests: 1 }, window: 'day' }],
    })
    const plans = new Plans(pairs)
    const context = (subject: Record<string, string>, attributes: Attributes = NO_ATTRIBUTES) =>
      contextOf({ subject, model: 'm1', feature: undefined, attributes })
    plans.of(context({ user: 'u', team: 't' }))
    const nodes = plans.nodes
    for (let i = 0; i < 500; i++) {
      // no team: refused, with ever new ids, with and without attributes
      expect(outcome(() => plans.of(context({ user: `u${i}` })).matched)).toBe('invalid_subject')
      expect(outcome(() => plans.of(context({ user: `v${i}` }, { plan: 'pro' })).matched)).toBe(
        'invalid_subject',
      )
    }
    expect(plans.nodes).toBe(nodes)
    expect(plans.of(context({ user: 'u', team: 't' }))).toBe(plans.of(context({ user: 'u', team: 't' })))
  })

  it('keep counters of one partition apart by tenant scope', () => {
    const scoped = parsePolicy({ ...policy.source, tenant: 'org' })
    const plans = new Plans(scoped)
    fc.assert(
      fc.property(
        fc.array(fc.record({ org: fc.option(id, { nil: undefined }), user: id, team: id }), {
          maxLength: 20,
        }),
        (subjects) => {
          for (const subject of subjects) {
            const c = contextOf({
              subject: Object.fromEntries(
                Object.entries(subject).filter(([, v]) => v !== undefined),
              ) as Record<string, string>,
              model: 'm1',
              feature: undefined,
              attributes: {},
            })
            const plan = plans.of(c)
            for (const t of plan.templates)
              expect(t.scope).toBe(t.rule.per.length > 0 ? subject.org : undefined)
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  it('tell apart ids that would read the same run together', () => {
    const plans = new Plans(policy)
    const a = plans.of(
      contextOf({ subject: { user: 'a', team: 'bc' }, model: 'm1', feature: undefined, attributes: {} }),
    )
    const b = plans.of(
      contextOf({ subject: { user: 'ab', team: 'c' }, model: 'm1', feature: undefined, attributes: {} }),
    )
    expect(a.templates.map((t) => t.key)).not.toEqual(b.templates.map((t) => t.key))
  })

  it('stay correct past the most plans kept', () => {
    const plans = new Plans(policy, 100)
    for (let i = 0; i < 250; i++) {
      const c = contextOf({
        subject: { user: `u${i}`, team: 't' },
        model: 'm1',
        feature: undefined,
        attributes: {},
      })
      expect(plans.of(c).matched[0]!.partition).toEqual({ user: `u${i}` })
    }
  })
})
