/**
 * `createTollgate`: the engine. Reserve runs the evaluation order (identity blocks,
 * per-call caps, model access, limits) and holds the estimate on every matched
 * counter at once; settle and release close the reservation by id.
 */
import { randomUUID } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Amounts, Decision, Downgrade, Violation, Warning } from '../decision.js'
import { TollgateError } from '../errors.js'
import { rateLimitHeaders } from '../headers.js'
import { blockKey, counterKey, partitionKey } from '../keys.js'
import { toMicros } from '../money.js'
import type { CompiledRule } from '../policy/compile.js'
import { parsePolicy } from '../policy/load.js'
import type { MatchContext } from '../policy/match.js'
import type { CounterSpec, ReservationMeta, StoreReserveResult } from '../store/contract.js'
import { memoryStore } from '../store/memory/store.js'
import { auditRecord } from './audit.js'
import {
  buildSlots,
  limitState,
  type Matched,
  matchRules,
  type Slot,
  WindowCache,
  windowSpec,
} from './counters.js'
import { baseCode, byWait, denied, refusal, violation } from './decide.js'
import { type Guard, guard } from './guard.js'
import { actualAmounts, decideAccess, estimateAmounts, resolveModel, tierOf } from './models.js'
import type { CommitResult, ReserveRequest, RunContext, Tollgate, TollgateOptions, Usage } from './types.js'
import { checkAmount, checkRequest, checkUsage } from './validate.js'

interface Held {
  model: string | undefined
  amounts: Amounts
  degraded?: boolean
}

/**
 * Create a gate for a policy and a store.
 *
 * @example
 * const gate = createTollgate({ policy, store: memoryStore({ clock }), onAlert: console.warn })
 * const decision = await gate.reserve({ subject: { user: 'u1' }, model: 'gpt-4o-mini', estimate: { inputTokens: 900 } })
 */
export function createTollgate(options: TollgateOptions): Tollgate {
  const policy = parsePolicy(options.policy)
  const store = options.store ?? memoryStore(options.clock ? { clock: options.clock } : {})
  const storeClock = (store as { clock?: unknown }).clock
  if (options.clock && options.store && storeClock !== undefined && storeClock !== options.clock) {
    throw new TollgateError(
      'invalid_request',
      'The memory store and the gate were given different clocks; pass one clock to memoryStore().',
    )
  }
  const maxIdLength = options.maxIdLength ?? 16_384
  const windows = new WindowCache()
  const held = new LRUCache<string, Held>({ max: 100_000 })
  const call: Guard = guard(options.timeoutMs ?? 1_000, options.onStoreError)
  const emit = <T>(hook: ((value: T) => void) | undefined, value: T) => {
    if (!hook) return
    try {
      hook(value)
    } catch {
      // a hook's failure must never change a decision
    }
  }

  async function decide(request: ReserveRequest, fallbackOf?: Violation): Promise<Decision> {
    checkRequest(request, maxIdLength)
    const id = randomUUID()
    const attributes = request.attributes ?? {}
    const requestedModel = resolveModel(policy, request.model)
    const context: MatchContext = {
      subject: request.subject,
      attributes,
      model: requestedModel,
      tier: tierOf(policy, requestedModel),
      feature: request.feature,
    }
    const flags: string[] = []
    let now = await store.now()
    const blocks = Object.keys(request.subject).map((d) => blockKey(d, request.subject[d]!))
    const blockRefusal = (block: { marker: string; code: string }) => {
      const what = block.marker.slice(0, block.marker.indexOf('='))
      const message = `This ${what} is ${block.code === 'key_revoked' ? 'revoked' : 'blocked'}.`
      const base = block.code === 'key_revoked' ? 'key_revoked' : 'blocked'
      return refuse(refusal(block.code, base, message, null), base)
    }
    /** A refusal decided before the store: identity blocks still come first. */
    const refuseLocally = async (v: Violation, base: Parameters<typeof refusal>[1]) => {
      const block = await call(() => store.blocked(blocks), '', null).catch(() => null)
      return block ? blockRefusal(block) : refuse(v, base)
    }
    const refuse = (v: Violation, base: Parameters<typeof refusal>[1]) =>
      denied({
        id,
        requestedModel: requestedModel ?? '',
        limits: [],
        shadowViolations: [],
        flags,
        now,
        headerOptions: options.headers,
        violations: [v],
        base,
      })

    const capRefusal = checkCaps(request, context)
    if (capRefusal) return refuseLocally(capRefusal, 'request_too_large')

    const access = await decideAccess(policy, context, (rule) => readBalance(rule, context))
    if (!access.ok) {
      const v = refusal('model_not_allowed', 'model_not_allowed', access.message, access.rule)
      return refuseLocally(v, 'model_not_allowed')
    }
    const model = access.model
    context.model = model
    context.tier = tierOf(policy, model)

    const matched = matchRules(policy, context)
    const { amounts, unpriced } = estimateAmounts(policy, model, request.estimate)
    if (unpriced && matched.some(({ rule }) => rule.limits.some((l) => l.metric === 'cost'))) {
      if (policy.unpriced.action === 'deny') {
        const message = `Model "${model ?? '(none)'}" has no price, and the policy refuses unpriced models.`
        return refuseLocally(
          refusal('model_not_allowed', 'model_not_allowed', message, 'unpriced'),
          'model_not_allowed',
        )
      }
      flags.push('unpriced_model')
    }
    const ttlMs = matched.reduce((ttl, { rule }) => Math.max(ttl, rule.ttlMs), 0) || 600_000
    const meta: ReservationMeta = { model: model ?? '', amounts }
    let slots = buildSlots(matched, amounts, now, windows)
    let result: StoreReserveResult
    try {
      result = await call(
        () => store.reserve({ id, counters: slots.map((s) => s.spec), ttlMs, blocks, meta }),
        id,
        store,
      )
      if (result.status === 'skew') {
        now = result.now
        slots = buildSlots(matched, amounts, now, windows)
        result = await call(
          () => store.reserve({ id, counters: slots.map((s) => s.spec), ttlMs, blocks, meta }),
          id,
          store,
        )
      }
    } catch (error) {
      return degraded(error, slots, id, requestedModel, model, amounts, flags, now, access.downgrade)
    }
    now = result.now
    if (result.status === 'skew')
      throw new TollgateError('store_error', 'The store clock lies outside every window the engine offered.')
    if (result.status === 'blocked') return blockRefusal({ marker: result.block, code: result.code })
    const counters = result.counters
    const limits = slots.map((slot, i) => limitState(slot, counters[i]!))
    const violations: Violation[] = []
    const shadowViolations: Violation[] = []
    const bases = new Map<Violation, string>()
    slots.forEach((slot, i) => {
      const counter = counters[i]!
      if (counter.denied) {
        const v = violation(slot, counter, policy.currency)
        bases.set(v, baseCode(slot.matched.rule, slot.metric, counter))
        ;(slot.spec.enforce ? violations : shadowViolations).push(v)
      }
      if (counter.trippedNow) {
        const { rule, partition } = slot.matched
        emit(options.onAlert, {
          type: 'circuit',
          rule: rule.id,
          metric: slot.metric,
          partition,
          threshold: null,
          used: counter.used,
          limit: counter.cap,
          at: now,
        })
      }
    })
    if (result.status === 'denied') {
      const ordered = byWait(violations)
      const primary = ordered[0]!
      const fallback = policy.rulesById.get(primary.rule)!.fallback
      if (!fallbackOf && fallback && fallback !== model) {
        const served = await decide({ ...request, model: fallback }, primary)
        if (served.allowed) {
          const downgrade = {
            from: requestedModel ?? '',
            to: served.model,
            reason: 'fallback' as const,
            rule: primary.rule,
          }
          return Object.assign(served, { requestedModel: requestedModel ?? '', downgrade })
        }
      }
      const base = bases.get(primary)!
      return denied({
        id,
        requestedModel: requestedModel ?? '',
        limits,
        shadowViolations,
        flags,
        now,
        headerOptions: options.headers,
        violations: ordered,
        base,
      })
    }
    const warnings: Warning[] = []
    slots.forEach((slot, i) => {
      for (const threshold of counters[i]!.crossed) {
        const counter = counters[i]!
        const warning = {
          rule: slot.matched.rule.id,
          metric: slot.metric,
          partition: slot.matched.partition,
          threshold,
          used: counter.used,
          limit: counter.cap,
        }
        warnings.push(warning)
        emit(options.onAlert, { type: 'threshold', ...warning, at: now })
      }
    })
    held.set(id, { model, amounts })
    let headers: Record<string, string> | undefined
    return {
      allowed: true,
      id,
      requestedModel: requestedModel ?? '',
      model: model ?? '',
      downgrade: access.downgrade,
      reservation: { id, expiresAt: now + ttlMs, amounts },
      limits,
      warnings,
      shadowViolations,
      flags,
      get headers() {
        headers ??= rateLimitHeaders(limits, now, options.headers)
        return headers
      },
    }
  }

  /** The store failed or timed out: closed rules refuse, open ones let the request through unheld. */
  function degraded(
    error: unknown,
    slots: Slot[],
    id: string,
    requestedModel: string | undefined,
    model: string | undefined,
    amounts: Amounts,
    flags: string[],
    now: number,
    downgrade: Downgrade | null,
  ): Decision {
    const closed = slots.find((slot) => slot.spec.enforce && slot.matched.rule.failure === 'closed')
    flags.push('store_degraded')
    if (closed) {
      const message = `The quota store is unavailable and rule "${closed.matched.rule.id}" fails closed.`
      const v = refusal('store_unavailable', 'store_unavailable', message, closed.matched.rule.id, {
        retryAfterMs: 1_000,
      })
      return denied({
        id,
        requestedModel: requestedModel ?? '',
        limits: [],
        shadowViolations: [],
        flags,
        now,
        headerOptions: options.headers,
        violations: [v],
        base: 'store_unavailable',
      })
    }
    void error
    held.set(id, { model, amounts, degraded: true })
    return {
      allowed: true,
      id,
      requestedModel: requestedModel ?? '',
      model: model ?? '',
      downgrade,
      reservation: { id, expiresAt: now, amounts },
      limits: [],
      warnings: [],
      shadowViolations: [],
      flags,
      headers: {},
    }
  }

  function checkCaps(request: ReserveRequest, context: MatchContext): Violation | null {
    const input = request.estimate?.inputTokens ?? 0
    const output = request.estimate?.maxOutputTokens ?? policy.maxOutputTokens
    for (const cap of policy.caps) {
      if (!cap.match(context)) continue
      const over =
        cap.maxInputTokens !== undefined && input > cap.maxInputTokens
          ? `${input} input tokens, more than ${cap.maxInputTokens}`
          : cap.maxOutputTokens !== undefined && output > cap.maxOutputTokens
            ? `${output} output tokens, more than ${cap.maxOutputTokens}`
            : cap.maxTokens !== undefined && input + output > cap.maxTokens
              ? `${input + output} tokens, more than ${cap.maxTokens}`
              : null
      if (over)
        return refusal(
          cap.code ?? 'request_too_large',
          'request_too_large',
          cap.message ?? `This call asks for ${over} per call (${cap.label}).`,
          cap.label,
        )
    }
    return null
  }

  async function readBalance(ruleId: string, context: MatchContext): Promise<number> {
    const rule = policy.rulesById.get(ruleId)!
    const spec = balanceSpec(rule, context.subject, await store.now())
    if (!spec) return 0
    try {
      const [state] = await call(() => store.read([spec]), '', null)
      return state!.cap - state!.used
    } catch {
      return 0 // an unreadable balance never unlocks a premium model
    }
  }

  function balanceSpec(rule: CompiledRule, subject: Record<string, string>, now: number): CounterSpec | null {
    if (rule.per.some((d) => subject[d] === undefined)) return null
    const cap = rule.limits.find((l) => l.metric === 'cost')!.cap
    const key = counterKey(rule.id, 'cost', partitionKey(rule.per, subject))
    return {
      key,
      metric: 'cost',
      amount: 0,
      cap,
      enforce: true,
      window: windowSpec(rule, 'cost', cap, now, windows),
      expiry: 'keep',
    }
  }

  async function reserve(request: ReserveRequest): Promise<Decision> {
    const decision = await decide(request)
    if (options.onDecision) emit(options.onDecision, auditRecord(decision, request, await store.now()))
    return decision
  }

  async function commit(id: string, usage: Usage | null): Promise<CommitResult> {
    if (typeof id !== 'string' || id.length === 0)
      throw new TollgateError('invalid_request', 'a reservation id is a non-empty string')
    if (usage !== null) checkUsage(usage)
    let entry = held.get(id)
    if (!entry) {
      const stored = await call(() => store.lookup(id), '', null)
      if (stored)
        entry = { model: stored.meta.model || undefined, amounts: (stored.meta.amounts ?? {}) as Amounts }
    }
    const none: CommitResult = { status: 'unknown', late: false, amounts: {}, overrun: {}, overdraft: [] }
    if (!entry) return none
    if (entry.degraded) return { ...none, status: 'degraded' }
    const amounts = usage === null ? null : actualAmounts(policy, entry.model, entry.amounts, usage)
    const result = await call(() => store.commit({ id, amounts }), '', null)
    held.delete(id)
    if (result.status === 'unknown') return none
    if (result.status === 'duplicate') return { ...none, status: 'duplicate' }
    const overrun: Record<string, number> = {}
    if (amounts)
      for (const metric in amounts)
        if (amounts[metric]! > (entry.amounts[metric] ?? 0))
          overrun[metric] = amounts[metric]! - (entry.amounts[metric] ?? 0)
    return {
      status: result.status,
      late: result.late,
      amounts: amounts ?? {},
      overrun,
      overdraft: result.counters
        .filter((c) => c.overdraft > 0)
        .map((c) => ({ rule: c.key.slice(0, c.key.indexOf(':')), metric: c.metric, amount: c.overdraft })),
    }
  }

  function counterOf(
    ref: { rule: string; metric?: string; subject: Record<string, string> },
    now: number,
  ): { rule: CompiledRule; spec: CounterSpec } {
    const rule = policy.rulesById.get(ref.rule)
    if (!rule) throw new TollgateError('unknown_rule', `No rule "${ref.rule}" in the policy.`)
    const metric =
      ref.metric ?? (rule.balance ? 'cost' : rule.limits.length === 1 ? rule.limits[0]!.metric : undefined)
    const limit = rule.limits.find((l) => l.metric === metric)
    if (!limit)
      throw new TollgateError(
        'invalid_request',
        `Rule "${rule.id}" has ${metric ? `no "${metric}" limit` : 'several metrics: name one'}.`,
      )
    const missing = rule.per.find((d) => typeof ref.subject[d] !== 'string' || ref.subject[d] === '')
    if (missing)
      throw new TollgateError('invalid_subject', `Rule "${rule.id}" counts per "${missing}": give its id.`)
    const key = counterKey(rule.id, limit.metric, partitionKey(rule.per, ref.subject))
    const spec: CounterSpec = {
      key,
      metric: limit.metric,
      amount: 0,
      cap: limit.cap,
      enforce: true,
      window: windowSpec(rule, limit.metric, limit.cap, now, windows),
      expiry: 'keep',
    }
    return { rule, spec }
  }

  return {
    policy,
    reserve,
    settle: (id, usage = {}) => commit(id, usage),
    release: (id) => commit(id, null),

    async run(request, fn) {
      const decision = await reserve(request)
      if (!decision.allowed) throw TollgateError.fromDecision(decision)
      let reported: Usage | undefined
      const context: RunContext = {
        decision,
        model: decision.model,
        report: (usage) => {
          reported = usage
        },
      }
      try {
        const value = await fn(context)
        await commit(decision.id, reported ?? {})
        return value
      } catch (error) {
        if (reported) await commit(decision.id, reported)
        else await commit(decision.id, null)
        throw error
      }
    },

    async usage(request) {
      checkRequest(request, maxIdLength)
      const model = resolveModel(policy, request.model)
      const context: MatchContext = {
        subject: request.subject,
        attributes: request.attributes ?? {},
        model,
        tier: tierOf(policy, model),
        feature: request.feature,
      }
      const matched: Matched[] = matchRules(policy, context, true)
      const now = await store.now()
      const slots = buildSlots(matched, {}, now, windows, true)
      const states = await call(() => store.read(slots.map((s) => s.spec)), '', null)
      return slots.map((slot, i) => limitState(slot, states[i]!))
    },

    async override(ref, cap) {
      const { spec } = counterOf(ref, await store.now())
      const value = cap === null ? null : spec.metric === 'cost' ? toMicros(cap) : cap
      if (value !== null) checkAmount(value, 'cap')
      await call(() => store.setOverride(spec.key, value), '', null)
    },

    async credit(ref, amount) {
      const { rule, spec } = counterOf(ref, await store.now())
      if (!rule.balance) throw new TollgateError('invalid_request', `Rule "${rule.id}" is not a balance.`)
      if (!Number.isFinite(amount) || amount <= 0 || amount > 1e9)
        throw new TollgateError('invalid_amount', 'credit a positive amount up to 1e9 currency units')
      const state = await call(() => store.adjust(spec, -toMicros(amount)), '', null)
      return { balance: state.cap - state.used }
    },

    async block(dimension, id, code = 'blocked') {
      await call(() => store.block(blockKey(dimension, id), code), '', null)
    },

    async unblock(dimension, id) {
      await call(() => store.block(blockKey(dimension, id), null), '', null)
    },
  }
}
