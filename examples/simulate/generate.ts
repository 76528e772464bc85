/**
 * A day of synthetic traffic for `policy.yaml`, the same for the same seed: six workspaces on
 * four plans, about 340 users with a diurnal rhythm (quiet at night, busiest early afternoon
 * UTC), and two heavy users — a script that hammers one API key in bursts, and a free-plan
 * user pasting long documents.
 *
 * Run: `tsx generate.ts [--seed 42] [--day 2026-03-10] [--out traffic.jsonl]` (stdout without --out).
 */
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { TrafficLine } from '@tollgate/cli'

/** A workspace: its plan, flags and number of users. */
export interface Org {
  id: string
  plan: 'free' | 'starter' | 'pro' | 'enterprise'
  flags: string[]
  users: number
}

export const ORGS: readonly Org[] = [
  { id: 'acme', plan: 'enterprise', flags: ['premium'], users: 90 },
  { id: 'globex', plan: 'pro', flags: [], users: 70 },
  { id: 'initech', plan: 'starter', flags: [], users: 60 },
  { id: 'umbrella', plan: 'starter', flags: [], users: 40 },
  { id: 'hooli', plan: 'free', flags: [], users: 50 },
  { id: 'piedpiper', plan: 'free', flags: [], users: 30 },
]

/** The two heavy users: who they are and the key they use. */
export const HEAVY = {
  /** A batch script on a starter workspace, firing bursts of 60 requests from one key. */
  burst: { org: 'initech', user: 'initech-u001', key: 'initech-k001-script' },
  /** A free-plan user pasting long documents all day. */
  tokens: { org: 'hooli', user: 'hooli-u001', key: 'hooli-k001' },
} as const

/** Options of {@link generateTraffic}. */
export interface GenerateOptions {
  /** @default 42 */
  seed?: number
  /** The UTC day to generate. @default '2026-03-10' */
  day?: string
}

/** mulberry32: a small, fast, seedable PRNG returning [0, 1). */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const HOUR = 3_600_000
/** Relative traffic per UTC hour: a floor at night, a peak around 13:00. */
const DIURNAL = Array.from(
  { length: 24 },
  (_, h) => 0.08 + Math.max(0, Math.sin((Math.PI * (h - 5)) / 16)) ** 2,
)
const DIURNAL_TOTAL = DIURNAL.reduce((a, b) => a + b, 0)

/**
 * A day of traffic, sorted by time. Every line has a subject `{ org, user, key }`,
 * attributes `{ plan, flags }`, a model, a feature, input tokens, the output tokens asked for
 * and produced, and how long the call took.
 */
export function generateTraffic(options: GenerateOptions = {}): TrafficLine[] {
  const next = random(options.seed ?? 42)
  const dayStart = Date.parse(`${options.day ?? '2026-03-10'}T00:00:00Z`)
  const pick = <T>(items: readonly (readonly [T, number])[]): T => {
    let r = next() * items.reduce((sum, [, w]) => sum + w, 0)
    for (const [item, weight] of items) {
      r -= weight
      if (r < 0) return item
    }
    return items.at(-1)![0]
  }
  const gauss = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())
  const timeOfDay = () => {
    let r = next() * DIURNAL_TOTAL
    let hour = 0
    for (; hour < 23; hour++) {
      r -= DIURNAL[hour]!
      if (r < 0) break
    }
    return dayStart + hour * HOUR + Math.floor(next() * HOUR)
  }
  const lines: (TrafficLine & { t: number })[] = []
  const call = (org: Org, user: string, key: string, t: number, inputTokens: number, feature?: string) => {
    const chosen =
      feature ??
      pick([
        ['chat', 6],
        ['summarize', 2.5],
        ['code-review', 1.5],
      ] as const)
    const model = pick([
      ['gpt-4o-mini', 6],
      ['claude-3-5-haiku', 1],
      ['gpt-4o', 2.2],
      ['o1', 0.8],
    ] as const)
    const maxOutputTokens = chosen === 'summarize' ? 512 : 1024
    const outputTokens = Math.round(maxOutputTokens * (0.1 + 0.7 * next()))
    lines.push({
      t,
      subject: { org: org.id, user, key },
      attributes: { plan: org.plan, flags: org.flags },
      model,
      feature: chosen,
      inputTokens,
      maxOutputTokens,
      outputTokens,
      durationMs: 400 + outputTokens * 20,
    })
  }
  const normalInput = () => Math.min(12_000, Math.max(20, Math.round(350 * Math.exp(0.9 * gauss()))))

  for (const org of ORGS) {
    for (let u = 1; u <= org.users; u++) {
      const user = `${org.id}-u${String(u).padStart(3, '0')}`
      const heavy = user === HEAVY.burst.user || user === HEAVY.tokens.user
      if (heavy || next() < 0.2) continue // heavy users get their own pattern; a fifth are away today
      const key = `${org.id}-k${String(u).padStart(3, '0')}`
      const requests = 4 + Math.floor(next() * 40)
      for (let i = 0; i < requests; i++) call(org, user, key, timeOfDay(), normalInput())
    }
  }
  // the script: 25 bursts of 60 requests, about half a second apart, in business hours
  const initech = ORGS.find((o) => o.id === HEAVY.burst.org)!
  for (let burst = 0; burst < 25; burst++) {
    const start = dayStart + 7 * HOUR + Math.floor(next() * 12 * HOUR)
    for (let i = 0; i < 60; i++)
      call(
        initech,
        HEAVY.burst.user,
        HEAVY.burst.key,
        start + i * 500 + Math.floor(next() * 400),
        600,
        'summarize',
      )
  }
  // the document paster: long prompts all day, some past the free plan's 8,000-token cap
  const hooli = ORGS.find((o) => o.id === HEAVY.tokens.org)!
  for (let i = 0; i < 150; i++)
    call(
      hooli,
      HEAVY.tokens.user,
      HEAVY.tokens.key,
      timeOfDay(),
      3000 + Math.floor(next() * 6500),
      'summarize',
    )

  return lines.sort((a, b) => a.t - b.t).map((line) => ({ ...line, t: new Date(line.t).toISOString() }))
}

/** Traffic as JSON lines. */
export const toJsonl = (lines: readonly TrafficLine[]): string =>
  lines.map((l) => JSON.stringify(l)).join('\n') + '\n'

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { seed: { type: 'string' }, day: { type: 'string' }, out: { type: 'string' } },
  })
  const text = toJsonl(
    generateTraffic({ seed: values.seed === undefined ? 42 : Number(values.seed), day: values.day }),
  )
  if (values.out) writeFileSync(values.out, text)
  else process.stdout.write(text)
}
