/**
 * `redisStore()`: the store contract over ioredis. `reserve`, `commit`, `read`, `adjust` and
 * `lookup` are one `EVALSHA` each (ioredis `defineCommand` reloads a script on `NOSCRIPT`);
 * `setOverride`, `block` and `blocked` are one plain command each. Time comes from Redis.
 */
import { createHash } from 'node:crypto'
import type {
  CommitCounter,
  CounterResult,
  CounterSpec,
  CounterState,
  Store,
  StoreCommit,
  StoreCommitResult,
  StoredReservation,
  StoreReserve,
  StoreReserveResult,
} from '@tollgate/core'
import type { Redis } from 'ioredis'
import { checkPrefix, decodeId, encodeId, tagOf } from './keys.js'
import { SCRIPTS, type ScriptName } from './scripts.js'

export interface RedisStoreOptions {
  /**
   * A connected ioredis client, created with `enableOfflineQueue: false` so that no command
   * waits in a queue while Redis is away and lands later (a stale increment). The factory
   * refuses a client with the offline queue on. Standalone Redis (or a primary with replicas);
   * Redis Cluster is not supported yet.
   * @example new Redis({ host: '127.0.0.1', enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
   */
  client: Redis
  /**
   * Every key starts with `{prefix}` or `{prefix:<tenant>}`. No braces.
   * @default 'tollgate'
   */
  prefix?: string
  /**
   * FOR TESTS ONLY. Time for the scripts, sent with every call instead of using Redis `TIME`,
   * so that a fake clock (`fakeClock()` from `@tollgate/core/testing`) drives windows and expiry.
   * Never set it in production: every process would trust its own clock.
   */
  clock?: { now(): number }
  /**
   * Most time one store call may take, waiting for the connection included; after it the call
   * rejects with a {@link RedisStoreError} and the gate applies each rule's failure mode.
   * Keep it at or below the gate's `timeoutMs`.
   * @default 1_000
   */
  timeoutMs?: number
  /**
   * How long a closed (settled, released or expired) reservation id is remembered, so that a
   * duplicate settle or release is recognised. An open reservation lives `ttlMs` plus this.
   * @default 86_400_000 (24 hours)
   */
  idempotencyMs?: number
  /**
   * How long a counter window is kept after it ends (or a bucket after it is full again),
   * so that a late settle still lands in it.
   * @default 3_600_000 (1 hour)
   */
  graceMs?: number
  /**
   * Most expired reservations processed at the start of each script call. Expired holds are
   * returned (or kept) by this bounded sweep; a settle, release or look-up of an expired id
   * processes it at once whatever the backlog.
   * @default 25
   */
  sweepLimit?: number
}

/** A store call that failed for a reason of the store's own (timeout, closed connection, bad client). */
export class RedisStoreError extends Error {
  override readonly name = 'RedisStoreError'
  constructor(
    message: string,
    readonly code: 'timeout' | 'closed',
  ) {
    super(message)
  }
}

/** The Redis store: every operation answers with a promise; `clock` is set only when a test clock was given. */
export interface RedisStore extends Store {
  readonly prefix: string
  readonly clock?: { now(): number }
  reserve(input: StoreReserve): Promise<StoreReserveResult>
  commit(input: StoreCommit): Promise<StoreCommitResult>
  read(counters: CounterSpec[]): Promise<CounterState[]>
  adjust(counter: CounterSpec, amount: number): Promise<CounterState>
  setOverride(key: string, cap: number | null): Promise<void>
  block(marker: string, code: string | null): Promise<void>
  blocked(markers: string[]): Promise<{ marker: string; code: string } | null>
  lookup(id: string): Promise<StoredReservation | null>
  /** Redis time as last seen (the local clock plus the offset learned from the last answer), or the test clock. */
  now(): number
}

type Reply = string | number | null | Reply[]
type ScriptCall = (indexKey: string, ...args: string[]) => Promise<Reply>

/** Names the scripts by content, so that two versions of this package can share a client. */
const COMMANDS = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, lua]) => [
    name,
    `tollgate_${name}_${createHash('sha1').update(lua).digest('hex').slice(0, 12)}`,
  ]),
) as Record<ScriptName, string>

const noop = () => {}

/**
 * A store over Redis that many processes can share.
 *
 * @example
 * import Redis from 'ioredis'
 * import { createTollgate } from '@tollgate/core'
 * import { redisStore } from '@tollgate/redis'
 *
 * const client = new Redis({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
 * const gate = createTollgate({ policy, store: redisStore({ client, prefix: 'tollgate' }) })
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const { client, clock } = options
  if (!client || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') {
    throw new TypeError('redisStore: `client` must be an ioredis client')
  }
  if ((client as { isCluster?: boolean }).isCluster) {
    throw new TypeError(
      'redisStore: Redis Cluster is not supported yet; use a standalone Redis (see docs/redis.md).',
    )
  }
  if (client.options?.enableOfflineQueue !== false) {
    throw new TypeError(
      'redisStore: create the ioredis client with `enableOfflineQueue: false`. With the offline queue on, ' +
        'calls made while Redis is away wait and land later, after the gate has already decided without them.',
    )
  }
  const prefix = checkPrefix(options.prefix ?? 'tollgate')
  const timeoutMs = positive('timeoutMs', options.timeoutMs ?? 1_000)
  const idempotencyMs = positive('idempotencyMs', options.idempotencyMs ?? 86_400_000)
  const graceMs = positive('graceMs', options.graceMs ?? 3_600_000)
  const sweepLimit = options.sweepLimit ?? 25
  if (!Number.isSafeInteger(sweepLimit) || sweepLimit < 1) {
    throw new TypeError(`redisStore: sweepLimit must be a whole number >= 1, got ${sweepLimit}`)
  }

  const scripts = client as unknown as Record<string, ScriptCall | undefined>
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    if (typeof scripts[COMMANDS[name]] !== 'function') {
      client.defineCommand(COMMANDS[name], { numberOfKeys: 1, lua: SCRIPTS[name] })
    }
  }

  const shared = `{${prefix}}`
  const indexKey = `${shared}:x`
  const tags = new Map<string | undefined, string>()
  const tag = (scope: string | undefined) => {
    let t = tags.get(scope)
    if (t === undefined) {
      t = tagOf(prefix, scope)
      if (tags.size < 10_000) tags.set(scope, t)
    }
    return t
  }
  let offset = 0

  /**
   * Runs one Redis call within `timeoutMs`, waiting for the connection when it is being made.
   * A call that times out is not cancelled (Redis may still apply it): its late answer goes to
   * `late`, so that a hold nobody waits for any more can be returned.
   */
  /**
   * Callers waiting for the connection, woken together by one `ready` or `end` listener
   * (so that a thousand calls during a reconnect add two listeners, not two thousand).
   */
  const waiting = new Set<() => void>()
  let listening = false
  const wake = () => {
    listening = false
    client.off('ready', wake)
    client.off('end', wake)
    const all = [...waiting]
    waiting.clear()
    for (const resume of all) resume()
  }

  const within = <T>(work: () => Promise<T>, late?: (value: T) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let done = false
      const finish = (error: unknown, value?: T) => {
        if (done) return
        done = true
        clearTimeout(timer)
        waiting.delete(resume)
        if (error === undefined) resolve(value as T)
        else reject(error)
      }
      const start = () => {
        if (done) return
        let pending: Promise<T>
        try {
          pending = work()
        } catch (error) {
          finish(error)
          return
        }
        pending.then(
          (value) => {
            if (done) late?.(value)
            else finish(undefined, value)
          },
          (error) => finish(error ?? new Error('Redis call failed')),
        )
      }
      const resume = () => {
        if (client.status === 'ready') start()
        else if (client.status === 'end')
          finish(new RedisStoreError('The Redis connection was closed.', 'closed'))
        else wait()
      }
      const wait = () => {
        if (!listening) {
          listening = true
          client.on('ready', wake)
          client.on('end', wake)
        }
        waiting.add(resume)
      }
      const timer = setTimeout(
        () =>
          finish(
            new RedisStoreError(
              `Redis did not answer within ${timeoutMs} ms (status "${client.status}").`,
              'timeout',
            ),
          ),
        timeoutMs,
      )
      timer.unref?.()
      if (client.status === 'wait') client.connect().catch(noop)
      if (client.status === 'ready' || client.status === 'end') resume()
      else wait()
    })

  const script = async (
    name: ScriptName,
    args: string[],
    late?: (reply: Reply[]) => void,
  ): Promise<Reply[]> => {
    const head = [
      clock ? String(clock.now()) : '',
      prefix,
      String(graceMs),
      String(idempotencyMs),
      String(sweepLimit),
    ]
    const call = () => scripts[COMMANDS[name]]!(indexKey, ...head, ...args) as Promise<Reply[]>
    const reply = await within(call, late)
    // Every answer but commit's carries the server time (reserve: second place): learn the offset.
    if (!clock && name !== 'commit') offset = Number(reply[name === 'reserve' ? 1 : 0]) - Date.now()
    return reply
  }

  const pushSpec = (args: string[], spec: CounterSpec, amount: number) => {
    const { window } = spec
    let a = ''
    let b = ''
    switch (window.kind) {
      case 'fixed':
        a = window.bounds.join(',')
        break
      case 'sliding':
        a = String(window.sizeMs)
        b = String(window.slotMs)
        break
      case 'bucket':
        a = String(window.intervalMs)
        break
      case 'lease':
        a = String(window.ttlMs)
        break
    }
    const { throttle } = spec
    args.push(
      encodeId(spec.key),
      tag(spec.scope),
      encodeId(spec.metric),
      String(amount),
      String(spec.cap),
      spec.enforce ? '1' : '0',
      spec.expiry,
      window.kind,
      a,
      b,
      spec.alerts ? spec.alerts.join(',') : '',
      spec.trip ? String(spec.trip.cooldownMs) : '',
      throttle ? `${throttle.at},${throttle.limit},${throttle.periodMs}` : '',
    )
  }

  const state = (row: Reply[]): CounterState => ({
    cap: Number(row[0]),
    used: Number(row[1]),
    held: Number(row[2]),
    resetAt: row[3] === null ? null : Number(row[3]),
    windowStart: Number(row[4]),
  })

  return {
    prefix,
    ...(clock ? { clock } : {}),

    now: () => (clock ? clock.now() : Date.now() + offset),

    async reserve(input: StoreReserve): Promise<StoreReserveResult> {
      const args = [
        encodeId(input.id),
        String(input.ttlMs),
        JSON.stringify(input.meta),
        String(input.blocks.length),
      ]
      for (const marker of input.blocks) args.push(encodeId(marker))
      args.push(String(input.counters.length))
      for (const spec of input.counters) pushSpec(args, spec, spec.amount)
      // A hold that lands after this call gave up is returned at once: nobody will settle it.
      const late = (reply: Reply[]) => {
        if (reply[0] !== 'ok') return
        script('commit', [encodeId(input.id), 'release']).catch(noop)
      }
      const reply = await script('reserve', args, late)
      const status = reply[0] as string
      const now = Number(reply[1])
      if (status === 'skew') return { status, now }
      if (status === 'blocked')
        return { status, now, block: input.blocks[reply[2] as number]!, code: reply[3] as string }
      const counters = input.counters.map((spec, i): CounterResult => {
        const row = reply[i + 2] as Reply[]
        return {
          ...state(row),
          denied: row[5] === 1,
          retryAfterMs: row[6] === null ? null : Number(row[6]),
          crossed: spec.alerts ? spec.alerts.slice(row[7] as number, row[8] as number) : [],
          tripped: row[9] === 1,
          trippedNow: row[10] === 1,
          throttled: row[11] === 1,
        }
      })
      return { status: status as 'ok' | 'denied', now, counters }
    },

    async commit(input: StoreCommit): Promise<StoreCommitResult> {
      const args = [encodeId(input.id), input.amounts === null ? 'release' : 'settle']
      if (input.amounts !== null) {
        for (const metric of Object.keys(input.amounts))
          args.push(encodeId(metric), String(input.amounts[metric]))
      }
      const reply = await script('commit', args)
      const status = reply[0] as string
      if (status === 'unknown') return { status }
      if (status === 'duplicate') return { status, previous: reply[1] as 'settled' | 'released' }
      const counters = (reply[2] as Reply[][]).map(
        (row): CommitCounter => ({
          key: decodeId(row[0] as string),
          metric: decodeId(row[1] as string),
          held: Number(row[2]),
          charged: Number(row[3]),
          overdraft: Number(row[4]),
        }),
      )
      return { status: status as 'settled' | 'released', late: reply[1] === 1, counters }
    },

    async read(specs: CounterSpec[]): Promise<CounterState[]> {
      if (specs.length === 0) return []
      const args = [String(specs.length)]
      for (const spec of specs) pushSpec(args, spec, 0)
      const reply = await script('read', args)
      return (reply[1] as Reply[][]).map(state)
    },

    async adjust(spec: CounterSpec, amount: number): Promise<CounterState> {
      const args = [String(amount)]
      pushSpec(args, spec, 0)
      const reply = await script('adjust', args)
      return state(reply[1] as Reply[])
    },

    async setOverride(key: string, cap: number | null): Promise<void> {
      const name = `${shared}:o:${encodeId(key)}`
      if (cap === null) await within(() => client.del(name))
      else if (typeof cap !== 'number' || !Number.isFinite(cap))
        throw new TypeError(`a cap override is a finite number, got ${cap}`)
      else await within(() => client.set(name, String(cap)))
    },

    async block(marker: string, code: string | null): Promise<void> {
      const name = `${shared}:b:${encodeId(marker)}`
      if (code === null) await within(() => client.del(name))
      else await within(() => client.set(name, code))
    },

    async blocked(markers: string[]): Promise<{ marker: string; code: string } | null> {
      if (markers.length === 0) return null
      const codes = await within(() =>
        client.mget(markers.map((marker) => `${shared}:b:${encodeId(marker)}`)),
      )
      const i = codes.findIndex((code) => code !== null)
      return i < 0 ? null : { marker: markers[i]!, code: codes[i]! }
    },

    async lookup(id: string): Promise<StoredReservation | null> {
      const reply = await script('lookup', [encodeId(id)])
      const row = reply[1] as Reply[] | null
      if (row === null) return null
      return {
        id,
        state: row[0] as StoredReservation['state'],
        expiresAt: Number(row[1]),
        meta: JSON.parse(row[2] as string),
      }
    },
  }
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`redisStore: ${name} must be a positive number of milliseconds, got ${value}`)
  }
  return value
}
