/**
 * The response side of a handle (`ResponseTap`), as adapters and `handleRequest` users drive it:
 * what the end of a response settles or releases, on a real gate with the memory store.
 */
import { TollgateError } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import type { SettleEvent } from './handle.js'
import { headerIdentity } from './identity/header.js'
import { sseMeter } from './meter.js'
import { type Admitted, handleRequest, type TollgateOptions } from './request.js'
import { charMeter, testGate, used } from './test/fixtures.js'

const subject = { tenant: 't1', user: 'u1' }
const request = () => new Request('http://x/chat', { headers: { 'x-tenant': 't1', 'x-user': 'u1' } })
/** One SSE event: `data: <json>` and the blank line that ends it. */
const event = (data: object) => `data: ${JSON.stringify(data)}\n\n`

function setup(extra: Partial<TollgateOptions> = {}) {
  const { gate, clock, records } = testGate()
  const events: SettleEvent[] = []
  const errors: unknown[] = []
  const options: TollgateOptions = {
    gate,
    identify: headerIdentity({ trusted: true, headers: { tenant: 'x-tenant', user: 'x-user' } }),
    model: 'gpt-4o-mini',
    estimate: { inputTokens: 100, maxOutputTokens: 200 }, // 300 tokens held
    meter: () => sseMeter(charMeter()),
    onSettle: (e) => events.push(e),
    onError: (e) => errors.push(e),
    ...extra,
  }
  const admit = async () => {
    clock.advance('60s') // past the 3 requests a minute
    const admission = await handleRequest(request(), options)
    if (!admission.allowed) throw new Error(`refused: ${admission.response.status}`)
    return admission as Admitted
  }
  const tokens = () => used(gate, subject, 'user-daily', 'tokens')
  return { records, events, errors, admit, tokens }
}

describe('ResponseTap.end: the route reported usage', () => {
  it("settles the provider's numbers the route reported over the meter's count of the streamed text", async () => {
    const { admit, events, records, tokens } = setup()
    const { handle, tap } = await admit()
    // the provider billed 500 output tokens; the streamed text counts 5 characters
    handle.report({ inputTokens: 10, outputTokens: 500 })
    tap.write(event({ delta: 'hello' }))
    await tap.end('complete', 200)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ outcome: 'settled', usage: { inputTokens: 10, outputTokens: 500 } })
    expect(events[0]!.usage).not.toHaveProperty('estimated') // all of it the provider's
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: false })
    expect(await tokens()).toBe(510)
  })

  it("keeps the meter's count for the fields the route did not report, and flags it", async () => {
    const { admit, events, records, tokens } = setup()
    const { handle, tap } = await admit()
    handle.report({ inputTokens: 10 })
    tap.write(event({ delta: 'hello' }))
    await tap.end('complete', 200)
    expect(events[0]).toMatchObject({
      outcome: 'settled',
      usage: { inputTokens: 10, outputTokens: 5, estimated: true },
    })
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: true })
    expect(await tokens()).toBe(15)
  })

  it("ignores fields reported as undefined: they neither drop the meter's count nor an earlier report", async () => {
    // `report({ outputTokens: usage?.completion_tokens })` on a stream that carried no usage chunk
    // settled the whole estimate (200 output tokens) over the 5 the meter counted
    const { admit, events, tokens } = setup()
    const first = await admit()
    first.handle.report({ inputTokens: 10, outputTokens: undefined })
    first.tap.write(event({ delta: 'hello' }))
    await first.tap.end('complete', 200)
    expect(events[0]).toMatchObject({
      outcome: 'settled',
      usage: { inputTokens: 10, outputTokens: 5, estimated: true },
    })
    expect(await tokens()).toBe(15)
    // a later report with an undefined field keeps what an earlier one said
    const second = await admit()
    second.handle.report({ inputTokens: 20, outputTokens: 30 })
    second.handle.report({ inputTokens: 25, outputTokens: undefined })
    expect(second.handle.reported).toEqual({ inputTokens: 25, outputTokens: 30 })
    second.tap.write(event({ delta: 'hello' }))
    await second.tap.end('complete', 200)
    expect(events[1]).toMatchObject({ outcome: 'settled', usage: { inputTokens: 25, outputTokens: 30 } })
    expect(await tokens()).toBe(15 + 55)
  })

  it('settles what the meter measured when the gate refuses the report (a bad amount), not the estimate', async () => {
    const { admit, events, errors, records, tokens } = setup()
    const { handle, tap } = await admit()
    handle.report({ outputTokens: -5 })
    tap.write(event({ delta: 'x'.repeat(42) }))
    await tap.end('complete', 200)
    // the refused settle, told to onError, then the fallback: input at its estimate, output measured
    expect(errors).toHaveLength(1)
    expect(TollgateError.isInstance(errors[0]) && errors[0].code).toBe('invalid_amount')
    expect(events.map((e) => e.outcome)).toEqual(['settled', 'settled'])
    expect(events[0]).toMatchObject({ usage: { outputTokens: -5 }, error: errors[0] })
    expect(events[1]).toMatchObject({
      usage: { outputTokens: 42, estimated: true },
      result: { status: 'settled' },
    })
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: true })
    expect(await tokens()).toBe(100 + 42)
    expect(handle.closed).toBe(true)
  })

  it('settles the estimate when the gate refuses the report and nothing was measured', async () => {
    const { admit, events, errors, tokens } = setup({ meter: undefined })
    const { handle, tap } = await admit()
    handle.report({ outputTokens: 1.5 })
    tap.write('{"reply":"not metered"}')
    await tap.end('complete', 200)
    expect(errors).toHaveLength(1)
    expect(events.at(-1)).toMatchObject({ outcome: 'settled', usage: { estimated: true } })
    expect(await tokens()).toBe(300)
  })
})

describe('ResponseTap.end: nothing reported', () => {
  it('releases an error answer with a body, from status 400 up; a 399 with a body is charged', async () => {
    const { admit, events, tokens } = setup({ meter: undefined })
    for (const status of [400, 404, 429, 500, 503]) {
      const { tap } = await admit()
      tap.write('{"error":"bad request"}')
      await tap.end('complete', status)
      expect(events.at(-1), `status ${status}`).toMatchObject({
        outcome: 'released',
        reason: 'complete',
        usage: null,
        sent: 23,
      })
      expect(await tokens(), `status ${status}`).toBe(0)
    }
    const { tap } = await admit()
    tap.write('{"moved":true}')
    await tap.end('complete', 399)
    expect(events.at(-1)).toMatchObject({ outcome: 'settled', usage: { estimated: true } })
    expect(await tokens()).toBe(300)
  })

  it('keeps the hold at the estimate for a 400 when asked to (`keep`), and settles a report on a 400', async () => {
    const { admit, events, tokens } = setup({ meter: undefined })
    const kept = await admit()
    await kept.tap.end('complete', 400, true)
    expect(events.at(-1)).toMatchObject({ outcome: 'settled', usage: { estimated: true } })
    expect(await tokens()).toBe(300)
    const reported = await admit()
    reported.handle.report({ inputTokens: 30, outputTokens: 0 })
    reported.tap.write('{"error":"content filtered"}')
    await reported.tap.end('complete', 400)
    expect(events.at(-1)).toMatchObject({ outcome: 'settled', usage: { inputTokens: 30, outputTokens: 0 } })
    expect(await tokens()).toBe(330)
  })
})
