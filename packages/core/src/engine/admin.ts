import { shown, TollgateError } from '../errors.js'
import { blockKey, counterKey, partitionKey } from '../keys.js'
import { toMicros } from '../money.js'
import type { CompiledRule } from '../policy/compile.js'
import type { MatchContext } from '../policy/match.js'
import { NAME_PATTERN } from '../policy/schema.js'
import type { CounterSpec } from '../store/contract.js'
import { readAnswer, timeOf } from './answers.js'
import type { Engine } from './context.js'
import { windowSpec } from './counters.js'
import { resolveModel } from './models.js'
import type { CounterRef } from './types.js'
import { checkAmount, checkIdMap, checkRuleRef } from './validate.js'

/** The counter a reference names, with the rule it belongs to. */
export async function counterOf(
  engine: Engine,
  ref: CounterRef,
): Promise<{ rule: CompiledRule; spec: CounterSpec }> {
  checkRuleRef(ref, 'the counter')
  checkIdMap(ref.subject, engine.maxIdLength, 'subject')
  const rule = engine.policy.rulesById.get(ref.rule)
  if (!rule) throw new TollgateError('unknown_rule', `No rule "${ref.rule}" in the policy.`)
  const only = rule.limits.length === 1 ? rule.limits[0]!.metric : undefined
  const metric = ref.metric ?? (rule.balance ? 'cost' : only)
  const limit = rule.limits.find((l) => l.metric === metric)
  if (!limit) {
    const what = metric ? `no "${metric}" limit` : 'several metrics: name one'
    throw new TollgateError('invalid_request', `Rule "${rule.id}" has ${what}.`)
  }
  const { policy } = engine
  const { tenant } = policy
  // as a reserve counts it: a model named by its alias is the model, and the counter lives under
  // the tenant only when the rule counts per an id of the subject (not per model, tier or feature)
  const scoped = tenant !== undefined && rule.per.some((d) => !REQUEST_DIMENSIONS.has(d))
  const needs = scoped ? [...rule.per, tenant] : rule.per
  const missing = needs.find((d) => typeof ref.subject[d] !== 'string' || ref.subject[d] === '')
  if (missing)
    throw new TollgateError('invalid_subject', `Rule "${rule.id}" counts per "${missing}": give its id.`)
  const model = ref.subject.model
  const ids = model === undefined ? ref.subject : { ...ref.subject, model: resolveModel(policy, model)! }
  const now = timeOf(await engine.call(() => engine.store.now(), '', null))
  const spec: CounterSpec = {
    key: counterKey(rule.id, limit.metric, partitionKey(rule.per, ids)),
    metric: limit.metric,
    amount: 0,
    cap: limit.cap,
    enforce: true,
    window: windowSpec(rule, limit.metric, limit.cap, now, engine.windows),
    expiry: 'keep',
  }
  if (scoped) spec.scope = ref.subject[tenant]!
  return { rule, spec }
}

/** The most a balance may hold, in micro-units: 1e9 currency units, the most a policy states. */
const MAX_BALANCE = 1e15

/** Dimensions a request names apart from its subject: a rule per these alone is shared by tenants. */
const REQUEST_DIMENSIONS: ReadonlySet<string> = new Set(['model', 'tier', 'feature'])

/**
 * What is left of a balance rule for a request, in micro-units: 0 when the rule does not apply
 * to the request (another plan's opening balance unlocks nothing) or cannot be read.
 */
export async function balanceOf(engine: Engine, rule: string, context: MatchContext): Promise<number> {
  if (!engine.policy.rulesById.get(rule)?.match(context, true)) return 0
  try {
    const { spec } = await counterOf(engine, { rule, subject: context.subject })
    const [state] = readAnswer(await engine.call(() => engine.store.read([spec]), '', null), 1)
    return state!.cap - state!.used
  } catch {
    return 0 // an unreadable balance never unlocks a premium model
  }
}

export async function override(engine: Engine, ref: CounterRef, cap: number | null): Promise<void> {
  const { spec } = await counterOf(engine, ref)
  // money is given in currency units, as in the policy, and bounded as there (1e9)
  if (spec.metric === 'cost' && cap !== null && !(typeof cap === 'number' && cap >= 0 && cap <= 1e9)) {
    throw new TollgateError(
      'invalid_amount',
      `cap must be an amount of money from 0 to 1e9 currency units, got ${shown(cap)}`,
    )
  }
  const value = cap === null ? null : spec.metric === 'cost' ? toMicros(cap) : cap
  if (value !== null && spec.metric !== 'cost') checkAmount(value, 'cap')
  await engine.call(() => engine.store.setOverride(spec.key, value, spec.scope), '', null)
}

export async function credit(engine: Engine, ref: Omit<CounterRef, 'metric'>, amount: number) {
  const { rule, spec } = await counterOf(engine, ref)
  if (!rule.balance) throw new TollgateError('invalid_request', `Rule "${rule.id}" is not a balance.`)
  // At least one micro-unit: a smaller amount would round to a credit of nothing.
  if (!Number.isFinite(amount) || toMicros(amount) < 1 || amount > 1e9) {
    throw new TollgateError('invalid_amount', 'credit an amount from 0.000001 up to 1e9 currency units')
  }
  const micros = toMicros(amount)
  const state = await engine.call(() => engine.store.adjust(spec, -micros), '', null)
  const balance = state.cap - state.used
  if (balance > MAX_BALANCE) {
    // past what a policy could state, the counter would soon leave the safe integers (and charges
    // of a micro-unit would stop counting): taken back, and refused
    await engine.call(() => engine.store.adjust(spec, micros), '', null)
    throw new TollgateError(
      'invalid_amount',
      `a balance holds at most 1e9 currency units; this credit would make it ${balance / 1e6}`,
    )
  }
  return { balance }
}

export async function block(
  engine: Engine,
  dimension: string,
  id: string,
  code: string | null,
): Promise<void> {
  if (typeof dimension !== 'string' || dimension === '' || typeof id !== 'string' || id === '') {
    throw new TollgateError('invalid_subject', 'block a non-empty id of a named dimension')
  }
  // The code refusals carry, as a rule's own: responses, audit rows and dashboards show it.
  if (code !== null && (typeof code !== 'string' || code.length > 128 || !NAME_PATTERN.test(code))) {
    throw new TollgateError(
      'invalid_request',
      `a block code is 1 to 128 letters, digits, "_", "." or "-" (as a rule's code), got ${shown(code)}`,
    )
  }
  await engine.call(() => engine.store.block(blockKey(dimension, id), code), '', null)
}
