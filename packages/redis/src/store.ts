/**
 * `redisStore()`: the store contract over ioredis. `reserve`, `commit`, `read`, `adjust` and
 * `lookup` are one `EVALSHA` each (ioredis `defineCommand` reloads a script on `NOSCRIPT`);
 * `setOverride`, `block` and `blocked` are one plain command each. Time comes from Redis.
 * On a Redis Cluster, a call whose counters span slots runs one script per slot (cluster.ts).
 */
import { createHash } from 'node:crypto'
import type {
  CounterSpec,
  CounterState,
  RemoteStore,
  ScannedCounter,
  StoreCommit,
  StoreCommitResult,
  StoredReservation,
  StoreReserve,
  StoreReserveResult,
} from '@tollgate/core'
import { checkClock } from '@tollgate/core'
import type { Cluster, Redis } from 'ioredis'
import { type Abandon, abandoner } from './abandon.js'
import { clusterOps } from './cluster.js'
import {
  commitMode,
  commitRows,
  counterResult,
  fastEligible,
  pushFast,
  pushSpec,
  type Reply,
  ROW,
  replayed,
  state,
} from './codec.js'
import { bounded, type Client, type Within } from './connection.js'
import { checkPrefix, encodeId, overrideKey, tagOf } from './keys.js'
import { scanCounters } from './scan.js'
import { SCRIPTS, type ScriptName } from './scripts.js'

export { RedisStoreError } from './connection.js'

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /**
   * A connected ioredis client, created with `enableOfflineQueue: false` so that no command
   * waits in a queue while Redis is away and lands later (a stale increment). The factory
   * refuses a client with the offline queue on. Standalone Redis (or a primary with replicas), or a
   * Redis Cluster `Cluster` client (see docs/redis.md for what a reservation spanning slots does).
   * @example new Redis({ host: '127.0.0.1', enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
   * @example new Cluster(nodes, { enableOfflineQueue: false, redisOptions: { autoResendUnfulfilledCommands: false } })
   */
  client: Redis | Cluster
  /**
   * Every key starts with `{prefix}` or `{prefix:<tenant>}`. No braces.
   * @default 'tollgate'
   * @example 'quotas-eu'
   */
  prefix?: string
  /**
   * FOR TESTS ONLY. Time for the scripts, sent with every call instead of using Redis `TIME`,
   * so that a fake clock (`fakeClock()` from `@tollgate/core/testing`) drives windows and expiry.
   * Never set it in production: every process would trust its own clock.
   * @default undefined (Redis `TIME`)
   * @example redisStore({ client, clock: fakeClock('2026-01-01T00:00:00Z') })
   */
  clock?: { now(): number }
  /**
   * Most time one store call may take, waiting for the connection included; after it the call
   * rejects with a {@link RedisStoreError} and the gate applies each rule's failure mode.
   * Keep it at or below the gate's `timeoutMs`.
   * @default 1_000
   * @example 250
   */
  timeoutMs?: number
  /**
   * How long a closed (settled, released or expired) reservation id is remembered, so that a
   * duplicate settle or release is recognised. An open reservation lives `ttlMs` plus this. Each
   * closed id costs about 180 bytes of Redis memory for this long (docs/redis.md, _Memory_).
   * @default 86_400_000 (24 hours)
   * @example 3_600_000 // an hour
   */
  idempotencyMs?: number
  /**
   * How long a counter window is kept after it ends (or a bucket after it is full again),
   * so that a late settle still lands in it.
   * @default 3_600_000 (1 hour)
   * @example 600_000 // ten minutes
   */
  graceMs?: number
  /**
   * Most expired reservations processed at the start of each script call. Expired holds are
   * returned (or kept) by this bounded sweep; a settle, release or look-up of an expired id
   * processes it at once whatever the backlog.
   * @default 25
   * @example 100
   */
  sweepLimit?: number
  /**
   * Standalone Redis: reserves and commits that concurrent callers of this process make in the same
   * tick go to Redis together, as one `EVALSHA` of a batch script that runs each of them in turn,
   * exactly as its own script would (all or nothing per reservation; a later one sees the earlier ones'
   * holds), with one `TIME` and one expiry sweep for all. At most 16 calls per batch. Each call keeps
   * its own answer and its own timeout; a failed batch fails each of its calls. `false`: one script
   * per call. A Cluster client never batches. Off by default: on a quiet machine one script per call
   * was faster in `pnpm bench redis`; batching may help where Redis CPU is the bottleneck.
   * @default false
   * @example redisStore({ client, batch: true })
   */
  batch?: boolean
}

/**
 * Most calls in one batch script. Small enough that a burst of callers goes out as several batches,
 * so that Redis runs one while the client prepares the answers of another (see docs/redis.md).
 */
const BATCH_MAX = 16

/** The Redis store: every operation answers with a promise; `clock` is set only when a test clock was given. */
export interface RedisStore extends RemoteStore {
  readonly prefix: string
  readonly clock?: { now(): number }
  /**
   * Up to `max` counters whose key starts with `counter.key`, in the window `counter.window` lays
   * out (override applied), found with `SCAN MATCH` on every master: O(keys), for dashboards only.
   */
  scan(counter: CounterSpec, max: number): Promise<ScannedCounter[]>
  /** Redis time as last seen (the local clock plus the offset learned from the last answer), or the test clock. */
  now(): number
}

/** A defined script command; ioredis flattens array arguments into the command's list. */
type ScriptCall = (indexKey: string, ...args: (string | readonly string[])[]) => Promise<Reply>

/** Names the scripts by content, so that two versions of this package can share a client. */
function commands(label: string, shebang: string) {
  return Object.fromEntries(
    Object.entries(SCRIPTS).map(([name, lua]) => {
      const text = shebang + lua
      const hash = createHash('sha1').update(text).digest('hex').slice(0, 12)
      return [name, { name: `tollgate_${label}${name}_${hash}`, lua: text }]
    }),
  ) as Record<ScriptName, { name: string; lua: string }>
}

const STANDALONE = commands('', '')
/**
 * On a Cluster the scripts carry a `#!lua` shebang: Redis then refuses any key outside the slot of
 * the key the call was routed by, even one that another slot of the same node holds.
 */
const CLUSTERED = commands('c', '#!lua\n')

/** What the store's operations share; the Cluster protocol (cluster.ts) builds on it. */
export interface Runtime {
  client: Client
  /** `{prefix}`: the slot of reservations, overrides, blocks and counters without a scope. */
  shared: string
  /** The hash tag of a counter's scope. */
  tag(scope: string | undefined): string
  within: Within
  /**
   * Runs a script in the slot of `tag` (its expiry index `<tag>:x` is the routing key); `late` and
   * `lost` as {@link Within}'s.
   */
  script(
    name: ScriptName,
    tag: string,
    args: string[],
    late?: (reply: Reply[]) => void,
    lost?: () => void,
  ): Promise<Reply[]>
  /** Background clean-up of reserves whose answer was lost, sent once the client is ready (abandon.ts). */
  abandon: Abandon
}

/** The operations that run scripts: the standalone ones, or the Cluster protocol over them. */
export type ScriptOps = Pick<RedisStore, 'reserve' | 'commit' | 'read' | 'adjust' | 'lookup'>

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
  return makeStore(options, true)
}

/**
 * Internal, for tests (not exported by the package): a store that never uses the lean reserve or the
 * lean commit, so that its answers can be compared with those of {@link redisStore} (fast.test.ts).
 */
export function redisStoreWithoutLeanScripts(options: RedisStoreOptions): RedisStore {
  return makeStore(options, false)
}

function makeStore(options: RedisStoreOptions, lean: boolean): RedisStore {
  if (typeof options !== 'object' || options === null) throw new TypeError('redisStore needs { client }')
  const { clock } = options
  const client = options.client as unknown as Client
  if (!client || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') {
    throw new TypeError('redisStore: `client` must be an ioredis client')
  }
  const isCluster = (client as { isCluster?: boolean }).isCluster === true
  if (
    (options.client as { options?: { enableOfflineQueue?: boolean } }).options?.enableOfflineQueue !== false
  ) {
    throw new TypeError(
      'redisStore: create the ioredis client with `enableOfflineQueue: false`. With the offline queue on, ' +
        'calls made while Redis is away wait and land later, after the gate has already decided without them.',
    )
  }
  // The scripts make most key names in Redis, where ioredis cannot add its `keyPrefix`: the store's
  // keys would split across two namespaces, and blocks and overrides be written where no script reads.
  const given = (
    options.client as { options?: { keyPrefix?: unknown; redisOptions?: { keyPrefix?: unknown } } }
  ).options
  if (given?.keyPrefix || given?.redisOptions?.keyPrefix) {
    throw new TypeError(
      'redisStore: create the ioredis client without `keyPrefix`, and give the store its own `prefix` ' +
        'instead: the scripts name their keys in Redis, where ioredis cannot prefix them.',
    )
  }
  const prefix = checkPrefix(options.prefix ?? 'tollgate')
  const timeoutMs = positive('timeoutMs', options.timeoutMs ?? 1_000)
  const idempotencyMs = positive('idempotencyMs', options.idempotencyMs ?? 86_400_000)
  const graceMs = positive('graceMs', options.graceMs ?? 3_600_000)
  const sweepLimit = options.sweepLimit ?? 25
  if (!Number.isSafeInteger(sweepLimit) || sweepLimit < 1) {
    throw new TypeError(
      `redisStore: sweepLimit must be a whole number >= 1, got ${typeof sweepLimit === 'number' ? sweepLimit : typeof sweepLimit}`,
    )
  }
  if (options.batch !== undefined && typeof options.batch !== 'boolean') {
    throw new TypeError(
      `redisStore: batch must be true or false, got ${typeof options.batch === 'string' ? JSON.stringify(options.batch) : String(options.batch === null ? null : typeof options.batch)}`,
    )
  }
  checkClock('redisStore', clock)

  const COMMANDS = isCluster ? CLUSTERED : STANDALONE
  const scripts = client as unknown as Record<string, ScriptCall | undefined>
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const command = COMMANDS[name]
    if (typeof scripts[command.name] !== 'function') {
      client.defineCommand(command.name, { numberOfKeys: 1, lua: command.lua })
    }
  }

  const shared = `{${prefix}}`
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
  const within = bounded(options.client, timeoutMs)
  /** The arguments every script shares after the time (see scripts.ts), made once. */
  const common = [prefix, String(graceMs), String(idempotencyMs), String(sweepLimit)]

  const script = async (
    name: ScriptName,
    slot: string,
    args: string[],
    late?: (reply: Reply[]) => void,
    lost?: () => void,
  ): Promise<Reply[]> => {
    // ioredis flattens array arguments: no copy of the list here. The test clock is read at send time.
    const call = () =>
      scripts[COMMANDS[name].name]!(`${slot}:x`, clock ? String(clock.now()) : '', common, args) as Promise<
        Reply[]
      >
    const reply = await within(call, late, lost)
    // Every answer but commit's carries the server time (reserve: second place): learn the offset.
    if (!clock && name !== 'commit' && name !== 'leanCommit')
      offset = Number(reply[name === 'reserve' || name === 'fast' ? 1 : 0]) - Date.now()
    return reply
  }

  const abandon = abandoner(client, timeoutMs)
  const runtime: Runtime = { client, shared, tag, within, script, abandon }

  /** Reserves and commits waiting for the end of this tick, to go to Redis in one batch script. */
  let queue: Queued[] = []
  let scheduled = false
  const send = () => {
    scheduled = false
    const members = queue
    queue = []
    if (members.length === 0) return
    try {
      sendBatch(members)
    } catch (error) {
      for (const m of members) m.reject(error)
    }
  }
  const sendBatch = (members: Queued[]) => {
    if (members.length === 1) {
      const [only] = members
      const name = only!.op === 'r' ? 'reserve' : only!.op === 'f' ? 'fast' : 'commit'
      const reply = scripts[COMMANDS[name].name]!(
        `${shared}:x`,
        clock ? String(clock.now()) : '',
        common,
        only!.args,
      )
      ;(reply as Promise<Reply[]>).then((r) => {
        if (!clock && name !== 'commit') offset = Number(r[1]) - Date.now()
        only!.resolve(r)
      }, only!.reject)
      return
    }
    const args: string[] = []
    for (const m of members) {
      args.push(m.op, String(m.args.length))
      for (const a of m.args) args.push(a)
    }
    const call = scripts[COMMANDS.batch.name]!(`${shared}:x`, clock ? String(clock.now()) : '', common, args)
    ;(call as Promise<Reply[]>).then(
      (reply) => {
        if (!clock) offset = Number(reply[0]) - Date.now()
        members.forEach((m, i) => {
          const answer = reply[i + 1] as Reply[]
          if (answer[0] === '!error') m.reject(new Error(`tollgate batch: ${answer[1]}`))
          else m.resolve(answer)
        })
      },
      (error) => {
        for (const m of members) m.reject(error)
      },
    )
  }
  const enqueue = (op: Op, args: string[]) =>
    new Promise<Reply[]>((resolve, reject) => {
      queue.push({ op, args, resolve, reject })
      if (queue.length >= BATCH_MAX) send()
      else if (!scheduled) {
        scheduled = true
        // The end of the current microtask queue: callers resumed by one answer join one batch.
        queueMicrotask(send)
      }
    })
  const batched: Batched | undefined =
    options.batch === true && !isCluster
      ? (op, args, late, lost) => within(() => enqueue(op, args), late, lost)
      : undefined

  const standalone = scriptOps(runtime, batched, lean)
  const ops = isCluster ? clusterOps(runtime, standalone) : standalone

  return {
    prefix,
    ...(clock ? { clock } : {}),
    ...ops,

    scan: (counter: CounterSpec, max: number) =>
      scanCounters({ client: options.client, isCluster, prefix, within, read: ops.read }, counter, max),

    now: () => (clock ? clock.now() : Date.now() + offset),

    async setOverride(key: string, cap: number | null, scope?: string): Promise<void> {
      const name = overrideKey(shared, tag(scope), encodeId(key))
      if (cap === null) await within(() => client.del(name))
      else if (typeof cap !== 'number' || !Number.isFinite(cap))
        throw new TypeError(
          `a cap override is a finite number, got ${typeof cap === 'number' ? cap : typeof cap}`,
        )
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
  }
}

/** A batched operation: reserve ('r'), lean reserve ('f', the fast script) or commit ('c'). */
type Op = 'r' | 'f' | 'c'

/** A reserve or commit waiting to go to Redis in a batch. */
interface Queued {
  op: Op
  args: string[]
  resolve(reply: Reply[]): void
  reject(error: unknown): void
}

/** Runs a reserve or commit in the next batch, within the call's own timeout (`late`, `lost`: see Within). */
type Batched = (
  op: Op,
  args: string[],
  late?: (reply: Reply[]) => void,
  lost?: () => void,
) => Promise<Reply[]>

/** The script operations with every key in one slot: a standalone Redis, or the shared slot of a Cluster. */
function scriptOps({ shared, tag, script, abandon }: Runtime, batched?: Batched, lean = true): ScriptOps {
  return {
    async reserve(input: StoreReserve): Promise<StoreReserveResult> {
      const id = encodeId(input.id)
      const args = [id, String(input.ttlMs), JSON.stringify(input.meta), String(input.blocks.length)]
      for (const marker of input.blocks) args.push(encodeId(marker))
      args.push(String(input.counters.length))
      // The common case (calendar windows, nothing else) goes to the lean reserve, which answers alike.
      const fast = lean && fastEligible(input.counters)
      if (fast) for (const spec of input.counters) pushFast(args, spec, tag(spec.scope))
      else for (const spec of input.counters) pushSpec(args, spec, spec.amount, tag(spec.scope))
      // A hold that lands after this call gave up is returned at once: nobody will settle it.
      const late = (reply: Reply[]) => {
        if (reply[0] !== 'ok') return
        script('commit', shared, [id, 'release']).catch(noop)
      }
      // Sent, and no answer came (a timeout, a connection lost after the command was written): the
      // reserve may have landed, or land later if resent. Nobody will settle it: once the client is
      // ready again, its holds are returned and its id remembered as closed, so that a resent reserve
      // holds nothing (the scripts answer 'again' for it).
      const lost = () => abandon(shared + id, () => script('commit', shared, [id, 'abandon']))
      const reply = batched
        ? await batched(fast ? 'f' : 'r', args, late, lost)
        : await script(fast ? 'fast' : 'reserve', shared, args, late, lost)
      const status = reply[0] as string
      const now = Number(reply[1])
      if (status === 'skew') return { status, now }
      // The id was closed before (settled, released, expired, or abandoned above): nothing was held.
      if (status === 'again') throw replayed(input.id)
      if (status === 'blocked')
        return { status, now, block: input.blocks[reply[2] as number]!, code: reply[3] as string }
      const counters = input.counters.map((spec, i) => counterResult(spec, reply, 2 + i * ROW))
      return { status: status as 'ok' | 'denied', now, counters }
    },

    async commit(input: StoreCommit): Promise<StoreCommitResult> {
      // Brief ('!'): the answer lists only the counters charged past their cap, all the caller reads.
      const mode = commitMode(input)
      const args = [encodeId(input.id), input.brief === true ? `${mode}!` : mode]
      if (input.amounts !== null) {
        for (const metric of Object.keys(input.amounts))
          args.push(encodeId(metric), String(input.amounts[metric]))
      }
      // The lean commit runs the general one itself whenever the reservation is not its common case.
      const reply = batched
        ? await batched('c', args)
        : await script(lean ? 'leanCommit' : 'commit', shared, args)
      const status = reply[0] as string
      if (status === 'unknown') return { status }
      if (status === 'duplicate') return { status, previous: reply[1] as 'settled' | 'released' }
      const counters = commitRows(reply[2] as Reply[]).map((row) => row.counter)
      return { status: status as 'settled' | 'released', late: reply[1] === 1, counters }
    },

    async read(specs: CounterSpec[]): Promise<CounterState[]> {
      if (specs.length === 0) return []
      const args = [String(specs.length)]
      for (const spec of specs) pushSpec(args, spec, 0, tag(spec.scope))
      const reply = await script('read', shared, args)
      return (reply[1] as Reply[][]).map(state)
    },

    async adjust(spec: CounterSpec, amount: number): Promise<CounterState> {
      const args = [String(amount)]
      pushSpec(args, spec, 0, tag(spec.scope))
      const reply = await script('adjust', shared, args)
      return state(reply[1] as Reply[])
    },

    async lookup(id: string): Promise<StoredReservation | null> {
      const reply = await script('lookup', shared, [encodeId(id)])
      const row = reply[1] as Reply[] | null
      if (row === null) return null
      return {
        id,
        state: row[0] as StoredReservation['state'],
        expiresAt: Number(row[1]),
        // a closed reservation keeps no meta (as in the memory store)
        meta: row[2] ? JSON.parse(row[2] as string) : { model: '' },
      }
    },
  }
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(
      `redisStore: ${name} must be a positive number of milliseconds, got ${typeof value === 'number' ? value : typeof value}`,
    )
  }
  return value
}
