/**
 * The hand-written policy types (`input.ts`) against the zod schema (`schema.ts`), the run-time
 * truth: the same fields at every depth, the same optional ones, the same value types, up to
 * readonly and to the closer types of windows and durations. A field added to one and not the
 * other, or typed differently, fails here.
 */
import { describe, expectTypeOf, it } from 'vitest'
import type { z } from 'zod'
import { createTollgate } from '../engine/gate.js'
import type {
  BucketWindowInput,
  DurationInput,
  DurationUnit,
  MatchInput,
  PolicyInput,
  RollingWindowInput,
  RuleInput,
  WindowInput,
  WindowUnit,
} from './input.js'
import { definePolicy, parsePolicy } from './load.js'
import type { CALENDAR_UNITS, matchSchema, policySchema, ruleSchema } from './schema.js'

/** `true` when A and B are each assignable to the other. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false

/**
 * A type with readonly dropped at every depth, and windows and durations widened to what the
 * schema's input type says of them (`string | number`, the check being a refinement).
 */
type Loose<T> =
  Same<T, WindowInput> extends true
    ? string | number | Loose<RollingWindowInput> | Loose<BucketWindowInput>
    : Same<T, DurationInput> extends true
      ? string | number
      : Plain<T>
type Plain<T> = T extends readonly (infer U)[]
  ? Loose<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: Loose<Exclude<T[K], undefined>> }
    : T

/** Readonly dropped at every depth, nothing widened. */
type Mutable<T> = T extends readonly (infer U)[]
  ? Mutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: Mutable<T[K]> }
    : T

type SchemaPolicy = z.input<typeof policySchema>
type SchemaRule = z.input<typeof ruleSchema>
type SchemaMatch = z.input<typeof matchSchema>

describe('the policy input types and the schema', () => {
  it('have the same fields and value types at every depth', () => {
    expectTypeOf<Loose<PolicyInput>>().toEqualTypeOf<Loose<SchemaPolicy>>()
    expectTypeOf<Loose<RuleInput>>().toEqualTypeOf<Loose<SchemaRule>>()
    expectTypeOf<Loose<MatchInput>>().toEqualTypeOf<Loose<SchemaMatch>>()
  })

  it('accept only what the schema accepts (with readonly dropped), and the schema all they accept', () => {
    expectTypeOf<Mutable<PolicyInput>>().toExtend<SchemaPolicy>()
    expectTypeOf<Mutable<RuleInput>>().toExtend<SchemaRule>()
    expectTypeOf<Mutable<MatchInput>>().toExtend<SchemaMatch>()
    expectTypeOf<SchemaPolicy>().toExtend<Loose<PolicyInput>>()
  })

  it('name the calendar units the schema knows', () => {
    expectTypeOf<WindowUnit>().toEqualTypeOf<(typeof CALENDAR_UNITS)[number]>()
  })
})

describe('readonly policies', () => {
  const asConst = {
    version: 1,
    units: ['image'],
    models: { m: { tier: 'low', aliases: ['fast'], price: { input: 1, output: 2, units: { image: 0.04 } } } },
    plans: { trial: { models: ['tier:low'], otherwise: { downgrade: 'm' } } },
    access: [{ match: { tier: ['low'] }, require: { flags: ['beta'] }, otherwise: 'refuse' }],
    caps: [{ match: { plan: ['free', 'trial'] }, maxTokens: 1000 }],
    defaults: { alerts: [0.5, 0.8], holds: { ttl: '10m' } },
    rules: [
      {
        id: 'team-rpm',
        per: ['team', 'user'],
        match: { subject: { team: ['a', 'b'] }, attributes: { region: ['eu', 'us'] } },
        limits: { requests: 60 },
        window: '60s',
        alerts: [0.8],
        rollout: { sample: 0.5, targets: [{ team: 'a' }] },
      },
    ],
  } as const

  it('are policies, at every depth (as `as const` makes them)', () => {
    expectTypeOf(asConst).toExtend<PolicyInput>()
    createTollgate({ policy: asConst })
    parsePolicy(asConst)
    expectTypeOf(definePolicy(asConst)).toEqualTypeOf(asConst)
  })

  it('keep mutable ones policies too', () => {
    const mutable: PolicyInput = { rules: [{ id: 'r', per: ['user'], limits: { tokens: 5 }, window: 'day' }] }
    mutable.rules = [...mutable.rules, { id: 's', limits: { requests: 1 }, window: { bucket: '1m' } }]
    createTollgate({ policy: mutable })
    const rules: { id: string; per: string[]; limits: Record<string, number>; window: 'day' | '1h' }[] = []
    rules.push({ id: 'r', per: ['user'], limits: { tokens: 5 }, window: '1h' })
    expectTypeOf({ rules, units: ['image'] }).toExtend<PolicyInput>()
    parsePolicy({ rules, units: ['image'] })
  })

  it('infer literal types through definePolicy', () => {
    const policy = definePolicy({
      rules: [{ id: 'r', per: ['user'], limits: { requests: 1 }, window: 'day' }],
    })
    expectTypeOf(policy.rules[0].id).toEqualTypeOf<'r'>()
    expectTypeOf(policy.rules[0].window).toEqualTypeOf<'day'>()
    expectTypeOf(policy.rules[0].per).toEqualTypeOf<readonly ['user']>()
  })
})

describe('windows and durations', () => {
  it('accept the calendar units, durations, numbers and the rolling and bucket objects', () => {
    expectTypeOf<'minute' | 'hour' | 'day' | 'week' | 'month' | 'lifetime'>().toExtend<WindowInput>()
    expectTypeOf<'60s' | '250ms' | '15m' | '1h' | '7d' | '2w' | '1.5h' | '1h30m'>().toExtend<WindowInput>()
    expectTypeOf<60_000>().toExtend<WindowInput>()
    expectTypeOf<{ rolling: '1h'; slots: 60 }>().toExtend<WindowInput>()
    expectTypeOf<{ rolling: 3_600_000 }>().toExtend<WindowInput>()
    expectTypeOf<{ bucket: '1m' }>().toExtend<WindowInput>()
    expectTypeOf<`${number}${DurationUnit}`>().toExtend<DurationInput>()
  })

  it('refuse a misspelt window or duration', () => {
    expectTypeOf<'daily'>().not.toExtend<WindowInput>()
    expectTypeOf<'year'>().not.toExtend<WindowInput>()
    expectTypeOf<'Minute'>().not.toExtend<WindowInput>()
    expectTypeOf<'60 secs'>().not.toExtend<WindowInput>()
    expectTypeOf<'1y'>().not.toExtend<WindowInput>()
    expectTypeOf<string>().not.toExtend<WindowInput>()
    expectTypeOf<{ rolling: '1 hour' }>().not.toExtend<WindowInput>()
    expectTypeOf<{ bucket: 'minute' }>().not.toExtend<WindowInput>()
    expectTypeOf<'10 min'>().not.toExtend<DurationInput>()
    // @ts-expect-error 'daily' is no calendar unit ('day' is)
    definePolicy({ rules: [{ id: 'r', per: 'user', limits: { requests: 100 }, window: 'daily' }] })
    definePolicy({
      // @ts-expect-error a hold's time-to-live is a duration
      rules: [{ id: 'r', limits: { requests: 1 }, window: 'day', holds: { ttl: 'ten minutes' } }],
    })
  })
})
