/**
 * The local fallback (`localFallback`): while the store is down, hold on a local store, each
 * counter at its share of the cap.
 */
import type { Decision, Downgrade } from '../decision.js'
import { TollgateError } from '../errors.js'
import type { ReservationMeta } from '../store/contract.js'
import { allowedOf, type StoreAnswer } from './allowed.js'
import type { Engine } from './context.js'
import { type Plan, specsOf } from './plan.js'
import { type Asked, refusalOf } from './refusal.js'

/**
 * The store is down and a local fallback is configured: hold on the local store, each counter
 * at its share of the cap. The engine's window bounds came from the store's last known time;
 * a local clock outside them gets fresh bounds once.
 */
export async function decideLocally(
  engine: Engine,
  asked: Asked,
  model: string | undefined,
  downgrade: Downgrade | null,
  plan: Plan,
  amounts: Record<string, number>,
  meta: ReservationMeta,
): Promise<Decision> {
  const store = engine.local!
  const share = engine.options.localFallback!.share
  asked.flags.push('store_fallback')
  const attempt = async (now: number) => {
    const { used, specs: shared } = specsOf(plan, amounts, now, engine.windows)
    // copies: specs are shared between calls and never changed once made
    const specs = shared.map((spec) =>
      spec.cap < Number.MAX_SAFE_INTEGER ? { ...spec, cap: Math.floor(spec.cap * share) } : spec,
    )
    const input = { id: asked.id, counters: specs, ttlMs: plan.ttlMs, blocks: [], meta }
    return { used, specs, result: await store.reserve(input) }
  }
  let { used, specs, result } = await attempt(asked.now)
  if (result.status === 'skew') ({ used, specs, result } = await attempt(result.now))
  if (result.status !== 'ok' && result.status !== 'denied')
    throw new TollgateError('store_error', `The local fallback store answered ${result.status}.`)
  asked.now = result.now
  const answer: StoreAnswer = { used, specs, counters: result.counters }
  if (result.status === 'denied') return refusalOf(engine, asked, answer).refuseAll()
  engine.held.set(asked.id, { model: model ?? '', amounts, local: true })
  return allowedOf(
    {
      id: asked.id,
      requestedModel: asked.requestedModel,
      model: model ?? '',
      downgrade,
      reservation: { id: asked.id, expiresAt: asked.now + plan.ttlMs, amounts },
      warnings: [],
      shadowViolations: [],
      flags: asked.flags,
    },
    answer,
    asked.now,
    engine.options.headers,
  )
}
