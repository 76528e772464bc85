/**
 * Conformance properties (fast-check): rolling windows and buckets never admit more than
 * they may, and a reference model predicts every answer of a store over random sequences
 * of reserve, settle, release, duplicate commits and clock advances.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { describeReferenceModel } from './model.js'
import {
  bucket,
  counter,
  countersOf,
  harness,
  release,
  reserve,
  type Suite,
  settle,
  sliding,
} from './specs.js'

const TIMEOUT = 120_000

/** What a reserve step does with an admitted hold right away. */
const then = fc.constantFrom('hold', 'settle-lower', 'release')

export function describeProperties(suite: Suite): void {
  describe('properties', () => {
    it('sliding: no span of sizeMs ever holds more than the cap', { timeout: TIMEOUT }, async () => {
      const setup = fc.record({
        slotMs: fc.constantFrom(250, 1_000, 1_500),
        slots: fc.integer({ min: 2, max: 8 }),
        cap: fc.integer({ min: 1, max: 12 }),
        offset: fc.integer({ min: 0, max: 1_499 }),
      })
      const step = fc.record({
        dt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_500 }), fc.integer({ min: 1, max: 25_000 })),
        amount: fc.integer({ min: 1, max: 12 }),
        then,
        fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      })
      await fc.assert(
        fc.asyncProperty(
          setup,
          fc.array(step, { maxLength: 40 }),
          async ({ slotMs, slots, cap, offset }, steps) => {
            const { store, clock, key, id } = await harness(suite)
            clock.advance(offset)
            const sizeMs = slotMs * slots
            const spec = counter(key(), sliding(sizeMs, slotMs), cap)
            const log: { t: number; amount: number }[] = []
            const sum = (from: number, to: number) =>
              log.reduce((total, e) => (e.t > from && e.t <= to ? total + e.amount : total), 0)
            for (const { dt, amount, then, fraction } of steps) {
              const t = clock.advance(dt)
              const r = id()
              const result = await reserve(store, r, [{ ...spec, amount }])
              if (result.status === 'ok') {
                let charged = amount
                if (then === 'settle-lower') {
                  charged = Math.floor(amount * fraction)
                  await settle(store, r, { tokens: charged })
                } else if (then === 'release') {
                  charged = 0
                  await release(store, r)
                }
                log.push({ t, amount: charged })
                expect(sum(t - sizeMs, t), 'admitted past the cap').toBeLessThanOrEqual(cap)
              } else {
                expect(result.status).toBe('denied')
                // It may under-admit only by what the oldest slot holds.
                if (amount <= cap)
                  expect(sum(t - sizeMs - slotMs, t) + amount, 'refused with room').toBeGreaterThan(cap)
              }
              const [state] = await store.read([spec])
              expect(state!.used).toBeGreaterThanOrEqual(sum(t - sizeMs, t))
              expect(state!.used).toBeLessThanOrEqual(sum(t - sizeMs - slotMs, t))
              expect(state!.held).toBeGreaterThanOrEqual(0)
              expect(state!.held).toBeLessThanOrEqual(state!.used)
            }
            for (const e of log) expect(sum(e.t - sizeMs, e.t)).toBeLessThanOrEqual(cap)
          },
        ),
        { numRuns: suite.numRuns },
      )
    })

    it('bucket: never more than the burst plus one unit per intervalMs elapsed', {
      timeout: TIMEOUT,
    }, async () => {
      const setup = fc.record({
        intervalMs: fc.constantFrom(100, 1_000, 1_234),
        cap: fc.integer({ min: 1, max: 10 }),
      })
      const step = fc.record({
        dt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 })),
        amount: fc.integer({ min: 1, max: 10 }),
        then,
        fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      })
      await fc.assert(
        fc.asyncProperty(setup, fc.array(step, { maxLength: 40 }), async ({ intervalMs, cap }, steps) => {
          const { store, clock, key, id } = await harness(suite)
          const spec = counter(key(), bucket(intervalMs), cap)
          const log: { t: number; amount: number }[] = []
          for (const { dt, amount, then, fraction } of steps) {
            const t = clock.advance(dt)
            const r = id()
            const result = await reserve(store, r, [{ ...spec, amount }])
            if (result.status !== 'ok') {
              const retry = countersOf(result, 'denied')[0]!.retryAfterMs
              if (amount > cap) expect(retry).toBeNull()
              else expect(retry).toBeGreaterThan(0)
              continue
            }
            let charged = amount
            if (then === 'settle-lower') {
              charged = Math.floor(amount * fraction)
              await settle(store, r, { tokens: charged })
            } else if (then === 'release') {
              charged = 0
              await release(store, r)
            }
            log.push({ t, amount: charged })
          }
          for (let i = 0; i < log.length; i++) {
            let total = 0
            for (let j = i; j < log.length; j++) {
              total += log[j]!.amount
              expect(total).toBeLessThanOrEqual(cap + (log[j]!.t - log[i]!.t) / intervalMs)
            }
          }
        }),
        { numRuns: suite.numRuns },
      )
    })

    describeReferenceModel(suite, TIMEOUT)
  })
}
