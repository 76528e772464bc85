import { checkRateLimitHeaders } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'
import type { SettleEvent } from './handle.js'
import { headerIdentity } from './identity/header.js'
import { sseMeter } from './meter.js'
import type { TollgateOptions } from './request.js'
import { gateFetch } from './stream.js'
import { charMeter, testGate, used } from './test/fixtures.js'

const subject = { tenant: 't1', user: 'u1' }
const request = () => new Request('http://x/chat', { headers: { 'x-tenant': 't1', 'x-user': 'u1' } })
const encoder = new TextEncoder()

/** Waits for `condition`, turn by turn of the event loop (no timer). */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 10_000 && !condition(); turn++) await new Promise((r) => setImmediate(r))
  if (!condition()) throw new Error('the condition never held')
}

/** A body that sends `events` as SSE, then ends (or fails, or stays open until cancelled). */
function sse(events: object[], after: 'end' | 'error' | 'open' = 'end'): ReadableStream<Uint8Array> {
  let i = 0
  return new ReadableStream({
    pull(controller) {
      if (i < events.length) controller.enqueue(encoder.encode(`data: ${JSON.stringify(events[i++])}\n\n`))
      else if (after === 'end') controller.close()
      else if (after === 'error') controller.error(new Error('upstream broke'))
    },
  })
}

describe('gateFetch: the handler', () => {
  it('is refused when it is no function, when made (each request held, then failed)', () => {
    const { options } = setup()
    for (const handler of [undefined, 'fetch', {}])
      expect(() => gateFetch(handler as never, options)).toThrow(/^gateFetch: the handler must be a function/)
  })
})

function setup(extra: Partial<TollgateOptions> = {}) {
  const { gate, clock, records } = testGate()
  const events: SettleEvent[] = []
  let notify: (e: SettleEvent) => void = () => undefined
  const options: TollgateOptions = {
    gate,
    identify: headerIdentity({ trusted: true, headers: { tenant: 'x-tenant', user: 'x-user' } }),
    model: 'gpt-4o-mini',
    estimate: { inputTokens: 100, maxOutputTokens: 200 },
    meter: () => sseMeter(charMeter()),
    onSettle: (e) => {
      events.push(e)
      notify(e)
    },
    ...extra,
  }
  const settled = () => new Promise<SettleEvent>((resolve) => (notify = resolve))
  const tokens = () => used(gate, subject, 'user-daily', 'tokens')
  return { gate, clock, records, events, options, settled, tokens }
}

describe('gateFetch / finishResponse', () => {
  it('puts valid rate-limit headers on the response and settles reported usage when the body ends', async () => {
    const { options, settled, tokens, events } = setup()
    const handler = gateFetch((_req, tollgate) => {
      tollgate.report({ inputTokens: 80, outputTokens: 20 })
      return Response.json({ ok: true })
    }, options)
    const response = await handler(request())
    checkRateLimitHeaders(response.headers)
    expect(await tokens()).toBe(300) // held until the body is sent
    const done = settled()
    expect(await response.json()).toEqual({ ok: true })
    expect(await done).toMatchObject({
      outcome: 'settled',
      reason: 'complete',
      usage: { inputTokens: 80, outputTokens: 20 },
    })
    expect(await tokens()).toBe(100)
    expect(events).toHaveLength(1)
  })

  it('settles a streamed body from what the meter saw: the usage event, or the streamed text', async () => {
    const { options, settled, tokens } = setup()
    const withUsage = gateFetch(
      () => new Response(sse([{ delta: 'hello' }, { usage: { inputTokens: 70, outputTokens: 5 } }])),
      options,
    )
    let done = settled()
    await (await withUsage(request())).text()
    expect(await done).toMatchObject({ reason: 'complete', usage: { inputTokens: 70, outputTokens: 5 } })
    expect(await tokens()).toBe(75)
    const withoutUsage = gateFetch(() => new Response(sse([{ delta: 'abc' }, { delta: 'de' }])), options)
    done = settled()
    await (await withoutUsage(request())).text()
    // input keeps its estimate (100), output counted from the stream (5): never zero
    expect(await done).toMatchObject({ usage: { outputTokens: 5 } })
    expect(await tokens()).toBe(75 + 105)
  })

  it('a client that goes away mid-stream: settled from what was sent, and the signal aborts', async () => {
    const { options, settled, tokens } = setup()
    let signal: AbortSignal | undefined
    const handler = gateFetch((_req, tollgate) => {
      signal = tollgate.signal
      return new Response(sse([{ delta: 'twelve chars' }, { delta: 'more' }], 'open'), {
        headers: { 'content-type': 'text/event-stream' },
      })
    }, options)
    const reader = (await handler(request())).body!.getReader()
    await reader.read()
    const done = settled()
    await reader.cancel()
    expect(await done).toMatchObject({ outcome: 'settled', reason: 'aborted', usage: { outputTokens: 12 } })
    expect(signal!.aborted).toBe(true)
    expect(await tokens()).toBe(112)
  })

  it('releases when nothing was sent, or the route answered an error without reporting usage', async () => {
    const { options, settled, tokens } = setup()
    const unread = gateFetch(() => new Response(sse([{ delta: 'x' }], 'open')), options)
    let done = settled()
    await (await unread(request())).body!.cancel()
    expect(await done).toMatchObject({ outcome: 'released', reason: 'aborted', sent: 0 })
    const failing = gateFetch(() => Response.json({ error: 'upstream' }, { status: 502 }), options)
    done = settled()
    await (await failing(request())).text()
    expect(await done).toMatchObject({ outcome: 'released', reason: 'complete' })
    const empty = gateFetch(() => new Response(null, { status: 204 }), options)
    done = settled()
    await empty(request())
    expect(await done).toMatchObject({ outcome: 'released' })
    expect(await tokens()).toBe(0)
  })

  it('a body that fails mid-way is settled from what was sent; a handler that throws releases', async () => {
    const { options, settled, tokens } = setup()
    const broken = gateFetch(() => new Response(sse([{ delta: 'abcd' }], 'error')), options)
    const done = settled()
    await expect((await broken(request())).text()).rejects.toThrow()
    expect(await done).toMatchObject({ reason: 'failed', usage: { outputTokens: 4 } })
    expect(await tokens()).toBe(104)
    const throwing = gateFetch(() => Promise.reject(new Error('bug')), options)
    await expect(throwing(request())).rejects.toThrow('bug')
    expect(await tokens()).toBe(104)
  })

  it('a handler that returns no Response gets a clear error, and its hold closes at once', async () => {
    const { options, settled, tokens } = setup()
    for (const value of [undefined, null, 'text', { status: 200 }]) {
      const wrong = gateFetch(() => value as unknown as Response, options)
      const done = settled()
      await expect(wrong(request())).rejects.toThrow(/^the route returned \w+, not a Response/)
      expect(await done).toMatchObject({ reason: 'failed' })
      expect(await tokens()).toBe(0) // released, not held until its TTL
    }
    // what the route reported before returning nothing is settled, as when it throws
    const reported = gateFetch((_req, tollgate) => {
      tollgate.report({ inputTokens: 10, outputTokens: 5 })
      return undefined as unknown as Response
    }, options)
    await expect(reported(request())).rejects.toThrow(TypeError)
    expect(await tokens()).toBe(15)
  })

  it("flags as estimated, in the gate's settle record, any usage the provider did not report", async () => {
    // settles counted from the streamed text said `estimated: false`: audit's spend_estimated missed them
    const { options, records, clock } = setup()
    const flagged = async (route: Parameters<typeof gateFetch>[0], extra: Partial<TollgateOptions> = {}) => {
      clock.advance('60s') // past the 3 requests a minute
      const before = records.length
      const response = await gateFetch(route, { ...options, ...extra })(request())
      await response.text().catch(() => undefined)
      await until(() => records.length > before)
      expect(records.at(-1)!.event).toBe('settle')
      return records.at(-1)!.estimated
    }
    const stream = (events: object[], after?: 'error') => () => new Response(sse(events, after))
    // the provider's usage: reported by the stream, or by the route
    expect(await flagged(stream([{ delta: 'ab' }, { usage: { inputTokens: 7, outputTokens: 2 } }]))).toBe(
      false,
    )
    expect(
      await flagged((_req, tollgate) => {
        tollgate.report({ inputTokens: 9, outputTokens: 3 }) // covers what the meter counted
        return new Response(sse([{ delta: 'abc' }]))
      }),
    ).toBe(false)
    // output counted from the text: read to the end, failed mid-way, or with only input reported
    expect(await flagged(stream([{ delta: 'abc' }]))).toBe(true)
    expect(await flagged(stream([{ delta: 'abc' }], 'error'))).toBe(true)
    expect(
      await flagged((_req, tollgate) => {
        tollgate.report({ inputTokens: 9 })
        return new Response(sse([{ delta: 'abc' }]))
      }),
    ).toBe(true)
    // the whole estimate: nothing reported or measured, by the response's end or the route's close
    expect(await flagged(() => new Response('some reply'), { meter: undefined })).toBe(true)
    expect(
      await flagged(async (_req, tollgate) => {
        await tollgate.run(() => 'nothing reported')
        return new Response('some reply')
      }),
    ).toBe(true)
    // a route's own flag is kept
    expect(
      await flagged((_req, tollgate) => {
        tollgate.report({ outputTokens: 4, estimated: true })
        return Response.json({})
      }),
    ).toBe(true)
  })

  it('without a meter, a sent body settles the estimate (never zero)', async () => {
    const { options, settled, tokens } = setup({ meter: undefined })
    const handler = gateFetch(() => new Response('some reply'), options)
    const done = settled()
    await (await handler(request())).text()
    expect(await done).toMatchObject({ outcome: 'settled', usage: {} })
    expect(await tokens()).toBe(300)
  })

  it('a route that settled itself gets only the headers; its own headers win', async () => {
    const { options, tokens, events } = setup()
    const handler = gateFetch(async (_req, tollgate) => {
      await tollgate.settle({ outputTokens: 1 })
      return new Response('ok', { headers: { 'x-ratelimit-limit-requests': 'mine' } })
    }, options)
    const response = await handler(request())
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('mine')
    expect(response.headers.get('ratelimit')).not.toBeNull()
    await response.text()
    expect(events).toHaveLength(1)
    expect(await tokens()).toBe(101)
  })
})

describe('finishResponse: error answers and HEAD requests', () => {
  it('meters the body of an error answer the route reported some usage for, and settles when it ends', async () => {
    const { options, settled, tokens, events } = setup()
    const body = `${'data: {"delta":"'}${'z'.repeat(120)}"}\n\ndata: {"error":"upstream failed"}\n\n`
    const handler = gateFetch((_req, tollgate) => {
      tollgate.report({ inputTokens: 50 })
      return new Response(body, { status: 500, headers: { 'content-type': 'text/event-stream' } })
    }, options)
    const response = await handler(request())
    expect(response.status).toBe(500)
    expect(events).toHaveLength(0) // held until the body is sent
    expect(await tokens()).toBe(300)
    const done = settled()
    expect(await response.text()).toBe(body)
    // reported input, output counted from what the body streamed (not the 200 estimated)
    expect(await done).toMatchObject({
      outcome: 'settled',
      reason: 'complete',
      usage: { inputTokens: 50, outputTokens: 120, estimated: true },
      sent: encoder.encode(body).length,
    })
    expect(await tokens()).toBe(170)
  })

  it('a HEAD answered 400 or more with nothing reported is released; below 400, the estimate is settled', async () => {
    const { options, settled, tokens, clock } = setup({ meter: undefined })
    let cancelled = 0
    const body = () => new ReadableStream({ cancel: () => void cancelled++ })
    const handler = gateFetch(
      (req) => new Response(body(), { status: Number(new URL(req.url).searchParams.get('s') ?? 200) }),
      options,
    )
    const at = (status: number) =>
      handler(new Request(`http://x/chat?s=${status}`, { method: 'HEAD', headers: request().headers }))
    for (const status of [404, 400, 503]) {
      clock.advance('60s') // past the 3 requests a minute
      const done = settled()
      const response = await at(status)
      expect(response.status).toBe(status)
      expect(response.body).toBeNull()
      expect(await done, `HEAD answered ${status}`).toMatchObject({
        outcome: 'released',
        reason: 'complete',
        usage: null,
      })
      expect(await tokens(), `HEAD answered ${status}`).toBe(0)
    }
    expect(cancelled).toBe(3) // nobody reads a HEAD's body: cancelled, not left tapped
    // the route ran (Hono and Next run the GET route for a HEAD), its body is just not sent
    clock.advance('60s')
    const done = settled()
    await at(200)
    expect(await done).toMatchObject({ outcome: 'settled', usage: { estimated: true }, sent: 0 })
    expect(await tokens()).toBe(300)
  })

  it('a HEAD answered 404 settles what the route reported', async () => {
    const { options, settled, tokens } = setup()
    const handler = gateFetch((_req, tollgate) => {
      tollgate.report({ inputTokens: 40, outputTokens: 0 })
      return new Response('not found', { status: 404 })
    }, options)
    const done = settled()
    await handler(new Request('http://x/chat', { method: 'HEAD', headers: request().headers }))
    expect(await done).toMatchObject({ outcome: 'settled', usage: { inputTokens: 40, outputTokens: 0 } })
    expect(await tokens()).toBe(40)
  })
})
