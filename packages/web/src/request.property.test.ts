/**
 * `identify` and the option functions are the app's own code: whatever they return, a request is
 * answered (a refusal or a hold), never an exception out of the middleware. A malformed identity
 * fails closed (503) and goes to `onError`.
 */
import { replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { handleRequest } from './request.js'
import { testGate } from './test/fixtures.js'

const identity = {
  ok: true,
  subject: { tenant: 't1', user: 'u1' },
  attributes: { plan: 'pro' },
  features: ['chat'],
}
const options = { model: 'gpt-4o-mini', feature: 'chat', estimate: { inputTokens: 10, maxOutputTokens: 10 } }

describe('handleRequest on what app code returns', () => {
  it('an identify that returns nothing, or a malformed identity, answers 503 and tells onError', async () => {
    const { gate } = testGate()
    for (const result of [
      undefined,
      null,
      'ok',
      { ok: 'yes' },
      { ...identity, features: {} },
      { ok: false, status: 500 },
    ]) {
      const errors: unknown[] = []
      const admission = await handleRequest(new Request('http://x/'), {
        gate,
        identify: () => result as never,
        onError: (error) => errors.push(error),
      })
      expect(admission.allowed, JSON.stringify(result)).toBe(false)
      expect(!admission.allowed && admission.response.status).toBe(503)
      expect(errors).toEqual([expect.any(TypeError)])
    }
  })

  it('a feature that is no string, for a key limited to some features, is refused, not thrown (found by the property)', async () => {
    const { gate } = testGate()
    // the message named the feature in a template: an object without toString threw a TypeError
    for (const feature of [{ toString: undefined }, Object.create(null), 5, ['chat']]) {
      const admission = await handleRequest(new Request('http://x/'), {
        gate,
        identify: () => identity as never,
        feature: feature as never,
      })
      expect(admission.allowed).toBe(false)
      expect(!admission.allowed && admission.response.status).toBe(400)
    }
  })

  it('any value anywhere in the identity or the options answers a refusal or a hold, never throws', async () => {
    const { gate } = testGate()
    const path = fc.array(fc.nat(20), { maxLength: 4 })
    await fc.assert(
      fc.asyncProperty(
        path,
        fc.anything({ maxDepth: 2, withNullPrototype: true, withBigInt: true }),
        path,
        fc.anything({ maxDepth: 2 }),
        async (at, value, optionAt, optionValue) => {
          const result = replaceAt(identity, at, value)
          const changed = replaceAt(options, optionAt, optionValue)
          const o = (typeof changed === 'object' && changed !== null ? changed : {}) as Record<string, never>
          const admission = await handleRequest(new Request('http://x/'), {
            gate,
            identify: () => result as never,
            model: o.model,
            feature: o.feature,
            estimate: o.estimate,
          })
          if (admission.allowed) await admission.tap.end('complete', 200)
          else expect(admission.response).toBeInstanceOf(Response)
        },
      ),
      { numRuns: 2000 },
    )
  })
})
