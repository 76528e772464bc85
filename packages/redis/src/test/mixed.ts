/**
 * The engine's long mixed run, shared by the standalone and the Cluster tests: two policies
 * with a tenant (so counters are scoped, and a global rule is not), played side by side on the
 * memory store and on a Redis store; every decision, settle, usage and alert must be identical.
 */
import {
  type Alert,
  createTollgate,
  type Decision,
  memoryStore,
  type PolicyInput,
  type Store,
} from '@tollgate/core'
import { type FakeClock, fakeClock } from '@tollgate/core/testing'
import { expect } from 'vitest'

export const models = {
  'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
  'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
}

/** Every kind of window and companion the store knows, with a tenant so counters are scoped. */
export const mixed: PolicyInput = {
  tenant: 'org',
  models,
  rules: [
    {
      id: 'user-day',
      per: 'user',
      limits: { requests: 40, tokens: 20_000 },
      window: 'day',
      alerts: [0.5, 0.9],
    },
    { id: 'user-rpm', per: 'user', limits: { requests: 5 }, window: '60s', alerts: [0.6] },
    { id: 'project-bucket', per: ['org', 'project'], limits: { requests: 2 }, window: { bucket: '60s' } },
    { id: 'user-concurrency', per: 'user', limits: { concurrency: 2 }, holds: { ttl: '2m' } },
    {
      id: 'org-budget',
      per: 'org',
      limits: { cost: 0.05 },
      window: 'month',
      alerts: [0.5, 0.8],
      holds: { expiry: 'release', ttl: '5m' },
    },
    {
      id: 'org-throttle',
      per: 'org',
      limits: { tokens: 14_000 },
      window: 'hour',
      throttle: { at: 0.3, rate: '2/1m' },
    },
    { id: 'global-rpm', limits: { requests: 9 }, window: 'minute' },
    { id: 'breaker', per: 'org', limits: { tokens: 10_000 }, window: 'hour', circuit: { cooldown: '2m' } },
    { id: 'shadow', per: 'user', limits: { tokens: 3_000 }, window: 'hour', mode: 'shadow' },
  ],
}

/** The same shapes tuned so that the day, the rolling minute, the global rule and the budget bind. */
export const quotas: PolicyInput = {
  tenant: 'org',
  models,
  rules: [
    { id: 'user-day', per: 'user', limits: { requests: 15, tokens: 20_000 }, window: 'day', alerts: [0.5] },
    { id: 'user-rpm', per: 'user', limits: { requests: 3 }, window: { rolling: '60s', slots: 12 } },
    {
      id: 'user-concurrency',
      per: 'user',
      limits: { concurrency: 3 },
      holds: { ttl: '90s', expiry: 'release' },
    },
    { id: 'org-budget', per: 'org', limits: { cost: 0.02 }, window: 'month', holds: { ttl: '3m' } },
    { id: 'global-rpm', limits: { requests: 6 }, window: 'minute' },
  ],
}

/** A small seeded generator, so a failure replays. */
export function random(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (max: number) => Math.floor(next() * max),
    pick: <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!,
  }
}

/** A decision without its random ids. */
export const plain = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (key, v) => (key === 'id' ? undefined : v)))

/**
 * Plays the mixed run against the stores `makeStore` builds (a fresh prefix each time). `rename`
 * maps the run's ids (`o1`, `p1`, `u1`, …) to others, hostile ones for instance: ids are only names,
 * so every decision must come out the same.
 */
export async function mixedRun(
  makeStore: (clock: FakeClock) => Store,
  rename: (id: string) => string = (id) => id,
): Promise<void> {
  const seen = new Set<string>()
  for (const [seed, policy] of [
    [1, mixed],
    [2, mixed],
    [3, quotas],
    [4, quotas],
  ] as const) {
    const clock = fakeClock('2026-03-31T23:50:00.000Z')
    const alerts = { memory: [] as Alert[], redis: [] as Alert[] }
    const memory = createTollgate({
      policy,
      store: memoryStore({ clock }),
      onAlert: (a) => alerts.memory.push(a),
    })
    const redis = createTollgate({
      policy,
      store: makeStore(clock),
      onAlert: (a) => alerts.redis.push(a),
    })
    const rng = random(seed)
    const open: { memory: string; redis: string; at: number }[] = []
    const closed: typeof open = []
    // One user id in two tenants (u1) is two users: its counters are scoped to each tenant.
    const people = [
      ['o1', 'p1', 'u1'],
      ['o1', 'p2', 'u1'],
      ['o1', 'p1', 'u2'],
      ['o2', 'p3', 'u3'],
      ['o2', 'p4', 'u1'],
    ].map(([org, project, user]) => ({ org: rename(org!), project: rename(project!), user: rename(user!) }))
    const subjects = () => rng.pick(people)
    for (let step = 0; step < 250; step++) {
      const what = rng.int(10)
      const label = `seed ${seed} step ${step}`
      if (step === 60 || step === 180) {
        // a runtime cap for o2's u1 only (o1's u1 is another user), then cleared
        const ref = { rule: 'user-day', metric: 'requests', subject: people[4]! }
        const cap = step === 60 ? 2 : null
        await Promise.all([memory.override(ref, cap), redis.override(ref, cap)])
      }
      if (what < 5) {
        const request = {
          subject: subjects(),
          model: rng.pick(['gpt-4o-mini', 'gpt-4o']),
          estimate: { inputTokens: rng.int(3_000), maxOutputTokens: rng.int(1_000) },
        }
        const a: Decision = await memory.reserve(request)
        const b: Decision = await redis.reserve(request)
        expect(plain(b), label).toEqual(plain(a))
        if (a.allowed && a.warnings.length > 0) seen.add('warning')
        if (!a.allowed) for (const v of a.violations) seen.add(`${v.code} ${v.rule}`)
        for (const v of a.shadowViolations) seen.add(`shadow ${v.rule}`)
        if (a.allowed && b.allowed) open.push({ memory: a.id, redis: b.id, at: clock.now() })
      } else if (what < 7 && open.length > 0) {
        const r = open.splice(rng.int(open.length), 1)[0]!
        const usage = rng.int(3) === 0 ? {} : { inputTokens: rng.int(4_000), outputTokens: rng.int(1_500) }
        if (clock.now() - r.at < 30 * 60_000) {
          expect(plain(await redis.settle(r.redis, usage)), label).toEqual(
            plain(await memory.settle(r.memory, usage)),
          )
        }
        closed.push(r)
      } else if (what < 8 && open.length > 0) {
        const r = open.splice(rng.int(open.length), 1)[0]!
        if (clock.now() - r.at < 30 * 60_000) {
          expect(plain(await redis.release(r.redis)), label).toEqual(plain(await memory.release(r.memory)))
        }
        closed.push(r)
      } else if (what < 9 && closed.length > 0) {
        const r = rng.pick(closed)
        expect(await redis.settle(r.redis, {}), label).toEqual(await memory.settle(r.memory, {}))
      } else {
        clock.advance(rng.pick([0, 1_000, 5_000, 30_000, 90_000, 400_000]))
      }
      if (step % 25 === 0) {
        const subject = subjects()
        expect(plain(await redis.usage({ subject })), label).toEqual(plain(await memory.usage({ subject })))
      }
    }
    expect(alerts.redis).toEqual(alerts.memory)
    expect(alerts.redis.length).toBeGreaterThan(0)
  }
  expect([...seen].sort()).toEqual([
    'budget_exceeded org-budget',
    'circuit_open breaker',
    'concurrency_limited user-concurrency',
    'quota_exceeded global-rpm',
    'quota_exceeded org-throttle',
    'quota_exceeded user-day',
    'rate_limited org-throttle',
    'rate_limited project-bucket',
    'rate_limited user-rpm',
    'shadow shadow',
    'warning',
  ])
}

/**
 * Hostile names for the mixed run's ids: braces and colons that would end a hash tag or a key
 * part, escapes, two lone surrogates (UTF-8 cannot carry them: sent as they are, both would become
 * U+FFFD and share counters), a line break, a 10 kB id, and the same string for an org and a user
 * (ids of different dimensions must never share a counter).
 */
export const hostileNames: Readonly<Record<string, string>> = {
  o1: '{',
  o2: 'a}:{b',
  p1: '%u0041',
  p2: 'a=b,c=d',
  p3: '\uD83D',
  p4: '\uDEA6',
  u1: 'a\nb',
  u2: '{',
  u3: 'x'.repeat(10_000),
  u4: '🚦',
}
