/**
 * The least an in-memory reserve+settle could cost: a probe for issue 2's target, not a store.
 * In alternating chunks of 50,000 iterations it runs, in one process,
 *
 * - `tollgate`: this build's `createTollgate` on `memoryStore()` (the memory suite's headline task);
 * - `floor`: a bare reserve+settle with only what the product's contract cannot do without, for the
 *   headline's six limits and nothing else: one counter object per user, team and org (a `Map` each),
 *   the calendar minute from `Date.now()`, all six caps checked before any counter moves, a new id,
 *   the open reservation kept by id, and a settle by id that charges the real tokens, frees the hold
 *   and remembers the id as closed so that a duplicate changes nothing. Ids are a prefix and a
 *   sequence number, so open reservations sit in a ring and closed ones are bits (as the memory
 *   store's lane does; a `Set` of closed id strings costs more than the rest together). No
 *   validation, no policy, no decision object, no expiry of holds, no bound on memory, no late
 *   settle: less than any library with Tollgate's guarantees can do;
 * - `fuller`: the floor with what the contract adds around it (validation, the plan, the decision
 *   and settle answers, the expiry list, the answer headers are made from), each done the cheapest
 *   way found, in one function (see `fullerGate`);
 * - `rlf`: rate-limiter-flexible's six `consume` calls (the suite's comparison);
 *
 * and prints the median per-round ratios. `floor / rlf` bounds any design that keeps a reservation
 * for an idempotent settle by id; `fuller / rlf` what the product's contract, written without
 * layers, could reach; `tollgate / fuller` what the engine's layers cost.
 *
 *   npx --yes pnpm@10 build && node bench/memory-floor.mjs     # ROUNDS, default 12
 */
import { createRequire } from 'node:module'
import { alternate, estimate, gateChunk, limits, rlfChunk, subjects, usage } from './headline.mjs'

const require = createRequire(import.meta.url)
const { createTollgate, memoryStore } = await import(
  new URL('../packages/core/dist/index.js', import.meta.url).href
)
const { RateLimiterMemory } = require('rate-limiter-flexible')

const CHUNK = 50_000
const MINUTE = 60_000
const HOLD = estimate.inputTokens + estimate.maxOutputTokens
const ACTUAL = usage.inputTokens + usage.outputTokens

/** The floor: six counters, all-or-nothing, a reservation per id, an idempotent settle. */
function floorGate() {
  const homes = { user: new Map(), team: new Map(), org: new Map() }
  // open reservations in a ring by number; closed ones as bits: ids the gate made need no hashing
  const RING = 1 << 16
  const open = new Array(RING).fill(undefined)
  let closed = new Uint32Array(1 << 12)
  const prefix = 'r0f1' // a real store would make a random one
  let next = 0
  const counter = (dimension, id) => {
    let c = homes[dimension].get(id)
    if (c === undefined) {
      c = { start: 0, requests: 0, tokens: 0 }
      homes[dimension].set(id, c)
    }
    return c
  }
  return {
    async reserve(subject) {
      const now = Date.now()
      const start = now - (now % MINUTE)
      const cs = [counter('user', subject.user), counter('team', subject.team), counter('org', subject.org)]
      for (const c of cs) {
        if (c.start !== start) {
          c.start = start
          c.requests = 0
          c.tokens = 0
        }
        if (c.requests + 1 > limits.requests || c.tokens + HOLD > limits.tokens) return { allowed: false }
      }
      for (const c of cs) {
        c.requests += 1
        c.tokens += HOLD
      }
      const n = next++
      if (open[n & (RING - 1)] !== undefined) throw new Error('ring full') // a real store would grow it
      if (n >>> 5 >= closed.length) {
        const grown = new Uint32Array(closed.length * 2)
        grown.set(closed)
        closed = grown
      }
      const id = prefix + n.toString(36)
      open[n & (RING - 1)] = { n, id, cs, start, expiresAt: now + 60_000 }
      return { allowed: true, id }
    },
    async settle(id, actual) {
      const n = Number.parseInt(id.slice(prefix.length), 36)
      const slot = n & (RING - 1)
      const r = open[slot]
      if (r === undefined || r.id !== id) return { duplicate: (closed[n >>> 5] & (1 << (n & 31))) !== 0 }
      open[slot] = undefined
      closed[n >>> 5] |= 1 << (n & 31)
      for (const c of r.cs) if (c.start === r.start) c.tokens += actual - HOLD
      return { duplicate: false }
    },
  }
}

/**
 * The floor with what the product adds around it, each done the cheapest way found so far: the
 * request and the report validated, the subject's plan found in a trie of ids (holding its six
 * counters, so counters need no look-up of their own), an amounts object, six counters of their
 * own (used and held, the cap and an overrides check, a "seen" mark for eviction), the record
 * with its meta and an entry in a list of the second it expires in, the packed answer headers are
 * made from, the decision object with its reservation and lists, and a settle that computes the
 * actual amounts, the overrun and its answer. What it still leaves out: other windows and rules,
 * model prices, hooks, the store being a separate object behind an interface.
 */
function fullerGate() {
  const MAX_ID = 256
  const isAmount = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1e12
  const plans = new Map() // user → team → org → plan
  const overrides = new Map()
  const RING = 1 << 16
  const open = new Array(RING).fill(undefined)
  let closed = new Uint32Array(1 << 12)
  const blockUntil = []
  const prefix = 'r0f1a2b3c4d5e6f7g8h9'
  let next = 0
  let last = 0
  const due = new Map() // second → { items, gone }
  let lastBucket
  const homes = new Map()
  const cell = (key) => {
    let c = homes.get(key)
    if (c === undefined) {
      c = { start: 0, used: 0, held: 0, seen: false, key }
      homes.set(key, c)
    }
    return c
  }
  const planOf = (subject) => {
    let teams = plans.get(subject.user)
    if (teams === undefined) {
      teams = new Map()
      plans.set(subject.user, teams)
    }
    let orgs = teams.get(subject.team)
    if (orgs === undefined) {
      orgs = new Map()
      teams.set(subject.team, orgs)
    }
    let plan = orgs.get(subject.org)
    if (plan === undefined) {
      const cells = []
      for (const d of ['user', 'team', 'org'])
        for (const metric of ['requests', 'tokens']) cells.push(cell(`${d}:${subject[d]}:${metric}`))
      plan = {
        cells,
        caps: [
          limits.requests,
          limits.tokens,
          limits.requests,
          limits.tokens,
          limits.requests,
          limits.tokens,
        ],
        metrics: ['requests', 'tokens', 'requests', 'tokens', 'requests', 'tokens'],
      }
      orgs.set(subject.org, plan)
    }
    return plan
  }
  const checkRequest = (request) => {
    if (typeof request !== 'object' || request === null) throw new TypeError('request')
    const { subject, estimate: e } = request
    if (typeof subject !== 'object' || subject === null) throw new TypeError('subject')
    for (const d in subject) {
      const id = subject[d]
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID) throw new TypeError('id')
    }
    if (e !== undefined && !(isAmount(e.inputTokens) && isAmount(e.maxOutputTokens)))
      throw new TypeError('estimate')
  }
  return {
    async reserve(request) {
      checkRequest(request)
      const plan = planOf(request.subject)
      const e = request.estimate
      const amounts = {
        requests: 1,
        concurrency: 1,
        inputTokens: e.inputTokens,
        outputTokens: e.maxOutputTokens,
        tokens: e.inputTokens + e.maxOutputTokens,
        cost: 0,
      }
      const read = Date.now()
      if (read > last) last = read
      const now = last
      const start = now - (now % MINUTE)
      const { cells, caps, metrics } = plan
      for (let i = 0; i < 6; i++) {
        const c = cells[i]
        if (c.start !== start) {
          c.start = start
          c.used = 0
          c.held = 0
        }
        const cap = overrides.size === 0 ? caps[i] : (overrides.get(c.key) ?? caps[i])
        if (c.used + amounts[metrics[i]] > cap) return { allowed: false }
      }
      const packed = new Array(30)
      for (let i = 0, o = 0; i < 6; i++, o += 5) {
        const c = cells[i]
        const amount = metrics[i] === 'requests' ? 1 : amounts.tokens
        c.used += amount
        c.held += amount
        c.seen = true
        packed[o] = caps[i]
        packed[o + 1] = c.used
        packed[o + 2] = c.held
        packed[o + 3] = start + MINUTE
        packed[o + 4] = start
      }
      const n = next++
      if (open[n & (RING - 1)] !== undefined) throw new Error('ring full')
      if (n >>> 5 >= closed.length) {
        const grown = new Uint32Array(closed.length * 2)
        grown.set(closed)
        closed = grown
      }
      const id = prefix + n.toString(36)
      const expiresAt = now + 600_000
      const record = {
        n,
        id,
        state: 'held',
        expiresAt,
        meta: { model: '', amounts },
        cells,
        start,
        due: undefined,
      }
      open[n & (RING - 1)] = record
      const second = Math.ceil(expiresAt / 1000) * 1000
      let bucket = lastBucket
      if (bucket === undefined || bucket.second !== second) {
        bucket = due.get(second)
        if (bucket === undefined) {
          bucket = { second, items: [], gone: 0 }
          due.set(second, bucket)
        }
        lastBucket = bucket
      }
      bucket.items.push(record)
      record.due = bucket
      return {
        allowed: true,
        id,
        requestedModel: '',
        model: '',
        downgrade: null,
        reservation: { id, expiresAt, amounts },
        warnings: [],
        shadowViolations: [],
        flags: [],
        packed,
      }
    },
    async settle(id, usage) {
      if (typeof id !== 'string' || id.length === 0) throw new TypeError('id')
      if (typeof usage !== 'object' || usage === null) throw new TypeError('usage')
      if (!(isAmount(usage.inputTokens) && isAmount(usage.outputTokens))) throw new TypeError('usage')
      const read = Date.now()
      if (read > last) last = read
      const now = last
      const n = Number.parseInt(id.slice(prefix.length), 36)
      const slot = n & (RING - 1)
      const r = open[slot]
      if (r === undefined || r.id !== id)
        return { status: (closed[n >>> 5] & (1 << (n & 31))) !== 0 ? 'duplicate' : 'unknown' }
      const held = r.meta.amounts
      const amounts = {
        requests: 1,
        concurrency: 1,
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        tokens: usage.inputTokens + usage.outputTokens,
        cost: 0,
      }
      const overdraft = []
      for (let i = 0; i < 6; i++) {
        const c = r.cells[i]
        if (c.start !== r.start) continue
        const was = i % 2 === 0 ? 1 : held.tokens
        const target = i % 2 === 0 ? 1 : amounts.tokens
        c.used += target - was
        c.held -= was
        if (c.used > limits.tokens) overdraft.push(c.key)
      }
      const bucket = r.due
      r.due = undefined
      // counted out, and compacted once more than half is gone (as the memory store's list is)
      if (++bucket.gone >= 64 && bucket.gone * 2 > bucket.items.length) {
        let kept = 0
        for (const item of bucket.items) if (item.due === bucket) bucket.items[kept++] = item
        bucket.items.length = kept
        bucket.gone = 0
      }
      open[slot] = undefined
      closed[n >>> 5] |= 1 << (n & 31)
      const block = n >>> 13
      if ((blockUntil[block] ?? 0) < now + 86_400_000) blockUntil[block] = now + 86_400_000
      const overrun = {}
      if (amounts.inputTokens > held.inputTokens) overrun.inputTokens = amounts.inputTokens - held.inputTokens
      if (amounts.outputTokens > held.outputTokens)
        overrun.outputTokens = amounts.outputTokens - held.outputTokens
      if (amounts.tokens > held.tokens) overrun.tokens = amounts.tokens - held.tokens
      return { status: 'settled', late: false, amounts, overrun, overdraft }
    },
  }
}

function fullerChunk() {
  const gate = fullerGate()
  let n = 0
  return async () => {
    for (let i = 0; i < CHUNK; i++) {
      const d = await gate.reserve({ subject: subjects[n++ % subjects.length], estimate })
      if (!d.allowed) throw new Error('refused')
      await gate.settle(d.id, usage)
    }
  }
}
function floorChunk() {
  const gate = floorGate()
  let n = 0
  return async () => {
    for (let i = 0; i < CHUNK; i++) {
      const d = await gate.reserve(subjects[n++ % subjects.length])
      if (!d.allowed) throw new Error('refused')
      await gate.settle(d.id, ACTUAL)
    }
  }
}
const tasks = {
  tollgate: gateChunk({ createTollgate, memoryStore }, CHUNK),
  fuller: fullerChunk(),
  floor: floorChunk(),
  rlf: rlfChunk(RateLimiterMemory, CHUNK),
}
const rounds = Number(process.env.ROUNDS ?? 12)
const { ratio, per } = await alternate(tasks, CHUNK, rounds)
console.log(`reserve+settle, six limits, medians of ${rounds} rounds of ${CHUNK.toLocaleString('en-US')}`)
console.log(
  `  tollgate ${per('tollgate')}, fuller ${per('fuller')}, floor ${per('floor')}, rlf 6× consume ${per('rlf')}`,
)
console.log(
  `  tollgate/rlf ${ratio('tollgate', 'rlf')}, fuller/rlf ${ratio('fuller', 'rlf')}, floor/rlf ${ratio('floor', 'rlf')}, tollgate/fuller ${ratio('tollgate', 'fuller')}`,
)
