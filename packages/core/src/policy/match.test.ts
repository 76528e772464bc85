import { describe, expect, it } from 'vitest'
import type { MatchInput } from './input.js'
import { type Attributes, compileMatch, type MatchContext } from './match.js'

const context = (over: Partial<MatchContext> = {}): MatchContext => ({
  subject: { user: 'u' },
  attributes: {},
  model: undefined,
  tier: undefined,
  feature: undefined,
  ...over,
})
const applies = (match: MatchInput, attributes: Attributes) => compileMatch(match)(context({ attributes }))

describe('compileMatch', () => {
  it('matches a number or boolean attribute by its text, as the policy writes it', () => {
    expect(applies({ plan: '5' }, { plan: 5 })).toBe(true)
    expect(applies({ plan: ['4', '5'] }, { plan: 5 })).toBe(true)
    expect(applies({ plan: '5' }, { plan: 6 })).toBe(false)
    expect(applies({ environment: 'true' }, { environment: true })).toBe(true)
    expect(applies({ environment: 'false' }, { environment: false })).toBe(true)
    expect(applies({ environment: 'true' }, { environment: false })).toBe(false)
    // anything else is no name
    expect(applies({ plan: '5' }, { plan: ['5'] })).toBe(false)
    expect(applies({ plan: 'null' }, { plan: null })).toBe(false)
  })

  it('matches flags any of them, given as a list or as one string', () => {
    expect(applies({ flags: ['beta', 'internal'] }, { flags: ['beta'] })).toBe(true)
    expect(applies({ flags: ['beta', 'internal'] }, { flags: ['internal', 'other'] })).toBe(true)
    expect(applies({ flags: ['beta', 'internal'] }, { flags: ['other'] })).toBe(false)
    expect(applies({ flags: 'beta' }, { flags: 'beta' })).toBe(true)
    expect(applies({ flags: ['beta', 'internal'] }, { flags: 'internal' })).toBe(true)
    expect(applies({ flags: 'beta' }, { flags: 'other' })).toBe(false)
    expect(applies({ flags: 'beta' }, {})).toBe(false)
  })

  it('matches a list-valued attribute when any of its values is wanted', () => {
    expect(applies({ attributes: { region: 'eu' } }, { region: ['eu', 'us'] })).toBe(true)
    expect(applies({ attributes: { region: ['eu', 'apac'] } }, { region: ['us', 'apac'] })).toBe(true)
    expect(applies({ attributes: { region: 'eu' } }, { region: ['us', 'apac'] })).toBe(false)
    expect(applies({ attributes: { region: 'eu' } }, { region: 'eu' })).toBe(true)
  })

  it('loose (usage, balances): lets a tier rule pass with no model, never for a model without that tier', () => {
    const premium = compileMatch({ tier: 'premium' })
    // no model named: every tier rule may apply
    expect(premium(context(), true)).toBe(true)
    // a model with no tier: a tier rule never applies, loose or strict
    expect(premium(context({ model: 'plain' }), true)).toBe(false)
    expect(premium(context({ model: 'plain' }), false)).toBe(false)
    expect(premium(context({ model: 'cheap', tier: 'low' }), true)).toBe(false)
    expect(premium(context({ model: 'big', tier: 'premium' }), true)).toBe(true)
    // strict: no model is no tier
    expect(premium(context(), false)).toBe(false)
  })
})
