/**
 * The policy schema, in zod. A policy is data: a TypeScript object, JSON or YAML.
 * Money is written in currency units (`50` is $50 in a USD policy) and held as
 * integer micro-units; prices are per million tokens (or per unit for custom units).
 */
import { z } from 'zod'
import { parseDuration, parseRate } from '../duration.js'
import { assertTimeZone } from '../windows/calendar.js'
import { BUILTIN_METRICS } from './compile.js'

/** What names and reason codes are made of: letters, digits, `_`, `.` and `-`. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/

const name = z.string().regex(NAME_PATTERN, 'use letters, digits, "_", "." or "-"').max(128)
/**
 * A subject dimension's name. Names every JavaScript object answers to (`constructor`, `toString`,
 * `__proto__`, …) are refused: a subject without such a dimension would still seem to have one,
 * inherited, so the rule would count every caller under one partition (or fail on a function).
 */
const dimension = z
  .string()
  .min(1)
  .refine(
    (value) => !(value in Object.prototype),
    'a dimension cannot be named like a property of every JavaScript object ("constructor", "toString", "__proto__", …)',
  )
/**
 * A custom unit's name. Names every JavaScript object answers to are refused: amounts are plain
 * objects, so a counter of a unit named `constructor` read a function where its amount was
 * missing, and its count became text.
 */
const unitName = name.refine(
  (value) => !(value in Object.prototype),
  'a unit cannot be named like a property of every JavaScript object ("constructor", "toString", "valueOf", …)',
)
const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)])
const duration = z
  .union([z.string(), z.number()])
  .refine(
    (value) => parseDuration(value) !== null,
    'not a duration: write milliseconds or e.g. "60s", "15m", "1h", "7d"',
  )
const rate = z
  .string()
  .refine((value) => parseRate(value) !== null, 'not a rate: write e.g. "50/1m" or "10/s"')
const timeZone = z.string().refine((value) => {
  try {
    assertTimeZone(value)
    return true
  } catch {
    return false
  }
}, 'not an IANA time zone, e.g. "UTC", "Europe/Berlin"')
const money = z.number().finite().nonnegative().max(1e9, 'more than 1e9 currency units')
const fraction = z.number().gt(0).lte(1)
const count = z.number().int('must be a whole number').nonnegative().max(1e12, 'more than 1e12')

/** Conditions a request must meet for a rule, cap or access entry to apply. Lists mean "any of". */
export const matchSchema = z.strictObject({
  plan: oneOrMany(z.string()).optional(),
  environment: oneOrMany(z.string()).optional(),
  feature: oneOrMany(z.string()).optional(),
  /** Model names (after aliases). */
  model: oneOrMany(z.string()).optional(),
  /** Model tiers from the `models` table. */
  tier: oneOrMany(z.string()).optional(),
  /** Flags in `attributes.flags`: any of them. */
  flags: oneOrMany(z.string()).optional(),
  /** Subject ids, e.g. `{ project: 'production' }`. */
  subject: z.record(dimension, oneOrMany(z.string())).optional(),
  /** Any other attribute, e.g. `{ region: 'eu' }`. */
  attributes: z.record(z.string(), oneOrMany(z.union([z.string(), z.number(), z.boolean()]))).optional(),
})

/** The calendar units of a window (`WindowUnit` in `input.ts`). */
export const CALENDAR_UNITS = ['minute', 'hour', 'day', 'week', 'month', 'lifetime'] as const
/** A calendar unit or a rolling duration, refused with one message naming both (`year` is neither). */
const calendarOrDuration = z
  .union([z.enum(CALENDAR_UNITS), z.string(), z.number()])
  .refine(
    (value) => (CALENDAR_UNITS as readonly unknown[]).includes(value) || parseDuration(value) !== null,
    'not a window: a calendar unit ("minute", "hour", "day", "week", "month" or "lifetime") or a duration, e.g. "60s", "15m", "1h", "7d"',
  )

/** A window: a calendar unit, a rolling duration, or a token bucket refilling its full burst over a duration. */
export const windowSchema = z.union([
  calendarOrDuration,
  z.strictObject({ rolling: duration, slots: z.number().int().min(1).max(600).optional() }),
  z.strictObject({ bucket: duration }),
])

const holdsSchema = z.strictObject({
  /** Time-to-live of an unsettled hold. */
  ttl: duration.optional(),
  /** What an expired hold does: stay charged (`keep`, budget-safe) or return (`release`). */
  expiry: z.enum(['keep', 'release']).optional(),
})

export const ruleSchema = z.strictObject({
  id: name,
  description: z.string().optional(),
  /** Who answers for this rule (a team, an e-mail, a channel): carried on its alerts. */
  owner: z.string().min(1).optional(),
  match: matchSchema.optional(),
  /** Dimensions that partition the rule: one counter per distinct value (or tuple). */
  per: oneOrMany(dimension).optional(),
  /** Caps per metric: requests, inputTokens, outputTokens, tokens, cost (money), concurrency, or a declared unit. */
  limits: z
    .record(z.string(), z.number())
    .refine((limits) => Object.keys(limits).length > 0, 'give at least one limit'),
  window: windowSchema.optional(),
  timezone: timeZone.optional(),
  /** Reason code for refusals by this rule, e.g. `USER_QUOTA_EXCEEDED`. */
  code: z.string().regex(NAME_PATTERN).optional(),
  status: z.number().int().min(400).max(599).optional(),
  message: z.string().optional(),
  mode: z.enum(['enforce', 'shadow']).optional(),
  rollout: z
    .strictObject({
      /** Share of partitions enforced, 0–1; the rest run in shadow. */
      sample: z.number().min(0).max(1).optional(),
      /** Partitions always enforced, e.g. `[{ org: 'acme' }]`. */
      targets: z.array(z.record(dimension, z.string())).optional(),
    })
    .optional(),
  failure: z.enum(['open', 'closed']).optional(),
  alerts: z.array(fraction).optional(),
  throttle: z.strictObject({ at: fraction, rate }).optional(),
  /** Model that serves the request instead when this rule refuses it. */
  fallback: z.string().optional(),
  circuit: z
    .strictObject({
      /** How long the breaker stays open once tripped. */
      cooldown: duration,
      /**
       * Trip on a trailing baseline instead of a fixed cap: the cap becomes `factor` × the
       * average per window over the trailing `over` (not counting the current window), and
       * never less than the rule's own limits (the floor for partitions with no history).
       */
      baseline: z.strictObject({ factor: z.number().min(1).max(1_000), over: duration }).optional(),
    })
    .optional(),
  /** A prepaid balance: `limits.cost` is the opening balance; top up with `gate.credit`. */
  balance: z.boolean().optional(),
  holds: holdsSchema.optional(),
})

/**
 * A price, held in whole micro-units (per million tokens, or per unit). A price above 0 that rounds
 * to 0 micro-units would make the model free, and no budget would ever bind: refused.
 */
const price = (per: string) =>
  money.refine(
    (value) => value === 0 || Math.round(value * 1e6) > 0,
    `above 0 but under 0.0000005 ${per}: it rounds to 0 millionths of the currency, so every call would cost 0` +
      (per === 'per million tokens' ? ': prices are per million tokens (e.g. 0.15, not 0.00000015)' : ''),
  )
const tokenPrice = price('per million tokens')

const priceSchema = z.strictObject({
  /** Per million input tokens. */
  input: tokenPrice,
  /** Per million output tokens. */
  output: tokenPrice,
  /** Per million cached input tokens. @default input */
  cachedInput: tokenPrice.optional(),
  /** Per unit of a custom unit, e.g. `{ image_final: 0.04 }`. */
  units: z.record(unitName, price('per unit')).optional(),
})

const otherwiseSchema = z.union([z.literal('refuse'), z.strictObject({ downgrade: z.string() })])

export const accessSchema = z.strictObject({
  match: matchSchema.optional(),
  /** Models or `tier:<name>` entries allowed when this entry applies. */
  allow: z.array(z.string()).optional(),
  /** Conditions, any one of which lets the request keep its model. */
  require: z
    .strictObject({
      flags: z.array(z.string()).optional(),
      balance: z.strictObject({ rule: name, atLeast: money }).optional(),
    })
    .optional(),
  otherwise: otherwiseSchema.optional(),
})

export const capSchema = z.strictObject({
  match: matchSchema.optional(),
  maxInputTokens: count.optional(),
  maxOutputTokens: count.optional(),
  maxTokens: count.optional(),
  code: z.string().optional(),
  message: z.string().optional(),
})

export const policySchema = z.strictObject({
  version: z.literal(1).optional(),
  currency: z.string().length(3).optional(),
  timezone: timeZone.optional(),
  /**
   * The subject dimension that names a tenant (e.g. `org`). Counters of rules partitioned by
   * subject dimensions are scoped to the request's tenant, so a Redis Cluster keeps them in one slot.
   */
  tenant: dimension.optional(),
  /** Custom units rules may limit, e.g. `['image_draft', 'video_seconds']`. */
  units: z
    .array(
      unitName.refine((unit) => !(BUILTIN_METRICS as readonly string[]).includes(unit), {
        message: 'a builtin metric, not a custom unit',
      }),
    )
    .optional(),
  models: z
    .record(
      z.string(),
      z.strictObject({
        tier: z.string().optional(),
        price: priceSchema.optional(),
        aliases: z.array(z.string()).optional(),
      }),
    )
    .optional(),
  aliases: z.record(z.string(), z.string()).optional(),
  /** What to do with a model that has no price. */
  unpriced: z
    .strictObject({ action: z.enum(['deny', 'reserve', 'flag']), amount: money.optional() })
    // reserving nothing would count an unpriced model as free, which the policy says it never is
    .refine((u) => u.action !== 'reserve' || (u.amount !== undefined && u.amount > 0), {
      message: 'action "reserve" needs an amount above 0 to hold and charge for each call',
      path: ['amount'],
    })
    .optional(),
  plans: z
    .record(
      z.string(),
      z.strictObject({ models: z.array(z.string()).optional(), otherwise: otherwiseSchema.optional() }),
    )
    .optional(),
  access: z.array(accessSchema).optional(),
  caps: z.array(capSchema).optional(),
  defaults: z
    .strictObject({
      /** Output tokens to reserve when the request names no maximum. */
      maxOutputTokens: count.optional(),
      holds: holdsSchema.optional(),
      alerts: z.array(fraction).optional(),
      failure: z.enum(['open', 'closed']).optional(),
    })
    .optional(),
  rules: z.array(ruleSchema),
})

/**
 * The policy as the schema hands it over once it is valid: what `compilePolicy` reads. The types
 * users write policies in are the hand-written ones of `input.ts` (documented field by field, readonly
 * at any depth); `input.test-d.ts` checks that they and `z.input<typeof policySchema>` agree.
 */
export type PolicyData = z.output<typeof policySchema>
/** One rule as the schema hands it over. */
export type RuleData = z.output<typeof ruleSchema>

export type { MatchInput, PolicyInput, RuleInput } from './input.js'
