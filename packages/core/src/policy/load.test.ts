import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { TollgateError } from '../errors.js'
import type { RuleInput } from './input.js'
import { parsePolicy } from './load.js'

const yaml = `
version: 1
models:
  gpt-4o-mini: { tier: low, price: { input: 0.15, output: 0.6 } }
rules:
  - id: daily
    per: [project, user]
    limits: { tokens: 5000, cost: 12.5 }
    window: day
    timezone: Europe/Berlin
`

const problems = (input: unknown) => {
  try {
    parsePolicy(input as never)
  } catch (error) {
    expect(TollgateError.isInstance(error)).toBe(true)
    expect((error as TollgateError).code).toBe('invalid_policy')
    return (error as TollgateError).issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)
  }
  throw new Error('the policy was accepted')
}

describe('parsePolicy', () => {
  it('reads YAML, JSON and objects into the same compiled policy', () => {
    const fromYaml = parsePolicy(yaml)
    const fromJson = parsePolicy(JSON.stringify(fromYaml.source))
    const fromObject = parsePolicy(fromYaml.source)
    for (const policy of [fromYaml, fromJson, fromObject]) {
      expect(policy.rules[0]).toMatchObject({
        id: 'daily',
        per: ['project', 'user'],
        limits: [
          { metric: 'tokens', cap: 5000 },
          { metric: 'cost', cap: 12_500_000 },
        ],
        window: { kind: 'calendar', unit: 'day', timeZone: 'Europe/Berlin' },
        failure: 'closed',
        expiry: 'keep',
      })
      expect(policy.models.get('gpt-4o-mini')?.price).toEqual({
        input: 150_000,
        output: 600_000,
        cachedInput: 150_000,
        units: {},
      })
    }
    expect(parsePolicy(fromYaml)).toBe(fromYaml)
  })

  it('refuses a bad policy with one error listing every problem with its path', () => {
    const found = problems({
      units: ['images', 'tokens'],
      models: { m: { price: { input: -1, output: 1 } } },
      rules: [
        { id: 'a', limits: { tokns: 5 }, window: 'day' },
        { id: 'a', limits: { requests: 1.5 }, window: 'fortnight' },
        { id: 'b', limits: { requests: 1 }, window: 'day', timezone: 'Mars/Olympus' },
        { id: 'c', limits: { cost: 1 }, balance: true, window: 'day' },
        { id: 'd', limits: { requests: 1 }, window: '1m', alerts: [0.9, 0.5] },
        { id: 'e', limits: { requests: 1 } },
        { id: 'bad id!', limits: { requests: 1 }, window: 'day', extra: true },
      ],
    })
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^models\.m\.price\.input: /),
        expect.stringMatching(/^rules\.1\.window: /),
        expect.stringMatching(/^rules\.2\.timezone: .*IANA/),
        expect.stringMatching(/^rules\.6\.id: /),
        expect.stringMatching(/^rules\.6: .*extra/),
        'units.1: a builtin metric, not a custom unit',
      ]),
    )
    expect(found.length).toBeGreaterThanOrEqual(6)
    const message = (() => {
      try {
        parsePolicy({ rules: [{ id: 'x', limits: { requests: 1 } }] })
      } catch (error) {
        return (error as Error).message
      }
    })()
    expect(message).toContain('rules.0.window')
  })

  it('finds cross-field problems after the schema passes', () => {
    const found = problems({
      units: ['images'],
      models: { 'gpt-4o': { tier: 'frontier', price: { input: 1, output: 1 } } },
      access: [
        {
          allow: ['tier:nope'],
          require: { balance: { rule: 'a', atLeast: 5 } },
          otherwise: { downgrade: 'ghost' },
        },
      ],
      rules: [
        { id: 'a', limits: { tokns: 5 }, window: 'day' },
        { id: 'a', limits: { requests: 1.5 }, window: 'day' },
        { id: 'c', limits: { cost: 1 }, balance: true, window: 'day' },
        { id: 'd', limits: { requests: 1 }, window: '1m', alerts: [0.9, 0.5] },
        { id: 'e', limits: { requests: 1 }, per: ['user', 'user'] },
        { id: 'f', limits: { requests: 1 }, window: 'day', fallback: 'ghost' },
      ],
    })
    expect(found).toEqual(
      expect.arrayContaining([
        'rules.0.limits.tokns: unknown metric "tokns": use requests, inputTokens, outputTokens, tokens, cost, concurrency or declare it in "units"',
        'rules.1.id: duplicate rule id "a"',
        'rules.1.limits.requests: a whole number from 0 to 1e12',
        'rules.2.window: a balance rule counts over "lifetime"',
        'rules.3.alerts: thresholds must ascend',
        'rules.4.per: a dimension is listed twice',
        expect.stringMatching(/^rules\.4\.window: give a window/),
        'rules.5.fallback: unknown model "ghost"',
        'access.0.allow.0: unknown model or tier "tier:nope"',
        'access.0.require.balance.rule: "a" is not a balance rule',
      ]),
    )
  })

  it('lists the cross-field problems of the rules that pass the schema beside the schema problems of the others', () => {
    const found = problems({
      models: { 'gpt-4o': { price: { input: 1, output: 1 } } },
      aliases: { fast: 'ghost' },
      rules: [
        { id: 'a', per: 'user', limits: { tokens: '1k' }, window: 'minute' },
        { id: 'b', per: 'user', limits: { requests: 10.5 }, window: 'hour' },
        { id: 'b', per: 'user', limits: { requests: 1 }, window: 'year' },
        { id: 'b', per: 'user', limits: { requests: 1 }, window: 'day', fallback: 'ghost' },
      ],
    })
    expect(found).toEqual([
      'rules.0.limits.tokens: Invalid input: expected number, received string',
      expect.stringMatching(/^rules\.2\.window: not a window/),
      // found only after the schema passed: each in its own round of fixes
      'aliases.fast: alias points at unknown model "ghost"',
      'rules.1.limits.requests: a whole number from 0 to 1e12',
      'rules.3.id: duplicate rule id "b"',
      'rules.3.fallback: unknown model "ghost"',
    ])
  })

  it('refuses text holding more than one policy: a second YAML document, a JSON key given twice', () => {
    const yaml = 'rules: []\n---\nrules: [{ id: a, per: user, limits: { requests: -1 }, window: "-5m" }]\n'
    expect(problems(yaml)).toEqual([
      ': the text holds 2 YAML documents (separated by "---"): a policy is one',
    ])
    expect(() => parsePolicy('---\nrules: []\n')).not.toThrow() // one document, marked
    const json = JSON.stringify({
      rules: [{ id: 'a', per: 'user', limits: { requests: 10 }, window: 'day' }],
    })
      .replace('"requests":10', '"requests":10,"requests":100000')
      .replace('{"rules"', '{"units":[],"rules"')
      .replace('"units":[]', '"units":[],"u\\u006eits":["x"]')
    expect(problems(json)).toEqual([
      'units: the key "units" is given twice (JSON would keep the last one silently)',
      'rules.0.limits.requests: the key "requests" is given twice (JSON would keep the last one silently)',
    ])
    // keys inside strings, and the same key in two objects, are no repeats
    expect(() =>
      parsePolicy(
        '{"rules":[{"id":"a","message":"x\\",\\"message\\":\\"y","per":"user","limits":{"requests":1},"window":"day"},{"id":"b","per":"user","limits":{"requests":1},"window":"day"}]}',
      ),
    ).not.toThrow()
  })

  it('refuses an alias of an alias (resolved one step, it named no model and was called unpriced)', () => {
    const rule: RuleInput = { id: 'a', per: 'user', limits: { requests: 1 }, window: 'day' }
    const models = { 'gpt-4o-mini': { price: { input: 1, output: 1 }, aliases: ['mini'] } }
    expect(problems({ models, aliases: { fast: 'mini' }, rules: [rule] })).toEqual([
      'aliases.fast: alias points at "mini", itself an alias of "gpt-4o-mini": name the model',
    ])
    expect(problems({ aliases: { a: 'b', b: 'a' }, rules: [rule] })).toEqual([
      'aliases.a: alias points at "b", itself an alias of "a": name the model',
      'aliases.b: alias points at "a", itself an alias of "b": name the model',
    ])
    expect(() => parsePolicy({ models, aliases: { fast: 'gpt-4o-mini' }, rules: [rule] })).not.toThrow()
  })

  it('names the calendar units when a window is neither one nor a duration', () => {
    const rule = { id: 'a', per: 'user', limits: { requests: 1 } }
    for (const window of ['year', 'daily', 'Minute', '0s'])
      expect(problems({ rules: [{ ...rule, window }] })).toEqual([
        expect.stringMatching(
          /^rules\.0\.window: not a window: a calendar unit \("minute", "hour", "day", "week", "month" or "lifetime"\) or a duration/,
        ),
      ])
    for (const window of ['month', 'lifetime', '90s', 90_000] as const)
      expect(() => parsePolicy({ rules: [{ ...rule, window }] })).not.toThrow()
  })

  it('refuses custom units named like what every object has, whose counters would read its methods', () => {
    const rule = { id: 'a', per: 'user', window: 'minute' }
    const named = 'a unit cannot be named like a property of every JavaScript object'
    expect(
      problems({ units: ['images', 'constructor'], rules: [{ ...rule, limits: { images: 1 } }] }),
    ).toEqual([expect.stringContaining(`units.1: ${named}`)])
    expect(problems({ units: ['valueOf'], rules: [{ ...rule, limits: { valueOf: 1 } }] })[0]).toContain(
      `units.0: ${named}`,
    )
    expect(
      problems({
        models: { m: { price: { input: 1, output: 1, units: { toString: 1 } } } },
        rules: [{ ...rule, limits: { requests: 1 } }],
      })[0],
    ).toContain(`models.m.price.units.toString: ${named}`)
  })

  it('refuses dimensions named like what every object has, and __proto__ keys, which would match everyone', () => {
    const rule = { id: 'a', limits: { requests: 1 }, window: 'minute' } as const
    const named = 'a dimension cannot be named like a property of every JavaScript object'
    expect(problems({ rules: [{ ...rule, per: 'constructor' }] })).toEqual([
      expect.stringContaining(`rules.0.per: ${named}`),
    ])
    expect(problems({ rules: [{ ...rule, per: ['user', 'toString'] }] })[0]).toContain(
      `rules.0.per.1: ${named}`,
    )
    expect(problems({ tenant: 'hasOwnProperty', rules: [{ ...rule, per: 'org' }] })[0]).toContain(
      `tenant: ${named}`,
    )
    expect(problems({ rules: [{ ...rule, match: { subject: { valueOf: 'x' } } }] })[0]).toContain(
      `rules.0.match.subject.valueOf: ${named}`,
    )
    expect(
      problems({ rules: [{ ...rule, per: 'org', rollout: { targets: [{ constructor: 'x' }] } }] })[0],
    ).toContain(`rules.0.rollout.targets.0.constructor: ${named}`)
    // JSON and YAML make own __proto__ keys, which the schema would drop: the rule would apply to all.
    const proto = 'a key named "__proto__" is not allowed'
    expect(
      problems(
        '{"rules":[{"id":"a","match":{"subject":{"__proto__":"x"}},"limits":{"requests":1},"window":"minute"}]}',
      ),
    ).toEqual([`rules.0.match.subject.__proto__: ${proto}`])
    expect(
      problems(
        'rules:\n  - id: a\n    match: { subject: { __proto__: x } }\n    limits: { requests: 1 }\n    window: minute\n',
      ),
    ).toEqual([`rules.0.match.subject.__proto__: ${proto}`])
    expect(problems('{"models":{"__proto__":{"tier":"low"}},"rules":[]}')).toEqual([
      `models.__proto__: ${proto}`,
    ])
    // Ordinary names still pass.
    expect(parsePolicy({ tenant: 'org', rules: [{ ...rule, per: ['org', 'user'] }] }).rules[0]?.per).toEqual([
      'org',
      'user',
    ])
  })

  it('refuses a price above 0 that rounds to 0 micro-units: the model would cost nothing', () => {
    const rules = [{ id: 'b', limits: { cost: 10 }, window: 'month' }] as const
    expect(problems({ models: { m: { price: { input: 0.00000015, output: 0.6 } } }, rules })).toEqual([
      expect.stringMatching(/^models\.m\.price\.input: above 0 but under 0\.0000005 per million tokens/),
    ])
    expect(
      problems({ models: { m: { price: { input: 1, output: 1, units: { img: 1e-7 } } } }, rules }),
    ).toEqual([expect.stringMatching(/^models\.m\.price\.units\.img: above 0 but under 0\.0000005 per unit/)])
    // 0 is a free model; the smallest price held is one micro-unit
    const free = parsePolicy({ models: { m: { price: { input: 0, output: 0.000001 } } }, rules })
    expect(free.models.get('m')?.price).toMatchObject({ input: 0, output: 1 })
  })

  it('refuses an unpriced "reserve" with no amount: it held and charged 0, an unpriced model counted free', () => {
    const rules = [{ id: 'b', limits: { cost: 10 }, window: 'month' }] as const
    const needs = 'unpriced.amount: action "reserve" needs an amount above 0 to hold and charge for each call'
    expect(problems({ unpriced: { action: 'reserve' }, rules })).toEqual([needs])
    expect(problems({ unpriced: { action: 'reserve', amount: 0 }, rules })).toEqual([needs])
    expect(parsePolicy({ unpriced: { action: 'reserve', amount: 0.05 }, rules }).unpriced).toEqual({
      action: 'reserve',
      amount: 50_000,
    })
  })

  it('refuses text that is neither JSON nor YAML', () => {
    expect(problems('{ "rules": [ }')[0]).toMatch(/^: /)
    expect(problems('rules: [a, b')).toHaveLength(1)
  })

  it('reads JSON and YAML saved with a byte order mark, as some editors save them', () => {
    const json = '\uFEFF{"rules":[{"id":"a","per":"user","limits":{"requests":1},"window":"minute"}]}'
    expect(parsePolicy(json).rules[0]?.id).toBe('a')
    expect(parsePolicy(`\uFEFF${yaml}`).rules[0]?.id).toBe('daily')
  })

  it('says a file name is not policy text, and an empty text is empty', () => {
    for (const name of ['policy.yaml', './policies/prod.json'])
      expect(problems(name)).toEqual([
        `: the text ${JSON.stringify(name)} is not a policy: a string is read as the policy's JSON or YAML text; to load a file, read it first (readFileSync(path, 'utf8'))`,
      ])
    for (const empty of ['', '  \n', '# only a comment'])
      expect(problems(empty)).toEqual([': the policy text is empty'])
  })
})

describe('parsePolicy: deeply nested YAML', () => {
  const worker = fileURLToPath(new URL('./deep.worker.ts', import.meta.url))
  const run = (...policies: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', worker, ...policies], (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number | null) : 0, stdout, stderr }),
      )
    })

  it('refuses nesting past 64 levels with invalid_policy, and never crashes the process', async () => {
    // Without the check, the yaml parser overflows the stack at about 800 levels, and a second,
    // deeper policy in the same process then kills it (V8: "RegExpCompiler Allocation failed").
    const { code, stdout, stderr } = await run('flow:1000', 'flow:50000', 'block:100000', 'map:64', 'flow:63')
    expect(stderr).not.toMatch(/FATAL/)
    expect(code).toBe(0)
    const lines = stdout.trim().split('\n')
    for (const line of lines.slice(0, 4))
      expect(line).toMatch(
        /^\w+:\d+ invalid_policy: Policy is not valid JSON or YAML: it nests deeper than 64 levels \(line \d+\)/,
      )
    // 64 levels (the top mapping and 63 lists) are read, and refused by the schema as any such policy would be
    expect(lines[4]).toMatch(/^flow:63 invalid_policy: Invalid policy/)
  })

  it('counts brackets the way YAML does: inside quotes and comments they do not nest', () => {
    const text = `rules: []\n# ${'['.repeat(200)}\nversion: 1\nmodels: { "${'['.repeat(200)}": { tier: low } }\n`
    expect(parsePolicy(text).models.has('['.repeat(200))).toBe(true)
  })
})

describe('parsePolicy: YAML warnings', () => {
  it('refuses what yaml only warns about (an unresolved tag, an unknown directive), and writes no process warning', () => {
    const warnings: Error[] = []
    const listen = (warning: Error) => warnings.push(warning)
    process.on('warning', listen)
    try {
      for (const text of ['rules: !secret []', '%FOO bar\n---\nrules: []'])
        expect(problems(text).join('\n'), text).toMatch(/^: (Unresolved tag|Unknown directive)/)
      expect(parsePolicy('%YAML 1.2\n---\nrules: []').rules).toEqual([])
    } finally {
      process.off('warning', listen)
    }
    expect(warnings).toEqual([])
  })
})

describe('alert thresholds', () => {
  it('that repeat are refused (one crossing would fire the same threshold twice)', () => {
    const rule = {
      id: 'r',
      per: 'user',
      limits: { requests: 10 },
      window: 'day',
      alerts: [0.8, 0.8],
    } as const
    expect(() => parsePolicy({ rules: [rule] })).toThrow(/rules\.0\.alerts: thresholds must ascend/)
  })
})

describe('the bounds of a rule', () => {
  const base = { id: 'r', per: 'user', limits: { requests: 10 }, window: 'day' } as const
  const refused = (rule: Record<string, unknown>) => problems({ rules: [{ ...base, ...rule }] })

  it('refuse a status outside 400–599: a refusal answered 200 or 302 would read as a success', () => {
    expect(refused({ status: 200 })).toEqual(['rules.0.status: Too small: expected number to be >=400'])
    expect(refused({ status: 399 })).toEqual(['rules.0.status: Too small: expected number to be >=400'])
    expect(refused({ status: 600 })).toEqual(['rules.0.status: Too big: expected number to be <=599'])
    expect(parsePolicy({ rules: [{ ...base, status: 400 }] }).rules[0]!.status).toBe(400)
    expect(parsePolicy({ rules: [{ ...base, status: 599 }] }).rules[0]!.status).toBe(599)
  })

  it('refuse a rollout sample above 1 (50 meant as 50 % would enforce every partition)', () => {
    expect(refused({ rollout: { sample: 50 } })).toEqual([
      'rules.0.rollout.sample: Too big: expected number to be <=1',
    ])
    expect(refused({ rollout: { sample: 1.01 } })).toEqual([
      'rules.0.rollout.sample: Too big: expected number to be <=1',
    ])
    expect(parsePolicy({ rules: [{ ...base, rollout: { sample: 1 } }] }).rules[0]!.rollout).toEqual({
      sample: 1,
      targets: [],
    })
  })

  it('refuse an alert or throttle threshold of 0: it would fire on every call', () => {
    expect(refused({ alerts: [0] })).toEqual(['rules.0.alerts.0: Too small: expected number to be >0'])
    expect(refused({ alerts: [0, 0.5] })).toEqual(['rules.0.alerts.0: Too small: expected number to be >0'])
    expect(refused({ throttle: { at: 0, rate: '10/s' } })).toEqual([
      'rules.0.throttle.at: Too small: expected number to be >0',
    ])
    expect(refused({ alerts: [1.5] })).toEqual(['rules.0.alerts.0: Too big: expected number to be <=1'])
    expect(parsePolicy({ rules: [{ ...base, alerts: [0.001, 1] }] }).rules[0]!.alerts).toEqual([0.001, 1])
  })

  it('refuse more than 600 slots in a rolling window (counters stay small)', () => {
    expect(refused({ window: { rolling: '1h', slots: 100_000 } })).toEqual([
      'rules.0.window.slots: Too big: expected number to be <=600',
    ])
    expect(refused({ window: { rolling: '1h', slots: 601 } })).toEqual([
      'rules.0.window.slots: Too big: expected number to be <=600',
    ])
    const window = parsePolicy({ rules: [{ ...base, window: { rolling: '1h', slots: 600 } }] }).rules[0]!
      .window
    expect(window).toEqual({ kind: 'rolling', sizeMs: 3_600_000, slotMs: 6000 })
  })

  it('refuse a rule with no limits: it would enforce nothing', () => {
    expect(refused({ limits: {} })).toEqual(['rules.0.limits: give at least one limit'])
  })
})

describe('compiling a rule', () => {
  const base = { id: 'r', per: 'user', limits: { requests: 10 }, window: 'day' } as const

  it('rounds a rolling slot up, so a window never has more slots than asked for', () => {
    const windowOf = (window: unknown) =>
      parsePolicy({ rules: [{ ...base, window } as RuleInput] }).rules[0]!.window
    // 1000 ms over 600 slots: 2 ms slots (500 of them), not 1 ms slots (1000, above the 600 allowed)
    expect(windowOf({ rolling: '1s', slots: 600 })).toEqual({ kind: 'rolling', sizeMs: 1000, slotMs: 2 })
    // 100 s over the default 60 slots: 1667 ms, not 1666
    expect(windowOf('100s')).toEqual({ kind: 'rolling', sizeMs: 100_000, slotMs: 1667 })
    expect(windowOf({ rolling: '7ms', slots: 3 })).toEqual({ kind: 'rolling', sizeMs: 7, slotMs: 3 })
  })

  it("takes a rule's own holds over the defaults, field by field", () => {
    const policy = parsePolicy({
      defaults: { holds: { ttl: '1h', expiry: 'release' } },
      rules: [
        { ...base, id: 'own', holds: { ttl: '30s', expiry: 'keep' } },
        { ...base, id: 'ttl-only', holds: { ttl: '30s' } },
        { ...base, id: 'none' },
      ],
    })
    expect(policy.rules.map((rule) => [rule.id, rule.ttlMs, rule.expiry])).toEqual([
      ['own', 30_000, 'keep'],
      ['ttl-only', 30_000, 'release'],
      ['none', 3_600_000, 'release'],
    ])
  })
})
