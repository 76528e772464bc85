/**
 * Plans: what a request's identity, model and feature make of the policy — the matched
 * rules, their counter keys, scopes and block markers — remembered per distinct request
 * shape, so that the hot path builds no key strings and runs no matchers twice.
 * A plan depends only on the policy and the request's shape, never on time or counts.
 */
import type { Subject } from '../decision.js'
import { TollgateError } from '../errors.js'
import { blockKey, counterKey } from '../keys.js'
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js'
import { BUILTIN_METRICS } from '../policy/compile.js'
import { type MatchContext, NO_ATTRIBUTES } from '../policy/match.js'
import type { CounterSpec, CounterState, ThrottleSpec, WindowSpec } from '../store/contract.js'
import {
  dimensionOf,
  type Matched,
  matchRule,
  namedBy,
  type Slot,
  scopeOf,
  type WindowCache,
} from './counters.js'
import type { Sent } from './fast.js'
import { type Indexed, PlanIndex } from './plan-index.js'

/** One counter of a plan: everything of its spec that does not change from call to call. */
export interface Template {
  matched: Matched
  rule: CompiledRule
  metric: string
  key: string
  cap: number
  enforce: boolean
  builtin: boolean
  scope: string | undefined
  expiry: 'keep' | 'release'
  alerts: number[] | undefined
  trip: { cooldownMs: number } | undefined
  throttle: ThrottleSpec | undefined
  /** A trailing-baseline breaker: its companion counter is the next template. */
  baseline: { factor: number; periods: number } | undefined
  /** A baseline's companion: a rolling count over the trailing span, with no cap of its own. */
  window: WindowSpec | undefined
  /** The window layout last used, and until when it holds (a calendar window's end). */
  layout: WindowSpec | undefined
  layoutFrom: number
  layoutUntil: number
  /**
   * The spec last sent for this counter. Specs are never changed once sent (stores may keep them),
   * so the next call with the same amount in the same window sends the same object again.
   */
  spec: CounterSpec | undefined
}

/**
 * What a request shape's calls hold: its rules' parts and counter templates. A plan also carries what
 * the lane was last sent for it (`Sent`, see `fast.ts`) and the parts the hot path's index found it
 * for (`Indexed`): one object per plan, kept per user, thousands at once.
 */
export interface Plan extends Indexed, Sent {
  matched: Matched[]
  templates: Template[]
  /** Block markers of the subject's ids. */
  blocks: string[]
  /** Longest hold TTL of the matched rules. */
  ttlMs: number
  /** Some matched rule counts money. */
  costly: boolean
  /** Some counter's cap follows a trailing baseline, read before each reserve. */
  baselines: boolean
  /**
   * Every counter is a calendar, lifetime or rolling window with no alerts, breaker, throttle
   * or baseline: a store's lane may hold them (see `fast.ts`).
   */
  plain: boolean
}

const BUILTIN: ReadonlySet<string> = new Set(BUILTIN_METRICS)
/** Most plans remembered per gate by default (`maxPlans`); past it they are all forgotten at once. */
const MAX_PLANS = 50_000
/** Requests whose shape would make a longer cache key are planned every time. */
const MAX_KEY = 2_048
/** The lists of a plan that has sent nothing (never written to: `sent` replaces them). */
const NOTHING: never[] = []

/** The plans of one gate, by request shape. */
export class Plans {
  /**
   * A trie over model, feature, then each subject dimension and id in order, ending in
   * its leaf: walking it hashes the request's own strings and builds none. Requests with
   * attributes are keyed by text instead. Past {@link MAX_PLANS} everything is forgotten at once.
   */
  private root = new Trie<Plan>()
  private readonly byText = new Map<string, Plan>()
  private count = 0
  private readonly parts = new Map<string, { trie: Trie<Part>; size: number }>()
  /** Plans the trie found, by one id of the subject: what the hot path asks first. */
  private readonly index: PlanIndex<Plan>
  /** Most parts per rule: never fewer than the plans, which would make them over and over. */
  private readonly maxParts: number

  constructor(
    private readonly policy: CompiledPolicy,
    private readonly max = MAX_PLANS,
  ) {
    this.index = new PlanIndex(max)
    this.maxParts = Math.max(MAX_PARTS, max)
  }

  /** Trie nodes held, the rules' parts included: for tests. */
  get nodes(): number {
    let n = this.root.size()
    for (const { trie } of this.parts.values()) n += trie.size()
    return n
  }

  /** The plan for a request context (its model already resolved). Throws like `matchRules`. */
  of(context: MatchContext): Plan {
    const found = this.walk(context, false)
    if (found === null) return this.ofText(context)
    if (found?.leaf !== undefined) return found.leaf
    // planned before any node is made: a request that cannot be planned (it throws) leaves nothing
    // behind, so that failing requests with ever new ids cannot grow the trie
    const plan = makePlan(this.policy, context, this.parts, this.maxParts)
    const node = this.walk(context, true)
    if (!node) return plan // not reached: `found` was not null, so nothing is keyed by text
    if (++this.count > this.max) {
      this.root = new Trie()
      this.index.clear()
      this.count = 0
      return plan
    }
    node.leaf = plan
    this.index.learn(context.subject)
    return plan
  }

  /**
   * The plan already made for this context, or `undefined`. A plan is made only for a request
   * whose ids passed `checkRequest`, and is found only when each id is the same string as one of
   * those: a request whose plan is known has valid ids (`fast.ts` skips checking them again).
   */
  known(context: MatchContext): Plan | undefined {
    return this.walk(context, false)?.leaf
  }

  /**
   * {@link known} for a request without attributes, from its parts (`model` already resolved):
   * the hot path looks its plan up before it makes a match context, which only making a plan
   * needs. Asks the flat index first (see `plan-index.ts`), then walks the trie. A plan found
   * vouches for the ids as the pass that found it read them, each once in that pass.
   */
  knownOf(model: string | undefined, feature: string | undefined, subject: Subject): Plan | undefined {
    const { index } = this
    let plan = index.find(model, feature, subject)
    if (plan === undefined) {
      // the trie's walk, reading each id once and only as far as the trie goes (into the index's
      // scratch, for `add`): a subject with no plan yet is read by the copy that plans it
      let node = this.root.child(model)
      if (node !== undefined) node = node.child(feature)
      const { dimensions, ids } = index
      let n = 0
      for (const dimension in subject) {
        if (node === undefined) break
        const id = subject[dimension]
        dimensions[n] = dimension
        ids[n++] = id
        node = node.child(id)
        if (node !== undefined && node.dimension !== dimension) node = undefined
      }
      index.length = n
      plan = node?.leaf
      if (plan !== undefined) index.add(model, feature, plan)
      index.release()
    }
    return plan
  }

  /**
   * The trie node of `context`, made as needed when `make`, else `undefined` when missing; `null`
   * when the context is keyed by text instead: it has attributes, or reuses an id under another
   * dimension than the node's.
   */
  private walk(context: MatchContext, make: boolean): Trie<Plan> | null | undefined {
    if (context.attributes !== NO_ATTRIBUTES) for (const _ in context.attributes) return null
    let node = make ? this.root.step(context.model) : this.root.child(context.model)
    if (node !== undefined) node = make ? node.step(context.feature) : node.child(context.feature)
    const { subject } = context
    for (const dimension in subject) {
      if (node === undefined) return undefined
      const id = subject[dimension]
      node = make ? node.step(id, dimension) : node.child(id)
      if (node !== undefined && node.dimension !== dimension) return null
    }
    return node
  }

  private ofText(context: MatchContext): Plan {
    const key = shapeKey(context)
    if (key === undefined) return makePlan(this.policy, context, this.parts, this.maxParts)
    let plan = this.byText.get(key)
    if (plan === undefined) {
      plan = makePlan(this.policy, context, this.parts, this.maxParts)
      if (this.byText.size >= this.max) this.byText.clear()
      this.byText.set(key, plan)
    }
    return plan
  }
}

/**
 * A trie node: children by key, and a leaf (a plan, or a rule's part). The first key seen is
 * kept beside the Map: a node for a model or a feature usually has one child (the same feature
 * or first dimension every time), reached with a comparison. A subject's id steps straight to its
 * node, which keeps the dimension it was first reached by; the caller checks it.
 */
class Trie<Leaf> {
  leaf: Leaf | undefined = undefined
  /** The subject dimension whose id leads here (`undefined` for a model, feature or scope). */
  readonly dimension: string | undefined
  private firstKey: string | undefined = undefined
  private first: Trie<Leaf> | undefined = undefined
  private others: Map<string | undefined, Trie<Leaf>> | undefined = undefined

  constructor(dimension?: string) {
    this.dimension = dimension
  }

  /** Nodes in this trie, this one included. */
  size(): number {
    let n = 1 + (this.first?.size() ?? 0)
    for (const child of this.others?.values() ?? []) n += child.size()
    return n
  }

  /** The child for `key`, or `undefined`. */
  child(key: string | undefined): Trie<Leaf> | undefined {
    if (this.firstKey === key && this.first !== undefined) return this.first
    return this.others?.get(key)
  }

  /** The child for `key`, made (reached by `dimension`) when missing. */
  step(key: string | undefined, dimension?: string): Trie<Leaf> {
    if (this.first !== undefined && this.firstKey === key) return this.first
    if (this.first === undefined) {
      this.firstKey = key
      this.first = new Trie(dimension)
      return this.first
    }
    this.others ??= new Map()
    let next = this.others.get(key)
    if (next === undefined) {
      next = new Trie(dimension)
      this.others.set(key, next)
    }
    return next
  }
}

/**
 * An injective text of everything a plan depends on: each part is length-prefixed
 * (`3:abc`), absent ones are `-`, attributes come last as JSON. `undefined` when too long.
 */
function shapeKey(context: MatchContext): string | undefined {
  const { model, feature, subject, attributes } = context
  let key = model === undefined ? '-' : `${model.length}:${model}`
  key += feature === undefined ? '-' : `${feature.length}:${feature}`
  for (const dimension in subject) {
    const id = subject[dimension]!
    key += `${dimension.length}:${dimension}${id.length}:${id}`
    if (key.length > MAX_KEY) return undefined
  }
  try {
    key += JSON.stringify(attributes)
  } catch {
    // a nested bigint, a cycle, a throwing toJSON: not a value a policy can match on
    throw new TollgateError('invalid_request', 'attributes must be JSON values (no cycles, no bigint)')
  }
  return key.length > MAX_KEY ? undefined : key
}

/** What one rule makes of one partition: its match and its counters' templates. */
interface Part {
  matched: Matched
  templates: Template[]
}

/**
 * Parts by rule, then by the counters' scope (a tenant) and the partition's ids: a plan
 * missed for a new request shape still reuses every rule's part (and its key strings, whose
 * hashes the store's maps have already computed). Each rule's cache starts over past `maxParts`
 * ({@link MAX_PARTS}, or the gate's `maxPlans` when larger).
 */
const MAX_PARTS = 100_000

function makePlan(
  policy: CompiledPolicy,
  context: MatchContext,
  parts: Map<string, { trie: Trie<Part>; size: number }>,
  maxParts: number,
): Plan {
  const matched: Matched[] = []
  const templates: Template[] = []
  let ttlMs = 0
  let costly = false
  let baselines = false
  for (const rule of policy.rules) {
    if (!rule.match(context, false)) continue
    let cache = parts.get(rule.id)
    if (cache === undefined || cache.size > maxParts) {
      cache = { trie: new Trie(), size: 0 }
      parts.set(rule.id, cache)
    }
    // every id first: a request missing one throws before any node is made (nothing left behind)
    const ids = rule.per.map((dimension) => {
      const id = dimensionOf(context, dimension)
      if (id === undefined)
        throw new TollgateError(
          'invalid_subject',
          `Rule "${rule.id}" counts per "${dimension}", but the request has no "${dimension}".`,
        )
      return id
    })
    // the scope (a tenant, or none) names the counters as much as the ids do
    let node = cache.trie.step(scopeOf(policy, rule, context.subject))
    for (const id of ids) node = node.step(id)
    // a canary target on a dimension outside `per` makes two parts of one partition: named or not
    if (targetsBeyond(rule)) {
      const partition: Record<string, string> = {}
      rule.per.forEach((dimension, i) => {
        partition[dimension] = ids[i]!
      })
      node = node.step(namedBy(rule, partition, context) ? 'named' : '')
    }
    let part = node.leaf
    if (part === undefined) {
      part = makePart(policy, rule, context)
      node.leaf = part
      cache.size++
    }
    matched.push(part.matched)
    for (const t of part.templates) {
      templates.push(t)
      if (t.metric === 'cost') costly = true
      if (t.baseline) baselines = true
    }
    ttlMs = Math.max(ttlMs, rule.ttlMs)
  }
  const blocks = blocksOf(context.subject)
  const plain = templates.every(isPlain)
  // copies the size of their contents: a list grown by `push` keeps room for 17, and a plan is
  // kept for every request shape (thousands at once), so its lists are made to fit
  return {
    // the index's fields first, then the lane's (see `Plan`): what a reserve reads, together
    model: undefined,
    feature: undefined,
    dimensions: NOTHING,
    ids: NOTHING,
    id0: undefined,
    id1: undefined,
    id2: undefined,
    n: -1, // in no index yet
    plain,
    costly,
    ttlMs: ttlMs || 600_000,
    blocks: blocks.slice(),
    // nothing sent yet. A literal, not a spread of shared defaults: an object built by a spread
    // is slower to read (bench/README.md)
    from: Number.POSITIVE_INFINITY,
    until: Number.NEGATIVE_INFINITY,
    builtin: 0,
    requests: 0,
    concurrency: 0,
    inputTokens: 0,
    outputTokens: 0,
    tokens: 0,
    cost: 0,
    metrics: NOTHING,
    values: NOTHING,
    memo: undefined,
    counters: NOTHING,
    used: NOTHING,
    specs: NOTHING,
    matched: matched.slice(),
    templates: templates.slice(),
    baselines,
  }
}

/** Whether a canary rule names targets by a dimension outside its `per`. */
function targetsBeyond(rule: CompiledRule): boolean {
  return rule.rollout?.targets.some((t) => Object.keys(t).some((d) => !rule.per.includes(d))) ?? false
}

/** A counter a lane can hold: a calendar or rolling window and nothing more. */
function isPlain(t: Template): boolean {
  const kind = t.rule.window.kind
  return (
    (kind === 'calendar' || kind === 'lifetime' || kind === 'none' || kind === 'rolling') &&
    t.metric !== 'concurrency' &&
    !t.alerts &&
    !t.trip &&
    !t.throttle &&
    !t.baseline &&
    t.window === undefined
  )
}

/** The match and counter templates of one rule for the partition a request falls in. */
function makePart(policy: CompiledPolicy, rule: CompiledRule, context: MatchContext): Part {
  const m = matchRule(rule, context)! // the plan matched the rule: it applies
  const templates: Template[] = []
  const scope = scopeOf(policy, rule, context.subject)
  for (const { metric, cap } of rule.limits) {
    const key = counterKey(rule.id, metric, m.partitionKey)
    const main: Template = {
      matched: m,
      rule,
      metric,
      key,
      cap,
      enforce: !m.shadow,
      builtin: BUILTIN.has(metric),
      scope,
      expiry: rule.expiry,
      alerts: rule.alerts,
      trip: rule.cooldownMs === undefined ? undefined : { cooldownMs: rule.cooldownMs },
      throttle: rule.throttle,
      baseline: undefined,
      window: undefined,
      layout: undefined,
      layoutFrom: 0,
      layoutUntil: 0,
      spec: undefined,
    }
    templates.push(main)
    const { baseline } = rule
    if (baseline && metric !== 'concurrency') {
      main.baseline = { factor: baseline.factor, periods: Math.floor(baseline.overMs / baseline.windowMs) }
      templates.push({
        ...main,
        key: `${key}#baseline`,
        cap: Number.MAX_SAFE_INTEGER,
        alerts: undefined,
        trip: undefined,
        throttle: undefined,
        baseline: undefined,
        window: { kind: 'sliding', sizeMs: baseline.overMs, slotMs: baseline.windowMs },
      })
    }
  }
  return { matched: m, templates: templates.slice() } // made to fit (see makePlan)
}

/** Block markers of every id of a subject. */
export function blocksOf(subject: Subject): string[] {
  const blocks: string[] = []
  for (const dimension in subject) blocks.push(blockKey(dimension, subject[dimension]!))
  return blocks
}

/**
 * The counter specs of a plan for one call's amounts at `now`, and the templates they come
 * from (the same index in both): custom units the call does not use are skipped.
 */
export function specsOf(
  plan: Plan,
  amounts: Readonly<Record<string, number>>,
  now: number,
  windows: WindowCache,
): { used: Template[]; specs: CounterSpec[] } {
  const { templates } = plan
  const specs: CounterSpec[] = []
  let used = templates
  for (let i = 0; i < templates.length; i++) {
    const t = templates[i]!
    const amount = amounts[t.metric] ?? 0
    if (amount === 0 && !t.builtin) {
      if (used === templates) used = templates.slice(0, i)
      continue
    }
    if (used !== templates) used.push(t)
    const window = t.window ?? layoutOf(t, now, windows)
    const last = t.spec
    if (last !== undefined && last.amount === amount && last.window === window) {
      specs.push(last)
      continue
    }
    const spec: CounterSpec = {
      key: t.key,
      metric: t.metric,
      amount,
      cap: t.cap,
      enforce: t.enforce,
      window,
      expiry: t.expiry,
    }
    if (t.scope !== undefined) spec.scope = t.scope
    if (t.alerts && (window.kind === 'fixed' || window.kind === 'sliding')) spec.alerts = t.alerts
    if (t.trip) spec.trip = t.trip
    if (t.throttle) spec.throttle = t.throttle
    if (!t.baseline) t.spec = spec // a baseline's cap is set per call
    specs.push(spec)
  }
  return { used, specs: specs.slice() } // made to fit: a plan keeps them (see makePlan)
}

/** Slots (template and spec together) for reports: built only when a decision's limits are read. */
export function slotsOf(used: readonly Template[], specs: readonly CounterSpec[]): Slot[] {
  return used.map((t, i) => ({ matched: t.matched, metric: t.metric, spec: specs[i]! }))
}

/**
 * Raise the caps of trailing-baseline counters to `factor` × their average per window over
 * the trailing span, not counting the current window (`states` read for every spec, in order).
 * The companion's rolling count covers the current window and the `periods` before it; windows
 * with no history count as zero, so a new partition lives under the floor (the policy's own cap)
 * until its history builds up.
 */
export function applyBaselines(
  used: readonly Template[],
  specs: CounterSpec[],
  states: readonly CounterState[],
) {
  for (let i = 0; i + 1 < used.length; i++) {
    const baseline = used[i]!.baseline
    if (!baseline) continue
    const current = states[i]!.used
    const trailing = Math.max(0, states[i + 1]!.used - current)
    const average = trailing / baseline.periods
    specs[i]!.cap = Math.max(used[i]!.cap, Math.ceil(baseline.factor * average))
  }
}

/** A template's window layout at `now`, remembered until its calendar window ends. */
function layoutOf(t: Template, now: number, windows: WindowCache): WindowSpec {
  if (t.layout !== undefined && t.layoutFrom <= now && now < t.layoutUntil) return t.layout
  const layout = windows.spec(t.rule, t.metric, t.cap, now)
  t.layout = layout
  if (layout.kind === 'fixed') {
    const i = layout.bounds.findIndex((start, i) => start <= now && now < layout.bounds[i + 1]!)
    t.layoutFrom = i < 0 ? 0 : layout.bounds[i]!
    t.layoutUntil = i < 0 ? 0 : layout.bounds[i + 1]!
  } else {
    t.layoutFrom = Number.NEGATIVE_INFINITY
    t.layoutUntil = Number.POSITIVE_INFINITY
  }
  return layout
}
