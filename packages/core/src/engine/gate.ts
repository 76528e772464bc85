/**
 * `createTollgate`: the engine's public face. Reserve runs the evaluation order
 * (`reserve.ts`), settle and release close a reservation by id (`commit.ts`), the
 * rest acts on the store outside the request path (`admin.ts`).
 */

import type { Decision } from '../decision.js'
import { TollgateError } from '../errors.js'
import type { PolicyInput } from '../policy/input.js'
import * as admin from './admin.js'
import { recordTime } from './answers.js'
import { auditRecord } from './audit.js'
import { commit } from './commit.js'
import { createEngine } from './context.js'
import { decideFast } from './fast.js'
import * as report from './report.js'
import { decide } from './reserve.js'
import type { ReserveRequest, RunContext, Tollgate, TollgateOptions, Usage } from './types.js'
import { readUsage, snapshotRequest } from './validate.js'

/**
 * Create a gate for a policy and a store.
 *
 * @example
 * const gate = createTollgate({ policy, store: memoryStore({ clock }), onAlert: console.warn })
 * const decision = await gate.reserve({ subject: { user: 'u1' }, model: 'gpt-4o-mini', estimate: { inputTokens: 900 } })
 */
export function createTollgate(options: TollgateOptions<PolicyInput>): Tollgate
/**
 * Create a gate for a policy and a store.
 *
 * @example
 * const gate = createTollgate({ policy: readFileSync('policy.yaml', 'utf8'), store: memoryStore({ clock }) })
 */
export function createTollgate(options: TollgateOptions): Tollgate
// The first signature types a policy written in the call as a `PolicyInput` alone: its fields show
// their documentation, and a mistake is reported against them (against the union, TypeScript matched
// the object with `CompiledPolicy` and reported its fields instead).
export function createTollgate(options: TollgateOptions): Tollgate {
  const engine = createEngine(options)

  const { lane } = engine
  /** The lane's decision when it gives one, else the general path's. */
  function decideAny(request: ReserveRequest): Promise<Decision> {
    if (lane !== undefined) {
      try {
        const fast = decideFast(engine, lane, request)
        if (fast !== undefined) return Promise.resolve(fast)
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return decide(engine, request)
  }
  async function audited(given: ReserveRequest): Promise<Decision> {
    // the record names what the engine decided on: a copy, not the caller's object (reused, changed)
    const request = snapshotRequest(given)
    const decision = await decideAny(request)
    // the decision is made (and may hold): a store that cannot tell the time now never undoes it
    engine.emit(
      options.onDecision,
      auditRecord(decision, request, await recordTime(engine.store, engine.timeoutMs)),
    )
    return decision
  }
  const reserve = options.onDecision ? audited : decideAny

  return {
    policy: engine.policy,
    reserve,
    settle: (id, usage = {}) => commit(engine, id, usage),
    release: (id) => commit(engine, id, null),

    async run(request, fn) {
      const decision = await reserve(request)
      if (!decision.allowed) throw TollgateError.fromDecision(decision)
      let reported: Usage | undefined
      let misreported = false
      const context: RunContext = {
        decision,
        model: decision.model,
        report: (given) => {
          // checked here, where the mistake is: a bad report found only at the settle left the holds open
          let usage: Usage
          try {
            usage = readUsage(given) // a copy: the caller's object may change before the settle
            const input = usage.inputTokens ?? decision.reservation.amounts.inputTokens ?? 0
            if ((usage.cachedInputTokens ?? 0) > input)
              throw new TollgateError(
                'invalid_amount',
                `usage.cachedInputTokens (${usage.cachedInputTokens}) cannot exceed the call's input tokens (${input})`,
              )
          } catch (error) {
            misreported = true
            throw error
          }
          reported = usage
        },
      }
      /** Close the reservation; a store that is down (already told to `onStoreError`) leaves the
       * hold to expire by itself, and never turns the call's own outcome into its failure. */
      const close = async (usage: Usage | null): Promise<void> => {
        try {
          await commit(engine, decision.id, usage)
        } catch (error) {
          if (TollgateError.isInstance(error) && error.code === 'invalid_amount' && usage !== null) {
            // refused only against the reservation (a cost past the bound): the call was made, so
            // the reservation is closed at its estimate, and the refusal still reaches the caller
            await close({})
            throw error
          }
          if (!(TollgateError.isInstance(error) && error.code === 'store_unavailable')) throw error
        }
      }
      let value: Awaited<ReturnType<typeof fn>>
      try {
        value = await fn(context)
      } catch (error) {
        // spend that was reported happened, and so did a call whose report was refused (settled at
        // the estimate); otherwise the call failed before anything was billed
        await close(reported ?? (misreported ? {} : null))
        throw error
      }
      await close(reported ?? {})
      return value
    },

    usage: (request) => report.usage(engine, request),
    top: (query) => report.top(engine, query),
    override: (ref, cap) => admin.override(engine, ref, cap),
    credit: (ref, amount) => admin.credit(engine, ref, amount),
    block: (dimension, id, code = 'blocked') => admin.block(engine, dimension, id, code),
    unblock: (dimension, id) => admin.block(engine, dimension, id, null),
  }
}
