/**
 * Realistic traffic through a real gate (memory store, fake clock): allowed and refused
 * decisions, downgrades, shadow refusals, settles with overruns, releases, estimated usage,
 * late settles; ids with colons, quotes and Unicode. Every record the gate emits is kept.
 */
import {
  type AuditRecord,
  createTollgate,
  fakeClock,
  type PolicyInput,
  type SettleRecord,
} from '@tollgate/core'
import type { AuditHooks } from '../sink.js'

export const policy: PolicyInput = {
  models: {
    small: { tier: 'low', price: { input: 0.15, output: 0.6 } },
    large: { tier: 'frontier', price: { input: 2.5, output: 10 } },
  },
  plans: { free: { models: ['small'] } },
  access: [
    { match: { tier: 'frontier' }, require: { flags: ['enterprise'] }, otherwise: { downgrade: 'small' } },
  ],
  rules: [
    { id: 'user-rpm', per: 'user', limits: { requests: 4 }, window: '60s' },
    {
      id: 'team-day',
      owner: 'ml@example.com',
      per: 'team',
      limits: { tokens: 60_000 },
      window: 'day',
      alerts: [0.5, 0.9],
    },
    { id: 'spend', per: 'org', limits: { cost: 1 }, window: 'month' },
    { id: 'shadow-tight', per: 'user', limits: { tokens: 4_000 }, window: 'hour', mode: 'shadow' },
  ],
}

/** A small deterministic PRNG (mulberry32). */
function random(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const users = ['u1', 'user:2', 'ユーザー3', 'o\'brien "4"', '{u5}']
const teams = ['t1', 't:2']

/** Plays `calls` requests; every record goes to `hooks` and is also returned. */
export async function playTraffic(hooks: AuditHooks, calls: number, seed = 1) {
  const rand = random(seed)
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)]!
  const clock = fakeClock(Date.UTC(2026, 2, 2, 9))
  const decisions: AuditRecord[] = []
  const settles: SettleRecord[] = []
  const gate = createTollgate({
    policy,
    clock,
    onDecision: (r) => {
      decisions.push(r)
      hooks.onDecision(r)
    },
    onSettle: (r) => {
      settles.push(r)
      hooks.onSettle(r)
    },
  })
  const open: string[] = []
  for (let i = 0; i < calls; i++) {
    clock.advance(Math.floor(rand() * 4_000))
    const decision = await gate.reserve({
      subject: { org: 'acme', team: pick(teams), user: pick(users) },
      attributes: {
        plan: rand() < 0.3 ? 'free' : 'pro',
        environment: pick(['prod', 'staging']),
        flags: rand() < 0.5 ? ['enterprise'] : [],
      },
      model: rand() < 0.4 ? 'large' : 'small',
      feature: pick(['chat', 'search', 'summarise']),
      estimate: { inputTokens: Math.floor(rand() * 800), maxOutputTokens: 100 + Math.floor(rand() * 400) },
      attempt: rand() < 0.1 ? 2 : 1,
    })
    if (decision.allowed) open.push(decision.id)
    while (open.length > 0 && (rand() < 0.6 || open.length > 6)) {
      const id = open.splice(Math.floor(rand() * open.length), 1)[0]!
      const r = rand()
      if (r < 0.15) await gate.release(id)
      else {
        if (r > 0.95) clock.advance('11m') // past the hold's TTL (10 minutes): a late settle
        await gate.settle(id, {
          inputTokens: Math.floor(rand() * 900),
          outputTokens: Math.floor(rand() * 700),
          estimated: r > 0.85,
        })
      }
    }
  }
  for (const id of open) await gate.settle(id, { outputTokens: 10 })
  return { decisions, settles }
}
