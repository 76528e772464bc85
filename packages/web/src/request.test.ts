import { createTollgate, fakeClock, memoryStore } from '@tollgate/core'
import { unhandledRejections } from '@tollgate/core/testing'
import { describe, expect, it, vi } from 'vitest'
import type { SettleEvent } from './handle.js'
import { headerIdentity } from './identity/header.js'
import { apiKeyIdentity, memoryKeyRegistry } from './identity/keys.js'
import { identified } from './identity/types.js'
import { type Admitted, handleRequest, readJson, type TollgateOptions } from './request.js'
import { held, testGate, testPolicy, used } from './test/fixtures.js'

const identify = headerIdentity({ trusted: true, headers: { tenant: 'x-tenant', user: 'x-user' } })
const request = (user = 'u1', init: RequestInit = {}) =>
  new Request('http://x/chat', { ...init, headers: { 'x-tenant': 't1', 'x-user': user, ...init.headers } })
const estimate = { inputTokens: 100, maxOutputTokens: 200 }
const subject = { tenant: 't1', user: 'u1' }

function setup(extra: Partial<TollgateOptions> = {}) {
  const { gate, clock } = testGate()
  const events: SettleEvent[] = []
  const options: TollgateOptions = {
    gate,
    identify,
    model: 'gpt-4o-mini',
    estimate,
    onSettle: (e) => events.push(e),
    ...extra,
  }
  const admit = async (req = request()) => {
    const admission = await handleRequest(req, options)
    if (!admission.allowed) throw new Error(`refused: ${admission.response.status}`)
    return admission as Admitted
  }
  return { gate, clock, events, options, admit }
}

describe('handleRequest: refusals', () => {
  it('answers identity refusals, identity outages (503), and identities with no subject', async () => {
    const { options, gate } = setup()
    const missing = await handleRequest(new Request('http://x/'), options)
    expect(missing).toMatchObject({ allowed: false, response: { status: 401 } })
    const onError = vi.fn()
    const down = await handleRequest(request(), {
      ...options,
      onError,
      identify: () => Promise.reject(new Error('redis down')),
    })
    expect(down).toMatchObject({ allowed: false, response: { status: 503 } })
    expect(onError).toHaveBeenCalledOnce()
    for (const subject of [{}, { user: '' }] as Record<string, string>[]) {
      const empty = await handleRequest(request(), { ...options, identify: () => identified(subject) })
      expect(empty).toMatchObject({ allowed: false, response: { status: 401 } })
    }
    expect((await gate.usage({ subject }))[0]!.used).toBe(0)
  })

  it('answers 400 when a value function throws (a body without JSON), and tells onError', async () => {
    // `model: (req) => req.body.model` on a request with no JSON body threw out of the middleware: a 500
    const errors: unknown[] = []
    const { gate } = testGate()
    const admission = await handleRequest(request(), {
      gate,
      identify,
      model: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'model')")
      },
      onError: (e) => errors.push(e),
    })
    expect(admission.allowed).toBe(false)
    if (admission.allowed) return
    expect(admission.response.status).toBe(400)
    expect(await admission.response.json()).toMatchObject({
      error: { code: 'invalid_request', type: 'invalid_request_error' },
    })
    expect(errors).toHaveLength(1)
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(0)
  })

  it("refuses a feature outside the key's allowed features before reserving", async () => {
    const keys = memoryKeyRegistry()
    const { key } = await keys.issue({ subject, features: ['chat'] })
    const { options, gate } = setup({ identify: apiKeyIdentity(keys, { keyDimension: false }) })
    const req = () => new Request('http://x/', { headers: { authorization: `Bearer ${key}` } })
    const refused = await handleRequest(req(), { ...options, feature: 'images' })
    expect(refused.allowed).toBe(false)
    if (refused.allowed) return
    expect(refused.response.status).toBe(403)
    expect(await refused.response.json()).toMatchObject({
      error: { code: 'feature_not_allowed', type: 'permission_error' },
    })
    expect(await used(gate, subject, 'user-rpm', 'requests')).toBe(0)
    expect((await handleRequest(req(), { ...options, feature: 'chat' })).allowed).toBe(true)
  })

  it('an identity allowed no feature (features: []) is refused every feature; absent features allow any', async () => {
    const keys = memoryKeyRegistry()
    const { key } = await keys.issue({ subject, features: [] })
    const { options, gate } = setup({ identify: apiKeyIdentity(keys, { keyDimension: false }) })
    const req = () => new Request('http://x/', { headers: { authorization: `Bearer ${key}` } })
    for (const feature of ['chat', 'images', '']) {
      const refused = await handleRequest(req(), { ...options, feature })
      expect(refused.allowed, feature).toBe(false)
      if (refused.allowed) return
      expect(refused.response.status).toBe(403)
      expect(await refused.response.json()).toMatchObject({
        error: { code: 'feature_not_allowed', message: `This key may not use the feature "${feature}".` },
      })
    }
    // an identify of its own that answers features: [] is refused the same way
    const none = await handleRequest(request(), {
      ...options,
      identify: () => identified(subject, {}, []),
      feature: 'chat',
    })
    expect(none).toMatchObject({ allowed: false, response: { status: 403 } })
    expect(await used(gate, subject, 'user-rpm', 'requests')).toBe(0)
    // a route that names no feature is not a feature the identity is refused
    expect((await handleRequest(req(), options)).allowed).toBe(true)
    // no features list at all: every feature
    const any = await handleRequest(request(), {
      ...options,
      identify: () => identified(subject),
      feature: 'x',
    })
    expect(any.allowed).toBe(true)
  })

  it('turns engine errors into their status, and denials into responses with the decision', async () => {
    const { options } = setup()
    const noUser = await handleRequest(request(), {
      ...options,
      identify: () => identified({ tenant: 't1' }),
    })
    expect(noUser).toMatchObject({ allowed: false, response: { status: 400 } })
    const big = await handleRequest(request(), { ...options, estimate: { inputTokens: 5000 } })
    expect(big).toMatchObject({
      allowed: false,
      decision: { code: 'quota_exceeded' },
      response: { status: 429 },
    })
  })
})

describe('handleRequest: a meter factory that throws', () => {
  it('releases the reservation and throws the error: nothing stays held until the TTL', async () => {
    // the meter was made after the reserve, and its error left the hold open for ten minutes
    const { gate, options } = setup()
    const broken = new Error('meter factory broke')
    await expect(
      handleRequest(request(), {
        ...options,
        meter: () => {
          throw broken
        },
      }),
    ).rejects.toBe(broken)
    expect(await held(gate, subject, 'user-daily', 'tokens')).toBe(0)
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(0)
    expect(await used(gate, subject, 'user-rpm', 'requests')).toBe(0)
  })

  it('still throws the meter’s error when the release fails too, and tells onError of the release', async () => {
    const errors: unknown[] = []
    const { gate, options } = setup({ onError: (error) => errors.push(error) })
    const broken = new Error('meter factory broke')
    const releaseFailure = new Error('store down')
    const failingGate = { ...gate, release: () => Promise.reject(releaseFailure) }
    await expect(
      handleRequest(request(), {
        ...options,
        gate: failingGate,
        meter: () => {
          throw broken
        },
      }),
    ).rejects.toBe(broken)
    expect(errors).toEqual([releaseFailure])
  })
})

describe('the handle', () => {
  it('carries the decision, subject, model and the headers to send', async () => {
    const { admit } = setup({ feature: 'chat', headers: { openai: false } })
    const { handle } = await admit()
    expect(handle).toMatchObject({ subject, model: 'gpt-4o-mini', feature: 'chat', estimate, closed: false })
    expect(handle.decision.allowed).toBe(true)
    expect(Object.keys(handle.headers).sort()).toEqual(['ratelimit', 'ratelimit-policy'])
  })

  it('settles exactly once: later settles and releases change nothing', async () => {
    const { admit, gate, events } = setup()
    const { handle, tap } = await admit()
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(300)
    handle.report({ inputTokens: 90 })
    handle.report({ outputTokens: 40 })
    expect(handle.reported).toEqual({ inputTokens: 90, outputTokens: 40 })
    const first = await handle.settle()
    expect(first.status).toBe('settled')
    expect(await handle.settle({ outputTokens: 999 })).toBe(first)
    expect(await handle.release()).toBe(first)
    await tap.end('complete', 200)
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(130)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      outcome: 'settled',
      reason: 'handler',
      usage: { inputTokens: 90, outputTokens: 40 },
    })
  })

  it('run settles what was reported, and releases when the call throws before reporting', async () => {
    const { admit, gate } = setup()
    const a = await admit()
    const model = await a.handle.run(({ model, report }) => {
      report({ outputTokens: 10 })
      return model
    })
    expect(model).toBe('gpt-4o-mini')
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(110)
    const b = await admit()
    await expect(b.handle.run(() => Promise.reject(new Error('upstream 500')))).rejects.toThrow(
      'upstream 500',
    )
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(110)
    const c = await admit()
    await expect(
      c.handle.run(({ report }) => {
        report({ outputTokens: 5 })
        throw new Error('broke after billing')
      }),
    ).rejects.toThrow()
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(215)
  })

  it("run keeps the call's own outcome when the store is down at the close", async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    let down = false
    const flaky = {
      ...store,
      commit: (input: Parameters<typeof store.commit>[0]) =>
        down ? Promise.reject(new Error('ECONNRESET')) : store.commit(input),
    }
    const errors: unknown[] = []
    const { admit } = setup({
      gate: createTollgate({ policy: testPolicy, store: flaky, clock }),
      onError: (error) => errors.push(error),
    })
    const a = await admit()
    down = true
    expect(await a.handle.run(() => 'answer')).toBe('answer')
    const b = await admit().catch(() => undefined)
    if (b)
      await expect(b.handle.run(() => Promise.reject(new Error('upstream 500')))).rejects.toThrow(
        'upstream 500',
      )
    expect(errors.length).toBeGreaterThanOrEqual(1)
    expect(errors[0]).toMatchObject({ code: 'store_unavailable' })
  })

  it('a usage report the gate refuses closes nothing: the hold can still be settled, or is at the end', async () => {
    const errors: unknown[] = []
    const { admit, gate } = setup({ onError: (error) => errors.push(error) })
    const before = await used(gate, subject, 'user-daily', 'tokens')
    // the route settles with a bad amount: refused, still open, and a good settle closes it
    const a = await admit()
    await expect(a.handle.settle({ inputTokens: -1 })).rejects.toMatchObject({ code: 'invalid_amount' })
    expect(a.handle.closed).toBe(false)
    expect((await a.handle.settle({ inputTokens: 10, outputTokens: 0 })).status).toBe('settled')
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(before + 10)
    // a bad report found when the response ends: the call was made, so the estimate is settled
    const b = await admit()
    b.handle.report({ outputTokens: Number.NaN })
    await b.tap.end('complete', 200)
    expect(b.handle.closed).toBe(true)
    expect(errors).toEqual([expect.objectContaining({ code: 'invalid_amount' })])
    expect(await used(gate, subject, 'user-daily', 'tokens')).toBe(before + 10 + 300)
    expect(await held(gate, subject, 'user-daily', 'tokens')).toBe(0) // nothing left open
  })
})

describe('hooks', () => {
  it('an async onSettle or onError that rejects is dropped, not an unhandled rejection (that ended the process)', async () => {
    const unhandled = await unhandledRejections(async () => {
      const failing = async () => {
        throw new Error('the log sink is down')
      }
      const { admit } = setup({ onSettle: failing, onError: failing })
      const { handle, tap } = await admit()
      handle.report({ inputTokens: 90, outputTokens: 10 })
      await tap.end('complete', 200)
      const broken = setup({
        onError: failing,
        identify: () => {
          throw new Error('the key store is down')
        },
      })
      expect((await handleRequest(request(), broken.options)).allowed).toBe(false)
    })
    expect(unhandled).toEqual([])
  })
})

describe('readJson', () => {
  it('reads the body once from a clone; the route can still read it', async () => {
    const req = new Request('http://x/', { method: 'POST', body: JSON.stringify({ model: 'gpt-4o' }) })
    expect(await readJson(req)).toEqual({ model: 'gpt-4o' })
    expect(await readJson(req)).toEqual({ model: 'gpt-4o' })
    expect(await req.json()).toEqual({ model: 'gpt-4o' })
    expect(await readJson(new Request('http://x/', { method: 'POST', body: 'not json' }))).toBeUndefined()
  })
})
