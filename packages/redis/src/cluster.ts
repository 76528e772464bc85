/**
 * The Redis Cluster protocol: a reservation whose counters span hash slots.
 *
 * Counters are grouped by slot tag: the shared group `{prefix}` (reservations' home records,
 * overrides, blocks, counters without a scope) first, then each tenant tag `{prefix:tenant}` in
 * sorted order. Every group runs the ordinary reserve script in its own slot, so each group is
 * atomic on its own:
 *
 * 1. **Shared step** (always first): checks the block markers, reads the overrides of every
 *    counter (its own and the other groups'), holds the shared counters, and writes the home
 *    record `{prefix}:r:<id>` listing the other groups (`g`), so that any process finds every
 *    group from the id alone.
 * 2. **Each tenant group** in order: holds its counters with the caps in force (sent from step 1)
 *    and writes its own record `<tag>:r:<id>`, indexed for expiry in its own `<tag>:x`.
 * 3. A group that refuses (or skews, or fails) ends the reservation: the groups already held are
 *    cancelled (holds returned, records deleted), and groups not reached are evaluated without
 *    holding so that every counter is reported. The caller sees all or nothing.
 *
 * A reservation with every counter in the shared slot is the standalone single script.
 * Commit runs in every group (in parallel when this process knows the groups, else the home
 * record first); each group is idempotent on its own, so a repeated commit completes one that
 * failed part-way. Each group expires by its own index with the same TTL.
 */
import type {
  CommitCounter,
  CounterResult,
  CounterSpec,
  CounterState,
  StoreCommit,
  StoreCommitResult,
  StoreReserve,
  StoreReserveResult,
} from '@tollgate/core'
import {
  commitMode,
  commitRows,
  counterResult,
  pushSpec,
  type Reply,
  ROW,
  ROW_BEFORE,
  replayed,
  state,
} from './codec.js'
import { encodeId, overrideKey } from './keys.js'
import type { Runtime, ScriptOps } from './store.js'

/** The counters of one slot: its tag and the positions of its counters in the call. */
interface Group {
  tag: string
  at: number[]
}

/** Most reservations whose groups this process remembers (for a commit in one parallel step). */
const REMEMBERED = 10_000

const noop = () => {}

export function clusterOps(runtime: Runtime, single: ScriptOps): ScriptOps {
  const { shared, tag, script, within, client, abandon } = runtime
  /** Reservation id → its slot tags, shared first, for reservations this process made. */
  const known = new Map<string, string[]>()
  const remember = (id: string, tags: string[]) => {
    if (known.size >= REMEMBERED) known.delete(known.keys().next().value!)
    known.set(id, tags)
  }

  /** The shared group first (possibly empty), then the others by tag. */
  const groupsOf = (specs: CounterSpec[]): Group[] => {
    const byTag = new Map<string, number[]>([[shared, []]])
    specs.forEach((spec, i) => {
      const t = tag(spec.scope)
      const list = byTag.get(t)
      if (list) list.push(i)
      else byTag.set(t, [i])
    })
    const others = [...byTag.keys()].filter((t) => t !== shared).sort()
    return [shared, ...others].map((t) => ({ tag: t, at: byTag.get(t)! }))
  }

  const overrideOf = (spec: CounterSpec) => overrideKey(shared, tag(spec.scope), encodeId(spec.key))

  /** Returns the holds of `groups` and forgets the reservation there. */
  const cancel = (id: string, groups: Group[]) =>
    Promise.all(groups.map((g) => script('commit', g.tag, [encodeId(id), 'cancel']).catch(noop)))

  /**
   * After a step that failed: the groups `held` are cancelled, and the step `lost` (sent, no answer:
   * it may have landed, or land later if resent) is abandoned: cancelled if it landed, its id
   * remembered as closed in its slot so that a resent step holds nothing. In the background, once
   * the client is ready again (the failure was most likely the connection), with bounded retries.
   */
  const giveUp = (id: string, held: Group[], lost: Group | undefined) => {
    for (const g of held) abandon(g.tag + id, () => script('commit', g.tag, [id, 'cancel']))
    if (lost) abandon(lost.tag + id, () => script('commit', lost.tag, [id, 'abandon']))
  }

  return {
    lookup: single.lookup,

    async reserve(input: StoreReserve): Promise<StoreReserveResult> {
      const specs = input.counters
      const groups = groupsOf(specs)
      if (groups.length === 1) return single.reserve(input)
      const id = encodeId(input.id)
      const [head, ...rest] = groups as [Group, ...Group[]]
      const caps = new Map<number, number>()

      /** Arguments of one group's reserve: blocks only in the shared step, caps sent elsewhere. */
      const argsOf = (g: Group, flags: string) => {
        const first = g === head
        const args = [id, String(input.ttlMs), JSON.stringify(input.meta)]
        args.push(String(first ? input.blocks.length : 0))
        if (first) for (const marker of input.blocks) args.push(encodeId(marker))
        args.push(String(g.at.length))
        for (const i of g.at) {
          const spec = specs[i]!
          pushSpec(args, spec, spec.amount, g.tag, caps.get(i) ?? spec.cap)
        }
        args.push(flags, g.at.join(','))
        const extra = first ? rest.flatMap((o) => o.at.map((i) => overrideOf(specs[i]!))) : []
        args.push(String(extra.length), ...extra)
        const others = first ? rest.map((o) => o.tag) : []
        args.push(String(others.length), ...others)
        // The shared step checks every calendar window for skew, so that none trips a breaker first.
        const bounds: string[] = []
        if (first) {
          for (const o of rest)
            for (const i of o.at) {
              const { window } = specs[i]!
              if (window.kind === 'fixed') bounds.push(window.bounds.join(','))
            }
        }
        args.push(String(bounds.length), ...bounds)
        return args
      }
      /** A hold that lands after its call gave up is cancelled at once: nobody will settle it. */
      const late = (g: Group) => (reply: Reply[]) => {
        if (reply[0] === 'ok') cancel(input.id, [g])
      }

      const rows: CounterResult[] = new Array(specs.length)
      /** Rows from an answer: ROW_BEFORE values per counter when asked with 'p', ROW with 'd'. */
      const fill = (g: Group, reply: Reply[], stride: number, before = false) =>
        g.at.forEach((i, j) => {
          rows[i] = counterResult(specs[i]!, reply, 2 + j * stride, before)
        })
      const held: Group[] = []
      const replies = new Map<Group, Reply[]>()

      /** Ends a refused reservation: takes back what is held and reports every counter. */
      const refuse = async (now: number, unreached: Group[]): Promise<StoreReserveResult> => {
        await cancel(input.id, held)
        for (const g of held) fill(g, replies.get(g)!, ROW_BEFORE, true)
        const looks = await Promise.all(
          unreached.map((g) => script('reserve', g.tag, argsOf(g, 'd')).catch(() => null)),
        )
        for (const [k, reply] of looks.entries()) {
          const g = unreached[k]!
          if (reply?.[0] === 'skew') return { status: 'skew', now: Number(reply[1]) }
          if (reply) fill(g, reply, ROW)
          else for (const i of g.at) rows[i] = unread(specs[i]!, now)
        }
        return { status: 'denied', now, counters: rows }
      }

      let now = 0
      for (const [k, g] of groups.entries()) {
        let reply: Reply[]
        let lost = false
        try {
          reply = await script('reserve', g.tag, argsOf(g, 'p'), late(g), () => {
            lost = true
          })
        } catch (error) {
          giveUp(id, held, lost ? g : undefined)
          throw error
        }
        const status = reply[0] as string
        now = Number(reply[1])
        // The id is closed in this slot already (see the reserve script): nothing held here.
        if (status === 'again') {
          await cancel(input.id, held)
          throw replayed(input.id)
        }
        if (status === 'blocked')
          return { status, now, block: input.blocks[reply[2] as number]!, code: reply[3] as string }
        if (status === 'skew') {
          await cancel(input.id, held)
          return { status, now }
        }
        if (g === head) {
          // The overrides of the other groups' counters follow the rows.
          let n = 2 + head.at.length * ROW_BEFORE
          for (const o of rest) {
            for (const i of o.at) {
              const value = reply[n++]
              if (value !== null && value !== undefined) caps.set(i, Number(value))
            }
          }
        }
        replies.set(g, reply)
        if (status === 'denied') {
          fill(g, reply, ROW_BEFORE)
          return refuse(now, groups.slice(k + 1))
        }
        held.push(g)
      }
      for (const g of held) fill(g, replies.get(g)!, ROW_BEFORE)
      remember(
        input.id,
        groups.map((g) => g.tag),
      )
      return { status: 'ok', now, counters: rows }
    },

    async commit(input: StoreCommit): Promise<StoreCommitResult> {
      const args = [encodeId(input.id), commitMode(input)]
      if (input.amounts !== null) {
        for (const metric of Object.keys(input.amounts))
          args.push(encodeId(metric), String(input.amounts[metric]))
      }
      const tags = known.get(input.id)
      let replies: Reply[][]
      if (tags) {
        replies = await Promise.all(tags.map((t) => script('commit', t, args)))
      } else {
        const home = await script('commit', shared, args)
        const others = (home[0] === 'duplicate' ? home[2] : home[3]) as string[] | null | undefined
        replies = [home, ...(await Promise.all((others ?? []).map((t) => script('commit', t, args))))]
      }
      known.delete(input.id)
      return merge(replies)
    },

    async read(specs: CounterSpec[]): Promise<CounterState[]> {
      const groups = groupsOf(specs)
      if (groups.length === 1) return single.read(specs)
      const states: CounterState[] = new Array(specs.length)
      const readGroup = async (g: Group) => {
        if (g.at.length === 0) return
        const args = [String(g.at.length)]
        for (const i of g.at) pushSpec(args, specs[i]!, 0, g.tag)
        const reply = await script('read', g.tag, args)
        g.at.forEach((i, j) => {
          states[i] = state((reply[1] as Reply[][])[j]!)
        })
      }
      // Overrides live in the shared slot: read them alongside and apply them to the other groups.
      const outside = groups.slice(1).flatMap((g) => g.at)
      const [overrides] = await Promise.all([
        within(() => client.mget(outside.map((i) => overrideOf(specs[i]!)))),
        ...groups.map(readGroup),
      ])
      outside.forEach((i, j) => {
        const value = overrides[j]
        if (value !== null && value !== undefined) states[i]!.cap = Number(value)
      })
      return states
    },

    async adjust(spec: CounterSpec, amount: number): Promise<CounterState> {
      const t = tag(spec.scope)
      if (t === shared) return single.adjust(spec, amount)
      const args = [String(amount)]
      pushSpec(args, spec, 0, t)
      const [reply, override] = await Promise.all([
        script('adjust', t, args),
        within(() => client.get(overrideOf(spec))),
      ])
      const result = state(reply[1] as Reply[])
      if (override !== null) result.cap = Number(override)
      return result
    },
  }
}

/** A counter whose slot could not be read after another slot refused: reported as not refusing. */
function unread(spec: CounterSpec, now: number): CounterResult {
  return {
    cap: spec.cap,
    used: 0,
    held: 0,
    resetAt: null,
    windowStart: now,
    denied: false,
    retryAfterMs: null,
    crossed: [],
    tripped: false,
    trippedNow: false,
    throttled: false,
  }
}

/** One answer from the commits of every group: closed now if any group closed now, else their memory. */
function merge(replies: Reply[][]): StoreCommitResult {
  let status: 'settled' | 'released' | undefined
  let previous: 'settled' | 'released' | undefined
  let late = false
  const rows: { counter: CommitCounter; position: number | undefined }[] = []
  for (const reply of replies) {
    const s = reply[0] as string
    if (s === 'duplicate') previous ??= reply[1] as 'settled' | 'released'
    if (s !== 'settled' && s !== 'released') continue
    status = s
    if (reply[1] === 1) late = true
    rows.push(...commitRows(reply[2] as Reply[]))
  }
  if (status === undefined) return previous ? { status: 'duplicate', previous } : { status: 'unknown' }
  rows.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))
  return { status, late, counters: rows.map((r) => r.counter) }
}
