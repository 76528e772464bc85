import { readFileSync } from 'node:fs'
import type { PolicyInput, RuleInput } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { formatLint, lintJson } from './format.js'
import { lintPolicy } from './lint.js'

const example = new URL('../../../../examples/simulate/policy.yaml', import.meta.url)
const codes = (policy: PolicyInput | string) => lintPolicy(policy).warnings.map((w) => w.code)
const only = (policy: PolicyInput | string) => {
  const result = lintPolicy(policy)
  expect(result.errors).toEqual([])
  return result.warnings
}
const priced = { m: { tier: 'low', price: { input: 1, output: 1 } } }

describe('lintPolicy: errors', () => {
  it('passes the bundled example policy with no errors and no warnings', () => {
    const result = lintPolicy(readFileSync(example, 'utf8'))
    expect(result).toMatchObject({ ok: true, errors: [], warnings: [] })
    expect(result.policy?.rules.length).toBe(8)
  })

  it('reports every schema problem with its path', () => {
    const result = lintPolicy(`
rules:
  - id: a
    per: user
    limits: { tokens: -5 }
    window: day
  - id: b
    limits: { bananas: 1 }
    window: fortnight
`)
    expect(result.ok).toBe(false)
    expect(result.policy).toBeNull()
    const paths = result.errors.map((e) => e.path.join('.'))
    expect(paths).toContain('rules.1.window')
    expect(result.errors.every((e) => e.severity === 'error' && e.code === 'schema')).toBe(true)
  })

  it('reports cross-field problems (unknown metric, negative cap, thresholds out of order) with paths', () => {
    const result = lintPolicy({
      rules: [
        { id: 'a', per: 'user', limits: { tokens: -5 }, window: 'day' },
        { id: 'b', limits: { bananas: 1 }, window: 'day' },
        { id: 'c', limits: { requests: 5 }, window: 'day', alerts: [0.9, 0.5] },
      ],
    })
    expect(result.errors.map((e) => e.path.join('.'))).toEqual([
      'rules.0.limits.tokens',
      'rules.1.limits.bananas',
      'rules.2.alerts',
    ])
  })

  it('reports unreadable YAML as a syntax error', () => {
    const result = lintPolicy('rules: [ {')
    expect(result.errors).toHaveLength(1)
    expect(result.errors[0]!.code).toBe('syntax')
  })

  it('formats text and JSON', () => {
    const result = lintPolicy({ rules: [{ id: 'a', limits: { requests: 1 } }] })
    expect(formatLint(result, 'p.yaml')).toContain('p.yaml: error rules.0.window [schema]')
    expect(JSON.parse(lintJson(result, 'p.yaml'))).toMatchObject({ file: 'p.yaml', ok: false })
    expect(formatLint(lintPolicy({ rules: [] }), 'ok.yaml')).toBe('ok.yaml: ok (0 rules)')
  })
})

describe('lintPolicy: child cap above its parent', () => {
  const rule = (id: string, per: string[] | undefined, tokens: number, extra: object = {}) => ({
    id,
    per,
    limits: { tokens },
    window: 'day' as const,
    ...extra,
  })

  it('warns for per user above per org (the dimension chain), with the child path', () => {
    const warnings = only({ rules: [rule('org', ['org'], 1000), rule('user', ['user'], 5000)] })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({
      code: 'child-cap-above-parent',
      path: ['rules', 1, 'limits', 'tokens'],
    })
    expect(warnings[0]!.message).toContain('"user" allows 5000 tokens per day')
  })

  it('warns when the child per is a superset, or the parent is global or the tenant', () => {
    expect(codes({ rules: [rule('p', ['project'], 10), rule('c', ['project', 'feature'], 20)] })).toEqual([
      'child-cap-above-parent',
    ])
    expect(codes({ rules: [rule('all', undefined, 10), rule('c', ['feature'], 20)] })).toEqual([
      'child-cap-above-parent',
    ])
    expect(codes({ tenant: 'ws', rules: [rule('ws', ['ws'], 10), rule('c', ['seat'], 20)] })).toEqual([
      'child-cap-above-parent',
    ])
  })

  it('warns for a shorter window above a longer one, and for calls in flight', () => {
    const warnings = codes({
      rules: [
        { id: 'org', per: 'org', limits: { tokens: 100 }, window: 'month' },
        { id: 'user', per: 'user', limits: { tokens: 200 }, window: 'day' },
        { id: 'org-c', per: 'org', limits: { concurrency: 5 } },
        { id: 'user-c', per: 'user', limits: { concurrency: 10 } },
      ],
    })
    expect(warnings).toEqual(['child-cap-above-parent', 'child-cap-above-parent'])
  })

  it('stays quiet where the child can bind', () => {
    expect(codes({ rules: [rule('org', ['org'], 1000), rule('user', ['user'], 500)] })).toEqual([])
    // a longer child window may well bind
    expect(
      codes({
        rules: [
          { id: 'org', per: 'org', limits: { tokens: 100 }, window: 'day' },
          { id: 'user', per: 'user', limits: { tokens: 200 }, window: 'month' },
        ],
      }),
    ).toEqual([])
    // unrelated dimensions do not nest
    expect(codes({ rules: [rule('f', ['feature'], 10), rule('r', ['region'], 20)] })).toEqual([])
    // the parent applies only to free requests, the child to all
    expect(
      codes({ rules: [rule('org', ['org'], 10, { match: { plan: 'free' } }), rule('user', ['user'], 20)] }),
    ).toEqual([])
    // a shadow parent does not bind first
    expect(
      codes({ rules: [rule('org', ['org'], 10, { mode: 'shadow' }), rule('user', ['user'], 20)] }),
    ).toEqual([])
  })

  it('compares windows only where each child window lies inside one parent window (weeks straddle months)', () => {
    type Window = RuleInput['window']
    const pair = (parent: Window, child: Window, extra: { parent?: object; child?: object } = {}) =>
      codes({
        rules: [
          { id: 'org', per: 'org', limits: { requests: 8 }, window: parent, ...extra.parent },
          { id: 'user', per: ['org', 'user'], limits: { requests: 10 }, window: child, ...extra.child },
        ],
      })
    const warned = ['child-cap-above-parent']
    // false positives: a weekly cap can bind across the turn of a month, a rolling 60 s across two minutes
    expect(pair('month', 'week')).toEqual([])
    expect(pair('minute', '60s')).toEqual([])
    expect(pair('hour', { rolling: '1h', slots: 60 })).toEqual([])
    expect(pair('day', '1h')).toEqual([])
    // the same unit, or calendar units that nest, in one time zone
    for (const [parent, child] of [
      ['month', 'month'],
      ['month', 'day'],
      ['week', 'day'],
      ['day', 'hour'],
      ['hour', 'minute'],
      ['week', 'minute'],
    ] as const)
      expect(pair(parent, child), `${child} in ${parent}`).toEqual(warned)
    // ...but not across time zones
    expect(pair('day', 'hour', { parent: { timezone: 'America/New_York' } })).toEqual([])
    expect(
      pair('day', 'hour', { parent: { timezone: 'Asia/Tokyo' }, child: { timezone: 'Asia/Tokyo' } }),
    ).toEqual(warned)
    // a rolling window inside a longer (or the same) rolling one
    expect(pair('60s', '60s')).toEqual(warned)
    expect(pair('1h', '60s')).toEqual(warned)
    expect(pair({ rolling: '60s', slots: 60 }, { rolling: '59s', slots: 2 })).toEqual([]) // 29.5 s slots
    // a calendar window certainly no longer than a rolling parent: a minute, a UTC day
    expect(pair('1h', 'minute')).toEqual(warned)
    expect(pair('24h', 'day')).toEqual(warned)
    expect(pair('24h', 'day', { child: { timezone: 'Europe/Berlin' } })).toEqual([]) // 25 h in October
    // everything counted lies inside a lifetime; a lifetime inside nothing shorter
    expect(pair('lifetime', 'week')).toEqual(warned)
    expect(pair('lifetime', '60s')).toEqual(warned)
    expect(pair('month', 'lifetime')).toEqual([])
    // token buckets with the same refill; none across kinds
    expect(pair({ bucket: '1m' }, { bucket: '1m' })).toEqual(warned)
    expect(pair({ bucket: '1m' }, { bucket: '30s' })).toEqual([])
    expect(pair('lifetime', { bucket: '1m' })).toEqual([])
  })

  it('warns when the child match is narrower than the parent one (plans, tiers by model)', () => {
    const policy = {
      models: { big: { tier: 'premium', price: { input: 1, output: 1 } } },
      rules: [
        rule('org', ['org'], 10, { match: { plan: ['free', 'pro'], tier: 'premium' } }),
        rule('user', ['user'], 20, { match: { plan: 'free', model: 'big' } }),
      ],
    }
    expect(codes(policy)).toEqual(['child-cap-above-parent'])
  })

  it('does not nest two names of one rank in the dimension chain (org and workspace are alternatives)', () => {
    expect(codes({ rules: [rule('org', ['org'], 100), rule('ws', ['workspace'], 200)] })).toEqual([])
    expect(codes({ rules: [rule('ws', ['workspace'], 100), rule('org', ['org'], 200)] })).toEqual([])
    // a lower rank still nests under either of them
    expect(codes({ rules: [rule('ws', ['workspace'], 100), rule('user', ['user'], 200)] })).toEqual([
      'child-cap-above-parent',
    ])
  })

  it('stays quiet under a parent that only runs as a canary (rollout sample), as under a shadow one', () => {
    expect(
      codes({
        rules: [rule('org', ['org'], 100, { rollout: { sample: 0.1 } }), rule('user', ['org', 'user'], 200)],
      }),
    ).toEqual([])
    // the same pair without the rollout is warned about
    expect(codes({ rules: [rule('org', ['org'], 100), rule('user', ['org', 'user'], 200)] })).toEqual([
      'child-cap-above-parent',
    ])
  })

  it('stays quiet when the child match also counts requests the parent never sees (a wider plan list)', () => {
    const pair = (child: string | string[]) =>
      codes({
        plans: { free: {}, pro: {} },
        rules: [
          rule('org', ['org'], 100, { match: { plan: 'pro' } }),
          rule('user', ['org', 'user'], 200, { match: { plan: child } }),
        ],
      })
    expect(pair(['free', 'pro'])).toEqual([])
    expect(pair(['pro', 'free'])).toEqual([])
    expect(pair('pro')).toEqual(['child-cap-above-parent'])
    expect(pair(['pro'])).toEqual(['child-cap-above-parent'])
  })
})

describe('lintPolicy: other smells', () => {
  it('flags rules that can never match, and match values not in the tables', () => {
    const warnings = only({
      models: priced,
      plans: { free: {} },
      rules: [
        { id: 't', match: { tier: 'gold' }, limits: { requests: 1 }, window: 'day' },
        { id: 'm', match: { model: ['m', 'typo'] }, limits: { requests: 1 }, window: 'day' },
        { id: 'p', match: { plan: 'frree' }, limits: { requests: 1 }, window: 'day' },
      ],
      caps: [{ match: { tier: 'gold' }, maxTokens: 10 }],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['never-matches', 'rules.0.match.tier'],
      ['unknown-match-value', 'rules.1.match.model'],
      ['unknown-match-value', 'rules.2.match.plan'],
      ['never-matches', 'caps.0.match.tier'],
    ])
  })

  it('flags models without a price when a cost rule applies to them', () => {
    const cost = { id: 'budget', limits: { cost: 10 }, window: 'month' as const }
    expect(
      only({ models: { a: { tier: 'x' }, b: priced.m }, rules: [cost] }).map((w) => w.path.join('.')),
    ).toEqual(['models.a'])
    expect(codes({ rules: [cost] })).toEqual(['no-prices'])
    // models, none of them priced: the same finding, once (it said unpriced-model per model)
    expect(codes({ models: { a: { tier: 'x' }, b: { tier: 'y' } }, rules: [cost] })).toEqual(['no-prices'])
    expect(codes({ models: { a: {} }, rules: [{ ...cost, match: { model: 'b' } }] })).toEqual([
      'unknown-match-value',
    ])
    expect(
      codes({ models: { a: {} }, rules: [{ id: 'r', limits: { requests: 1 }, window: 'day' }] }),
    ).toEqual([])
  })

  it('flags token prices so low they were probably written per token', () => {
    const cost = { id: 'budget', limits: { cost: 10 }, window: 'month' as const }
    const perToken = { input: 0.0000025, output: 0.00001, cachedInput: 0.00000125 }
    const warnings = only({ models: { a: { price: perToken }, b: priced.m }, rules: [cost] })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['price-per-token', 'models.a.price.input'],
      ['price-per-token', 'models.a.price.output'],
      ['price-per-token', 'models.a.price.cachedInput'],
    ])
    expect(warnings[0]?.message).toContain('would be 2.5 per million')
    // the cheapest real prices (embeddings, cached input) pass, and so does a free model
    expect(codes({ models: { e: { price: { input: 0.01, output: 0 } } }, rules: [cost] })).toEqual([])
  })

  it('flags soft thresholds that cannot help', () => {
    const warnings = only({
      defaults: { alerts: [0.5, 1] },
      rules: [
        { id: 'a', limits: { tokens: 100 }, window: 'day', alerts: [0.8, 1] },
        { id: 'b', limits: { tokens: 100 }, window: 'day', throttle: { at: 1, rate: '5/1m' } },
        {
          id: 'c',
          limits: { tokens: 100 },
          window: 'day',
          alerts: [0.5, 0.9],
          throttle: { at: 0.8, rate: '5/1m' },
        },
        { id: 'd', limits: { requests: 10 }, window: { bucket: '1m' }, alerts: [0.5] },
      ],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['alert-at-cap', 'defaults.alerts'],
      ['alert-at-cap', 'rules.0.alerts'],
      ['throttle-at-cap', 'rules.1.throttle.at'],
      ['thresholds-out-of-order', 'rules.2.throttle.at'],
      ['ignored-alerts', 'rules.3.alerts'],
    ])
    expect(warnings[3]!.message).toContain('throttles from 80% but alerts at 90%')
  })

  it('flags an alert at the very fraction the throttle starts from (it fires with the slowdown, not ahead)', () => {
    const at = (alerts: number[]) =>
      only({
        rules: [
          {
            id: 't',
            per: 'user',
            limits: { requests: 100 },
            window: 'day',
            alerts,
            throttle: { at: 0.8, rate: '1/s' },
          },
        ],
      }).map((w) => [w.code, w.path.join('.')])
    expect(at([0.8])).toEqual([['thresholds-out-of-order', 'rules.0.throttle.at']])
    expect(at([0.5, 0.8])).toEqual([['thresholds-out-of-order', 'rules.0.throttle.at']])
    expect(at([0.5, 0.79])).toEqual([])
  })

  it('reports a tier list with one typo as an unknown value, not as a rule that never matches', () => {
    const warnings = only({
      models: { m: { tier: 'fast' } },
      rules: [{ id: 't', match: { tier: ['fast', 'fsat'] }, limits: { requests: 100 }, window: 'day' }],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['unknown-match-value', 'rules.0.match.tier'],
    ])
    expect(warnings[0]!.message).not.toContain('never applies')
  })

  it('flags contradictory rollouts, useless fallbacks, ignored time zones and zero caps', () => {
    const warnings = only({
      models: {
        big: { tier: 'f', price: { input: 1, output: 1 } },
        small: { tier: 'l', price: { input: 1, output: 1 } },
      },
      rules: [
        { id: 's', limits: { requests: 1 }, window: 'day', mode: 'shadow', rollout: { sample: 0.5 } },
        { id: 'n', limits: { requests: 1 }, window: 'day', rollout: { sample: 0 } },
        { id: 'f', per: 'user', limits: { tokens: 100 }, window: 'day', fallback: 'small' },
        {
          id: 'ok',
          per: 'user',
          match: { tier: 'f' },
          limits: { tokens: 100 },
          window: 'day',
          fallback: 'small',
        },
        { id: 'z', limits: { requests: 5 }, window: '60s', timezone: 'Europe/Berlin' },
        { id: 'zero', match: { feature: 'beta' }, limits: { requests: 0 }, window: 'day' },
        { id: 'balance', per: 'user', balance: true, limits: { cost: 0 } },
      ],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['rollout-ignored', 'rules.0.rollout'],
      ['never-enforced', 'rules.1.rollout'],
      ['fallback-never-helps', 'rules.2.fallback'],
      ['ignored-timezone', 'rules.4.timezone'],
      ['zero-cap', 'rules.5.limits.requests'],
    ])
  })

  it('reads a model listed by its alias as that model when comparing a child with its parent', () => {
    const warnings = only({
      models: { 'gpt-4o': { price: { input: 1, output: 1 } } },
      aliases: { smart: 'gpt-4o' },
      rules: [
        { id: 'org', per: 'org', match: { model: 'gpt-4o' }, limits: { tokens: 100 }, window: 'day' },
        { id: 'user', per: 'user', match: { model: 'smart' }, limits: { tokens: 200 }, window: 'day' },
      ],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['child-cap-above-parent', 'rules.1.limits.tokens'],
    ])
  })

  it('reads model names written as aliases as their models, as the engine compiles them (it saw no smell)', () => {
    const models = {
      'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 }, aliases: ['big'] },
      'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 }, aliases: ['fast'] },
      'local-llama': { aliases: ['llama'] },
    }
    const rule = { id: 'r', per: 'user', window: 'day' as const }
    // the same policy, with model names or with their aliases: the same warnings
    for (const [matched, fallback] of [
      [['big', 'fast'], 'fast'],
      [['gpt-4o', 'gpt-4o-mini'], 'fast'],
      [['big', 'gpt-4o-mini'], 'gpt-4o-mini'],
    ] as [string[], string][]) {
      const warnings = only({
        models,
        rules: [{ ...rule, match: { model: matched }, limits: { requests: 2 }, fallback }],
      })
      expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
        ['fallback-never-helps', 'rules.0.fallback'],
      ])
      expect(warnings[0]!.message).toContain(`falls back to "${fallback}"`)
    }
    for (const name of ['llama', 'local-llama'])
      expect(
        only({ models, rules: [{ ...rule, match: { model: name }, limits: { cost: 5 } }] }),
      ).toMatchObject([{ code: 'unpriced-model', path: ['models', 'local-llama'] }])
    // a match on another model's alias still clears the unpriced one
    expect(codes({ models, rules: [{ ...rule, match: { model: 'big' }, limits: { cost: 5 } }] })).toEqual([])
  })

  it('flags an alias named like a model, and an alias given two models', () => {
    const warnings = only({
      models: {
        'gpt-4o': { price: { input: 1, output: 1 } },
        'gpt-4o-2024-08-06': { price: { input: 1, output: 1 }, aliases: ['latest'] },
        mini: { price: { input: 1, output: 1 }, aliases: ['fast'] },
      },
      aliases: { 'gpt-4o': 'gpt-4o-2024-08-06', latest: 'mini', fast: 'mini' },
      rules: [{ id: 'r', per: 'user', limits: { requests: 1 }, window: 'day' }],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.'), w.message])).toEqual([
      [
        'alias-twice',
        'aliases.latest',
        'Alias "latest" names "gpt-4o-2024-08-06" (models.gpt-4o-2024-08-06.aliases.0) and "mini" here: requests for it go to "mini".',
      ],
      [
        'alias-shadows-model',
        'models.gpt-4o',
        'Model "gpt-4o" is never used: the alias "gpt-4o" sends its requests to "gpt-4o-2024-08-06".',
      ],
    ])
  })

  it('flags a duration written as a bare number under a second: numbers are milliseconds', () => {
    const warnings = only({
      defaults: { holds: { ttl: 600 } },
      rules: [
        { id: 'a', per: 'user', limits: { requests: 10 }, window: 60 },
        { id: 'b', per: 'user', limits: { requests: 10 }, window: { rolling: 30, slots: 2 } },
        { id: 'c', per: 'user', limits: { requests: 10 }, window: { bucket: 1 } },
        { id: 'd', per: 'user', limits: { concurrency: 2 }, holds: { ttl: 90 } },
        { id: 'ok', per: 'user', limits: { requests: 10 }, window: 60_000, holds: { ttl: 1_000 } },
        { id: 'ms', per: 'user', limits: { requests: 10 }, window: '250ms' },
      ],
    })
    expect(warnings.map((w) => [w.code, w.path.join('.')])).toEqual([
      ['milliseconds', 'defaults.holds.ttl'],
      ['milliseconds', 'rules.0.window'],
      ['milliseconds', 'rules.1.window.rolling'],
      ['milliseconds', 'rules.2.window.bucket'],
      ['milliseconds', 'rules.3.holds.ttl'],
    ])
    expect(warnings[1]!.message).toBe(
      'Rule "a" has a window of 60 ms: a bare number is milliseconds. Write "60s" for 60 seconds, or "60ms" to keep it.',
    )
  })
})
