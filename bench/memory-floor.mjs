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
 * - `rlf`: rate-limiter-flexible's six `consume` calls (the suite's comparison);
 *
 * and prints the median per-round ratios. When even `floor / rlf` is under 2, no design that keeps
 * a reservation for an idempotent settle by id reaches issue 2's target on that machine.
 *
 *   npx --yes pnpm@10 build && node bench/memory-floor.mjs     # ROUNDS, default 12
 */
import { createRequire } from 'node:module'
import { estimate, limits, policy, subjects, usage } from './headline.mjs'

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

function tollgateChunk() {
  const gate = createTollgate({ policy, store: memoryStore() })
  let n = 0
  return async () => {
    for (let i = 0; i < CHUNK; i++) {
      const d = await gate.reserve({ subject: subjects[n++ % 1000], estimate })
      if (!d.allowed) throw new Error(`refused: ${d.code}`)
      await gate.settle(d.id, usage)
    }
  }
}
function floorChunk() {
  const gate = floorGate()
  let n = 0
  return async () => {
    for (let i = 0; i < CHUNK; i++) {
      const d = await gate.reserve(subjects[n++ % 1000])
      if (!d.allowed) throw new Error('refused')
      await gate.settle(d.id, ACTUAL)
    }
  }
}
function rlfChunk() {
  const six = ['user', 'team', 'org'].flatMap((dimension) => [
    { dimension, cost: 1, limiter: new RateLimiterMemory({ points: limits.requests, duration: 60 }) },
    { dimension, cost: HOLD, limiter: new RateLimiterMemory({ points: limits.tokens, duration: 60 }) },
  ])
  let n = 0
  return async () => {
    for (let i = 0; i < CHUNK; i++) {
      const s = subjects[n++ % 1000]
      for (const { limiter, dimension, cost } of six) await limiter.consume(s[dimension], cost)
    }
  }
}

const tasks = { tollgate: tollgateChunk(), floor: floorChunk(), rlf: rlfChunk() }
const timed = async (f) => {
  const started = performance.now()
  await f()
  return (CHUNK / (performance.now() - started)) * 1000
}
for (const f of Object.values(tasks)) {
  await f()
  await f()
}
const rounds = Number(process.env.ROUNDS ?? 12)
const rates = { tollgate: [], floor: [], rlf: [] }
for (let r = 0; r < rounds; r++)
  for (const name of Object.keys(tasks)) rates[name].push(await timed(tasks[name]))
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
const ratio = (a, b) => median(rates[a].map((x, i) => x / rates[b][i])).toFixed(2)
const per = (name) => `${Math.round(median(rates[name])).toLocaleString('en-US')}/s`
console.log(`reserve+settle, six limits, medians of ${rounds} rounds of ${CHUNK.toLocaleString('en-US')}`)
console.log(`  tollgate ${per('tollgate')}, floor ${per('floor')}, rlf 6× consume ${per('rlf')}`)
console.log(
  `  tollgate/rlf ${ratio('tollgate', 'rlf')}, floor/rlf ${ratio('floor', 'rlf')}, tollgate/floor ${ratio('tollgate', 'floor')}`,
)
