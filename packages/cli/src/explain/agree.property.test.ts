/**
 * `explain` walks the policy with its own reading of the rules (to say why each applies or not) and
 * asks the real engine for the decision. The two must tell the same story: on every scenario policy
 * and any plausible request, the steps refuse exactly when the engine refuses, show the refusing
 * rule, and show a downgrade exactly when the engine made one.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createTollgate, parsePolicy } from '@tollgate/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { virtualClock } from '../clock.js'
import { explain } from './explain.js'
import type { ExplainInput } from './types.js'

const dir = new URL('../../../../examples/policies/', import.meta.url)
/**
 * Balances the scenarios do not have: opening balances above the thresholds, held by rules whose
 * `match` holds for some requests only (a plan, the model asked for) — the engine reads such a
 * balance as 0 for the others, and reads it for the request as asked, before any downgrade.
 */
const BALANCES = `
models:
  gpt-4o: { tier: frontier, price: { input: 2.5, output: 10 } }
  o1: { tier: premium, price: { input: 15, output: 60 } }
access:
  - match: { tier: premium }
    require: { flags: [enterprise], balance: { rule: prepaid, atLeast: 100 } }
    otherwise: { downgrade: gpt-4o }
  - match: { tier: frontier }
    require: { balance: { rule: o1-credit, atLeast: 1 } }
    otherwise: refuse
rules:
  - { id: prepaid, match: { plan: payg }, per: workspace, balance: true, limits: { cost: 150 } }
  - { id: o1-credit, match: { model: o1 }, per: user, balance: true, limits: { cost: 5 } }
  - { id: workspace-day, per: workspace, limits: { tokens: 3000000 }, window: day }
`
const scenarios = [
  ...readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => ({ file, text: readFileSync(new URL(file, dir), 'utf8') })),
  { file: 'balances (inline)', text: BALANCES },
]

const AT = Date.parse('2026-03-10T12:00:00Z')
const id = (prefix: string) => fc.constantFrom(`${prefix}1`, `${prefix}2`)
/** A plausible request for a policy: its models (and one it does not know), dimensions, attributes. */
function requests(models: string[]): fc.Arbitrary<ExplainInput> {
  const amount = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 2_000 }),
    fc.integer({ min: 1, max: 5_000_000 }),
  )
  return fc.record(
    {
      subject: fc.record(
        {
          org: id('o'),
          team: id('t'),
          project: id('p'),
          user: id('u'),
          key: id('k'),
          tenant: id('tn'),
          workspace: id('w'),
          environment: fc.constantFrom('production', 'development'),
          action: id('a'),
          attempt: fc.constantFrom('1', '2'),
        },
        { requiredKeys: [] },
      ),
      model: fc.constantFrom(...models, 'no-such-model'),
      feature: fc.constantFrom('chat', 'search', 'video'),
      attributes: fc.record(
        {
          plan: fc.constantFrom('trial', 'free', 'starter', 'pro', 'payg', 'enterprise'),
          environment: fc.constantFrom('production', 'development'),
          flags: fc.subarray(['enterprise', 'frontier-upgrade']),
        },
        { requiredKeys: [] },
      ),
      estimate: fc.record(
        {
          inputTokens: amount,
          maxOutputTokens: amount,
          units: fc.record(
            { image_draft: fc.nat(300), image_final: fc.nat(30), video_seconds: fc.nat(600) },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['subject'] },
  )
}

describe('explain agrees with the engine', () => {
  for (const { file, text } of scenarios) {
    it(`on ${file}`, async () => {
      const models = [...parsePolicy(text).models.keys()]
      await fc.assert(
        fc.asyncProperty(requests(models), async (input) => {
          const e = await explain(text, input, { at: AT })
          const d = e.decision
          if ('error' in d) return // a request the engine cannot evaluate: nothing to compare
          if (d.allowed) {
            // the steps of the model served (a fallback walks the limits again for its model)
            const final = e.steps.filter((s) => s.step !== 'rule' || (s.model ?? '') === d.model)
            const labels = (outcome: string) =>
              final.filter((s) => s.outcome === outcome && s.step === 'rule').map((s) => s.label)
            expect(final.filter((s) => s.outcome === 'refuse').map((s) => s.label)).toEqual([])
            expect(e.steps.some((s) => s.outcome === 'downgrade')).toBe(d.downgrade !== null)
            expect(labels('shadow-refuse').sort()).toEqual([...d.shadowRules].sort())
            // what each limit holds, its cap and partition: as the engine's own decision says
            const gate = createTollgate({ policy: text, clock: virtualClock(AT) })
            const real = await gate.reserve({
              subject: input.subject,
              attributes: input.attributes,
              model: input.model,
              feature: input.feature,
              estimate: {
                inputTokens: input.estimate?.inputTokens ?? 0,
                maxOutputTokens: input.estimate?.maxOutputTokens ?? parsePolicy(text).maxOutputTokens,
                units: input.estimate?.units,
              },
            })
            if (!real.allowed) throw new Error('the engine decided otherwise the second time')
            for (const limit of real.limits) {
              const step = final.find((s) => s.step === 'rule' && s.label === limit.rule)
              const shown = step?.limits?.find((l) => l.metric === limit.metric)
              expect(shown, `${limit.rule} ${limit.metric}`).toBeDefined()
              expect(step!.partition).toEqual(limit.partition)
              expect([shown!.metric, shown!.cap]).toEqual([limit.metric, limit.limit])
              if (!limit.shadow) expect([shown!.metric, shown!.amount]).toEqual([limit.metric, limit.held])
            }
          } else {
            const refusing = e.steps.filter((s) => s.outcome === 'refuse')
            expect(refusing.length, `refused with ${d.code} by ${d.rule}`).toBeGreaterThan(0)
            if (d.rule !== null) expect(refusing.map((s) => s.label)).toContain(d.rule)
            // refused by the limits: the engine saw every rule, and its violations are the refusing rules
            if (refusing.some((s) => s.step === 'rule' && s.label === d.rule))
              expect(
                refusing
                  .filter((s) => s.step === 'rule')
                  .map((s) => s.label)
                  .sort(),
              ).toEqual([...new Set(d.violations)].sort())
          }
        }),
        { numRuns: 300 },
      )
    }, 30_000)
  }
})
