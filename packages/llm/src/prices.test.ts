import { createTollgate, parsePolicy } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { defaultModels, withDefaultPrices } from './prices.js'

describe('default prices', () => {
  it('are a valid policy models table', () => {
    const policy = parsePolicy(withDefaultPrices({ rules: [] }))
    expect(policy.models.get('gpt-4o-mini')!.price).toMatchObject({
      input: 150_000,
      output: 600_000,
      cachedInput: 75_000,
    })
    expect(policy.aliases.get('gpt-4o-2024-08-06')).toBe('gpt-4o')
    // no cached price: cached input costs the input price
    expect(policy.models.get('gpt-4')!.price!.cachedInput).toBe(30_000_000)
  })

  it('refuses what is no policy, and leaves a malformed part for the policy check to name', () => {
    expect(() => withDefaultPrices(undefined as never)).toThrow(/the policy must be a policy object/)
    const odd = withDefaultPrices({
      rules: [],
      models: { x: { aliases: 'x1' as never, price: { input: 1, output: 1 } } },
    })
    expect(odd.models.x).toMatchObject({ aliases: 'x1' })
    expect(() => parsePolicy(odd)).toThrow(/models\.x\.aliases/)
  })

  it('never override what the policy sets', () => {
    const merged = withDefaultPrices({
      models: {
        'gpt-4o': { price: { input: 1, output: 2 }, tier: 'premium' },
        'gpt-4o-mini': { tier: 'low' },
      },
      aliases: { 'gpt-4.1-2025-04-14': 'gpt-4o' },
      rules: [],
    })
    expect(merged.models!['gpt-4o']).toEqual({ price: { input: 1, output: 2 }, tier: 'premium' })
    expect(merged.models!['gpt-4o-mini']).toEqual({
      tier: 'low',
      price: defaultModels()['gpt-4o-mini']!.price,
    })
    expect(merged.models!['gpt-4.1']!.aliases ?? []).not.toContain('gpt-4.1-2025-04-14')
    expect(merged.aliases).toEqual({ 'gpt-4.1-2025-04-14': 'gpt-4o' })
  })

  it('price a call in integer micro-units', async () => {
    const gate = createTollgate({
      policy: withDefaultPrices({
        rules: [{ id: 'spend', per: 'org', limits: { cost: 1 }, window: 'month' }],
      }),
    })
    const decision = await gate.reserve({
      subject: { org: 'acme' },
      model: 'gpt-4o-2024-08-06',
      estimate: { inputTokens: 1000, maxOutputTokens: 100 },
    })
    // gpt-4o: 1000 × $2.50 + 100 × $10 per million
    expect(decision.allowed && decision.reservation.amounts.cost).toBe(2500 + 1000)
  })
})
