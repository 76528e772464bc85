/**
 * The policy as written, as TypeScript types: what `definePolicy`, `parsePolicy` and
 * `createTollgate` accept. The zod schema in `schema.ts` is what checks a policy at run time;
 * `input.test-d.ts` checks that these types and the schema's input type agree field by field, so
 * the two cannot drift. Lists and objects may be readonly at any depth (`as const` works), and
 * windows and durations are typed closely enough that a misspelt one does not compile.
 */

/** A unit of a duration string: milliseconds, seconds, minutes, hours, days, weeks. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w'

/**
 * A duration as text: a number and a unit, or two of them added up. Longer sums are accepted at
 * run time too; write them in milliseconds to keep the type check.
 * @example '60s'
 * @example '1h30m'
 */
export type DurationString = `${number}${DurationUnit}` | `${number}${DurationUnit}${number}${DurationUnit}`

/**
 * A duration: a whole number of milliseconds above 0, or a string such as `'60s'`, `'15m'`,
 * `'1h'`, `'7d'`, `'250ms'` or `'1h30m'`.
 * @example '10m'
 */
export type DurationInput = number | DurationString

/**
 * A calendar window, resetting at local boundaries in the rule's time zone (a week starts on
 * Monday), or `lifetime`, which never resets.
 */
export type WindowUnit = 'minute' | 'hour' | 'day' | 'week' | 'month' | 'lifetime'

/** A rolling window counted in slots: no span of its length ever holds more than the cap. */
export interface RollingWindowInput {
  /**
   * The window's length.
   * @example '1h'
   */
  rolling: DurationInput
  /**
   * How many slots the window is counted in, from 1 to 600. The window may under-admit by what
   * its oldest slot holds.
   * @default 60
   */
  slots?: number
}

/** A token bucket (GCRA): the cap is the burst, and the full burst refills over the duration. */
export interface BucketWindowInput {
  /**
   * How long the full burst takes to refill.
   * @example '1m'
   */
  bucket: DurationInput
}

/**
 * What a rule's limits count over: a calendar unit (`'day'`), `'lifetime'`, a rolling duration
 * (`'60s'`, or a number of milliseconds), `{ rolling, slots }` or `{ bucket }`.
 * @example 'day'
 * @example { rolling: '1h', slots: 60 }
 */
export type WindowInput = WindowUnit | DurationInput | RollingWindowInput | BucketWindowInput

/** Conditions a request must meet for a rule, cap or access entry to apply. All fields must hold. */
export interface MatchInput {
  /**
   * The request's `attributes.plan` is one of these.
   * @example 'free'
   */
  plan?: string | readonly string[]
  /**
   * The request's `attributes.environment` is one of these.
   * @example 'production'
   */
  environment?: string | readonly string[]
  /**
   * The request's `feature` is one of these.
   * @example 'chat'
   */
  feature?: string | readonly string[]
  /**
   * The request's model is one of these, after aliases: an alias stands for the model it names.
   * @example ['gpt-4o', 'gpt-4.1']
   */
  model?: string | readonly string[]
  /**
   * The tier of the request's model (from `models`) is one of these.
   * @example 'premium'
   */
  tier?: string | readonly string[]
  /**
   * The request's `attributes.flags` holds any of these.
   * @example 'beta'
   */
  flags?: string | readonly string[]
  /**
   * The request's subject has one of these ids in each dimension named.
   * @example { project: 'production' }
   */
  subject?: Record<string, string | readonly string[]>
  /**
   * Any other attribute of the request has one of these values.
   * @example { region: 'eu' }
   */
  attributes?: Record<string, string | number | boolean | readonly (string | number | boolean)[]>
}

/** How long an unsettled hold lives, and what happens to it then. */
export interface HoldsInput {
  /**
   * Time-to-live of an unsettled hold.
   * @default '10m'
   */
  ttl?: DurationInput
  /**
   * What an expired hold does: stay charged (`keep`, budget-safe) or return (`release`).
   * @default 'keep'
   */
  expiry?: 'keep' | 'release'
}

/** A canary: the partitions it enforces for; the rest run in shadow. */
export interface RolloutInput {
  /**
   * The share of partitions enforced, from 0 to 1 (a stable draw per rule and partition).
   * @default 0
   * @example 0.1
   */
  sample?: number
  /**
   * Partitions always enforced. A target may name a dimension outside the rule's `per`.
   * @default []
   * @example [{ org: 'acme' }]
   */
  targets?: readonly Record<string, string>[]
}

/** A companion rate applied from a fraction of the cap upwards. */
export interface ThrottleInput {
  /**
   * The fraction of the cap from which the throttle applies, above 0 and at most 1.
   * @example 0.95
   */
  at: number
  /**
   * At most this many requests per period for the partition (a token bucket of this rate).
   * @example '50/1m'
   */
  rate: string
}

/** A trailing baseline: the breaker trips on the partition's own history instead of a fixed cap. */
export interface BaselineInput {
  /**
   * The cap becomes `factor` times the partition's average per window over `over`, from 1 to 1000;
   * never below the rule's own limits.
   * @example 3
   */
  factor: number
  /**
   * The trailing span averaged, the current window not counted. It must cover at least two windows.
   * @example '24h'
   */
  over: DurationInput
}

/** A breaker tripped at 100% of the cap: 503 `circuit_open` for the cool-down, and a `circuit` alert. */
export interface CircuitInput {
  /**
   * How long the breaker stays open once tripped.
   * @example '30m'
   */
  cooldown: DurationInput
  /**
   * Trip on a trailing baseline instead of the rule's fixed cap.
   * @example { factor: 3, over: '24h' }
   */
  baseline?: BaselineInput
}

/** One limit of a policy: what it counts, per whom, over which window, and how it refuses. */
export interface RuleInput {
  /**
   * The rule's id: letters, digits, `_`, `.` and `-`.
   * @example 'user-daily'
   */
  id: string
  /** What the rule is for, for people reading the policy. */
  description?: string
  /**
   * Who answers for the rule (a team, an e-mail, a channel). It is carried on the rule's alerts.
   * @example 'billing-team'
   */
  owner?: string
  /**
   * When the rule applies. Without it, the rule applies to every request.
   * @example { plan: 'free' }
   */
  match?: MatchInput
  /**
   * The dimensions that partition the rule: one counter per distinct id (or tuple of ids). Omit
   * it for one global counter.
   * @example ['project', 'user']
   */
  per?: string | readonly string[]
  /**
   * Caps per metric: `requests`, `inputTokens`, `outputTokens`, `tokens`, `cost` (in currency
   * units), `concurrency`, or a unit declared in `units`. Give at least one.
   * @example { requests: 60, tokens: 5000, cost: 2.5 }
   */
  limits: Record<string, number>
  /**
   * What the limits count over. Only a rule whose limits are all `concurrency` goes without one.
   * @example 'day'
   */
  window?: WindowInput
  /**
   * The IANA time zone of this rule's calendar windows.
   * @default the policy's `timezone`
   * @example 'America/New_York'
   */
  timezone?: string
  /**
   * The reason code of this rule's refusals. It changes the code only, not the status.
   * @default from the metric and window, e.g. `quota_exceeded`
   * @example 'USER_QUOTA_EXCEEDED'
   */
  code?: string
  /**
   * The HTTP status of this rule's refusals, from 400 to 599.
   * @default from the metric and window, as the default code's
   */
  status?: number
  /**
   * The message of this rule's refusals.
   * @example 'Your daily allowance is used up.'
   */
  message?: string
  /**
   * `shadow` evaluates and records the rule but never refuses.
   * @default 'enforce'
   */
  mode?: 'enforce' | 'shadow'
  /**
   * A canary: enforce for a sample of partitions and for named targets; the rest run in shadow.
   * @example { sample: 0.1, targets: [{ org: 'acme' }] }
   */
  rollout?: RolloutInput
  /**
   * When the store is down: `open` lets requests through, `closed` refuses them.
   * @default `defaults.failure`, else `closed` for cost and balance rules and `open` for the others
   */
  failure?: 'open' | 'closed'
  /**
   * Soft thresholds, as ascending fractions of the cap: an alert once per window and partition.
   * @default `defaults.alerts`
   * @example [0.5, 0.75, 0.9]
   */
  alerts?: readonly number[]
  /**
   * From a fraction of the cap upwards, at most a rate of requests for the partition.
   * @example { at: 0.95, rate: '50/1m' }
   */
  throttle?: ThrottleInput
  /**
   * The model that serves the request instead when this rule would refuse it.
   * @example 'gpt-4o-mini'
   */
  fallback?: string
  /**
   * At 100%, trip a breaker: 503 `circuit_open` for the cool-down.
   * @example { cooldown: '30m' }
   */
  circuit?: CircuitInput
  /**
   * A prepaid balance over `lifetime`: `limits.cost` is the opening balance, topped up with
   * `gate.credit`.
   * @default false
   */
  balance?: boolean
  /**
   * How long an unsettled hold of this rule lives, and what it does when it expires.
   * @default `defaults.holds`
   * @example { ttl: '10m', expiry: 'keep' }
   */
  holds?: HoldsInput
}

/** A model's price, in currency units per million tokens (or per unit for custom units). */
export interface PriceInput {
  /**
   * The price per million input tokens.
   * @example 0.15
   */
  input: number
  /**
   * The price per million output tokens.
   * @example 0.6
   */
  output: number
  /**
   * The price per million cached input tokens.
   * @default the `input` price
   */
  cachedInput?: number
  /**
   * The price per unit of each custom unit.
   * @example { image_final: 0.17 }
   */
  units?: Record<string, number>
}

/** One entry of the `models` table. */
export interface ModelInput {
  /**
   * The model's tier, which `match.tier` and `tier:<name>` entries of allow lists refer to.
   * @example 'premium'
   */
  tier?: string
  /** What the model costs. Without a price, the policy's `unpriced` action applies to cost rules. */
  price?: PriceInput
  /**
   * Other names requests may use for this model.
   * @example ['fast']
   */
  aliases?: readonly string[]
}

/** What happens to a model without a price when a cost rule applies. */
export interface UnpricedInput {
  /**
   * `deny` refuses the call (403 `model_not_allowed`), `reserve` holds and charges `amount` for
   * each call, and `flag` allows it, charges no cost and flags the decision `unpriced_model`.
   */
  action: 'deny' | 'reserve' | 'flag'
  /**
   * The flat amount to hold and charge for each call, in currency units. `reserve` needs one above 0.
   * @example 0.05
   */
  amount?: number
}

/** What happens to a request for a model it may not use: refused, or served by another model. */
export type OtherwiseInput =
  | 'refuse'
  | {
      /**
       * The model that serves the request instead. The entries are checked again for it.
       * @example 'gpt-4o'
       */
      downgrade: string
    }

/** The models one plan may use. */
export interface PlanInput {
  /**
   * The models, or `tier:<name>` entries, the plan may use.
   * @example ['tier:low']
   */
  models?: readonly string[]
  /**
   * What happens to a request for another model: `'refuse'` (403 `model_not_allowed`) or a downgrade.
   * @default 'refuse'
   */
  otherwise?: OtherwiseInput
}

/** A balance a request may keep its model with. */
export interface BalanceRequirementInput {
  /** The id of the balance rule (one with `balance: true`) to read. */
  rule: string
  /**
   * The balance needed, in currency units.
   * @example 100
   */
  atLeast: number
}

/** Conditions, any one of which lets a request keep its model. */
export interface AccessRequirementInput {
  /**
   * Flags, any one of which in the request's `attributes.flags` suffices.
   * @example ['enterprise']
   */
  flags?: readonly string[]
  /**
   * A balance of at least this much on a balance rule that applies to the request.
   * @example { rule: 'prepaid', atLeast: 100 }
   */
  balance?: BalanceRequirementInput
}

/** One model rule: which models a request may use when it matches, or what it must have. */
export interface AccessInput {
  /**
   * When the entry applies. Without it, the entry applies to every request.
   * @example { tier: 'premium' }
   */
  match?: MatchInput
  /**
   * The models, or `tier:<name>` entries, allowed when this entry applies.
   * @example ['gpt-4o-mini', 'tier:low']
   */
  allow?: readonly string[]
  /**
   * Conditions, any one of which lets the request keep its model.
   * @example { flags: ['enterprise'] }
   */
  require?: AccessRequirementInput
  /**
   * What happens when the entry refuses the model: `'refuse'` (403 `model_not_allowed`) or a downgrade.
   * @default 'refuse'
   * @example { downgrade: 'gpt-4o' }
   */
  otherwise?: OtherwiseInput
}

/** A per-call cap on tokens, refused with 413 `request_too_large`. */
export interface CapInput {
  /**
   * When the cap applies. Without it, the cap applies to every request.
   * @example { plan: 'free' }
   */
  match?: MatchInput
  /** The most input tokens one call may send, a whole number. */
  maxInputTokens?: number
  /** The most output tokens one call may ask for, a whole number. */
  maxOutputTokens?: number
  /** The most input and output tokens together one call may use, a whole number. */
  maxTokens?: number
  /**
   * The reason code of this cap's refusals.
   * @default 'request_too_large'
   */
  code?: string
  /** The message of this cap's refusals. */
  message?: string
}

/** What every rule gets unless it sets its own. */
export interface DefaultsInput {
  /**
   * Output tokens to reserve when the request names no maximum.
   * @default 1024
   */
  maxOutputTokens?: number
  /**
   * How long unsettled holds live, and what they do when they expire.
   * @default { ttl: '10m', expiry: 'keep' }
   */
  holds?: HoldsInput
  /**
   * Soft thresholds of every rule that sets none.
   * @example [0.8]
   */
  alerts?: readonly number[]
  /**
   * The failure mode of every rule that sets none.
   * @default `closed` for cost and balance rules, `open` for the others
   */
  failure?: 'open' | 'closed'
}

/**
 * A policy as written (the input of {@link parsePolicy}, `definePolicy` and `createTollgate`).
 * Money is written in currency units and prices per million tokens.
 */
export interface PolicyInput {
  /** The version of the policy format: `1`. */
  version?: 1
  /**
   * A three-letter currency code. Money in the policy is written in this currency's units.
   * @default 'USD'
   */
  currency?: string
  /**
   * The IANA time zone of calendar windows.
   * @default 'UTC'
   * @example 'Europe/Berlin'
   */
  timezone?: string
  /**
   * The subject dimension that names a tenant. Rules partitioned by other dimensions count them
   * within the request's tenant, and a Redis Cluster keeps a tenant's counters in one slot.
   * @example 'org'
   */
  tenant?: string
  /**
   * Custom units rules may limit.
   * @default []
   * @example ['image_final', 'video_seconds']
   */
  units?: readonly string[]
  /**
   * The models, by name: their tier, price and aliases.
   * @example { 'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } } }
   */
  models?: Record<string, ModelInput>
  /**
   * Other names of models: alias → model. An alias names a model, never another alias.
   * @example { fast: 'gpt-4o-mini' }
   */
  aliases?: Record<string, string>
  /**
   * What happens to a model without a price when a cost rule applies.
   * @default { action: 'deny' }
   */
  unpriced?: UnpricedInput
  /**
   * The models each plan may use: plan → `{ models, otherwise }`.
   * @example { trial: { models: ['tier:low'] } }
   */
  plans?: Record<string, PlanInput>
  /** Model rules, checked in order: the first that fails decides. */
  access?: readonly AccessInput[]
  /** Per-call caps on tokens. */
  caps?: readonly CapInput[]
  /**
   * What every rule gets unless it sets its own: output tokens to reserve, holds, alerts, failure.
   * @example { maxOutputTokens: 1024, holds: { ttl: '10m' } }
   */
  defaults?: DefaultsInput
  /** The limits. */
  rules: readonly RuleInput[]
}
