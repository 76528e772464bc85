/**
 * What every part of the engine shares: the compiled policy, the store behind its
 * timeout guard, the window cache, the open reservations this process made, the hooks.
 */
import type { Amounts } from '../decision.js'
import { TollgateError } from '../errors.js'
import { callHook } from '../hooks.js'
import type { CompiledPolicy } from '../policy/compile.js'
import { parsePolicy } from '../policy/load.js'
import type { Lane, Store } from '../store/contract.js'
import { memoryStore } from '../store/memory/store.js'
import { WindowCache } from './counters.js'
import { laneOf } from './fast.js'
import { type Guard, guard } from './guard.js'
import { idMaker } from './ids.js'
import { checkOptions } from './options.js'
import { Plans } from './plan.js'
import type { TollgateOptions } from './types.js'

/** What this process remembers of a reservation it made, so settle needs no look-up. */
export interface Held {
  /** The model served, `''` for none (as in a reservation's meta in the store). */
  model: string
  amounts: Amounts
  /** The estimate gave custom units (see `metaOf`: read only on the lane's settle). */
  units?: true
  /** Admitted while the store was down: nothing is held, settle has nothing to do. */
  degraded?: boolean
  /** Held on the local fallback store (the store was down): settled there. */
  local?: boolean
}

export interface Engine {
  policy: CompiledPolicy
  store: Store
  options: TollgateOptions
  /** How long a store call may take (`options.timeoutMs`, 1 s by default). */
  timeoutMs: number
  /** Runs a store call within the timeout; see `guard`. */
  call: Guard
  /** The store's lane, when the gate may use it (see `fast.ts`). */
  lane: Lane | undefined
  /** The local store of `options.localFallback`, when one is configured. */
  local: Store | undefined
  windows: WindowCache
  /** What each request shape makes of the policy (matched rules, keys), remembered. */
  plans: Plans
  /** Reservations this process made and has not closed; the oldest are forgotten past 100,000 (settle then looks them up in the store). */
  held: BoundedMap<string, Held>
  maxIdLength: number
  /** A new reservation id (see `ids.ts`). */
  nextId: () => string
  /** Calls a user hook; its failure never changes a decision. */
  emit<T>(hook: ((value: T) => void) | undefined, value: T): void
}

/**
 * A Map that forgets its oldest entries past `max`. (lru-cache clears and refills its
 * `max`-sized arrays whenever its last entry goes, which a settle after each reserve does.)
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super()
  }

  override set(key: K, value: V): this {
    super.set(key, value)
    if (this.size > this.max) this.delete(this.keys().next().value as K)
    return this
  }
}

export function createEngine(options: TollgateOptions): Engine {
  checkOptions(options)
  const policy = parsePolicy(options.policy)
  const store = options.store ?? memoryStore(options.clock ? { clock: options.clock } : {})
  const storeClock = (store as { clock?: unknown }).clock
  if (options.clock && options.store && storeClock !== undefined && storeClock !== options.clock) {
    throw new TollgateError(
      'invalid_request',
      'The memory store and the gate were given different clocks; pass one clock to memoryStore().',
    )
  }
  const timeoutMs = options.timeoutMs ?? 1_000
  return {
    policy,
    store,
    options,
    timeoutMs,
    call: guard(timeoutMs, options.onStoreError),
    lane: laneOf(policy, store),
    local: localStoreOf(options),
    windows: new WindowCache(),
    plans: new Plans(policy, options.maxPlans),
    held: new BoundedMap<string, Held>(100_000),
    maxIdLength: options.maxIdLength ?? 16_384,
    nextId: idMaker(),
    emit(hook, value) {
      callHook(hook, value) // a hook's failure must never change a decision
    },
  }
}

function localStoreOf(options: TollgateOptions): Store | undefined {
  const fallback = options.localFallback
  if (!fallback) return undefined
  const { share } = fallback
  if (typeof share !== 'number' || !(share > 0 && share <= 1))
    throw new TollgateError('invalid_request', 'localFallback.share must be a number in (0, 1]')
  if (fallback.closed !== undefined && fallback.closed !== 'refuse' && fallback.closed !== 'enforce')
    throw new TollgateError('invalid_request', "localFallback.closed is 'refuse' or 'enforce'")
  return fallback.store ?? memoryStore(options.clock ? { clock: options.clock } : {})
}
