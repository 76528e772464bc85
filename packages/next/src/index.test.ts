import { checkRateLimitHeaders } from '@tollgate/core/testing'
import { apiKeyIdentity, memoryKeyRegistry, readJson, type SettleEvent, sseMeter } from '@tollgate/web'
import { NextRequest } from 'next/server.js'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { charMeter, testGate, used } from '../../web/src/test/fixtures.js'
import { type RouteContext, withTollgate } from './index.js'

const subject = { tenant: 't1', user: 'u1' }
const encoder = new TextEncoder()

async function setup() {
  const { gate, records } = testGate()
  const keys = memoryKeyRegistry()
  const { key, keyId } = await keys.issue({ subject, features: ['chat'] })
  const waiters: ((e: SettleEvent) => void)[] = []
  const settled = () => new Promise<SettleEvent>((resolve) => waiters.push(resolve))
  const options = {
    gate,
    identify: apiKeyIdentity(keys),
    feature: 'chat',
    model: async (req: NextRequest) => ((await readJson(req)) as { model?: string } | undefined)?.model,
    estimate: { inputTokens: 100, maxOutputTokens: 200 },
    meter: () => sseMeter(charMeter()),
    onSettle: (e: SettleEvent) => {
      for (const w of waiters.splice(0)) w(e)
    },
  }
  const request = (auth: string | null = key) =>
    new NextRequest('http://localhost/api/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    })
  const tokens = () => used(gate, subject, 'user-daily', 'tokens')
  return { gate, records, keys, key, keyId, options, request, settled, tokens }
}

const context: RouteContext<{ id: string }> = { params: Promise.resolve({ id: 'c1' }) }

describe('@tollgate/next: withTollgate on an App Router route handler', () => {
  it('passes the hold and the route params; settles the reported usage; headers are valid', async () => {
    const { options, request, settled, tokens, records } = await setup()
    const POST = withTollgate<NextRequest, RouteContext<{ id: string }>>(
      async (req, { params, tollgate }) => {
        expectTypeOf(req).toEqualTypeOf<NextRequest>()
        const body = (await req.json()) as { messages: unknown[] }
        tollgate.report({ inputTokens: 50, outputTokens: 25 })
        return Response.json({ id: (await params).id, model: tollgate.model, messages: body.messages.length })
      },
      options,
    )
    const done = settled()
    const response = await POST(request(), context)
    expect(response.status).toBe(200)
    checkRateLimitHeaders(response.headers)
    expect(await response.json()).toEqual({ id: 'c1', model: 'gpt-4o-mini', messages: 1 })
    expect(await done).toMatchObject({ outcome: 'settled', usage: { inputTokens: 50, outputTokens: 25 } })
    expect(await tokens()).toBe(75)
    expect(records).toMatchObject([{ event: 'settle', estimated: false }]) // reported
  })

  it('refuses without calling the handler: no key (401), revoked key (403), rate limit (429)', async () => {
    const { options, request, keys, keyId } = await setup()
    let calls = 0
    const POST = withTollgate(() => {
      calls++
      return new Response('ok')
    }, options)
    expect((await POST(request(null), context)).status).toBe(401)
    for (let i = 0; i < 3; i++) await (await POST(request(), context)).text()
    const limited = await POST(request(), context)
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/)
    await keys.revoke(keyId)
    const revoked = await POST(request(), context)
    expect(revoked.status).toBe(403)
    expect(await revoked.json()).toMatchObject({ error: { code: 'key_revoked' } })
    expect(calls).toBe(3)
  })

  it('flags as estimated a streamed body settled from its counted text (read to the end)', async () => {
    // the settle record said `estimated: false`: audit's spend_estimated query missed it
    const { options, request, settled, tokens, records } = await setup()
    const POST = withTollgate(
      () =>
        new Response(`data: ${JSON.stringify({ delta: 'no usage' })}\n\ndata: [DONE]\n\n`, {
          headers: { 'content-type': 'text/event-stream' },
        }),
      options,
    )
    const done = settled()
    expect(await (await POST(request(), context)).text()).toContain('no usage')
    expect(await done).toMatchObject({ reason: 'complete', usage: { outputTokens: 8, estimated: true } })
    expect(records).toMatchObject([{ event: 'settle', estimated: true }])
    expect(await tokens()).toBe(108)
  })

  it('settles a streamed body from what was sent when the client goes away', async () => {
    const { options, request, settled, tokens, records } = await setup()
    const POST = withTollgate(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(encoder.encode(`data: ${JSON.stringify({ delta: 'streamed' })}\n\n`))
            }, // then stays open
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
      options,
    )
    const response = await POST(request(), context)
    const reader = response.body!.getReader()
    await reader.read()
    const done = settled()
    await reader.cancel()
    expect(await done).toMatchObject({ reason: 'aborted', usage: { outputTokens: 8 } })
    expect(records).toMatchObject([{ event: 'settle', estimated: true }])
    expect(await tokens()).toBe(108)
  })

  it('closes the hold of a HEAD request at once: settled at the estimate below 400, else released', async () => {
    // Next runs the GET handler for HEAD and sends no body: left tapped, nobody read it, and the
    // hold waited for its TTL
    const { options, settled, tokens, records, key } = await setup()
    const GET = withTollgate(
      (req) =>
        req.nextUrl.searchParams.get('missing')
          ? Response.json({ error: 'no such document' }, { status: 404 })
          : Response.json({ model: 'gpt-4o-mini' }),
      { ...options, model: 'gpt-4o-mini' },
    )
    const head = (query = '') =>
      new NextRequest(`http://localhost/api/doc${query}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${key}` },
      })
    let done = settled()
    const response = await GET(head(), context)
    expect(response.status).toBe(200)
    expect(response.body).toBeNull()
    checkRateLimitHeaders(response.headers)
    expect(await done).toMatchObject({ outcome: 'settled', reason: 'complete', usage: { estimated: true } })
    expect(await tokens()).toBe(300) // the handler ran: the estimate, never zero
    expect(records).toMatchObject([{ event: 'settle', estimated: true }])
    done = settled()
    const missing = await GET(head('?missing=1'), context)
    expect(missing.status).toBe(404)
    expect(missing.body).toBeNull()
    expect(await done).toMatchObject({ outcome: 'released' })
    expect(await tokens()).toBe(300)
  })

  it('releases when the handler throws', async () => {
    const { options, request, settled, tokens } = await setup()
    const POST = withTollgate(() => {
      throw new Error('handler failed')
    }, options)
    const done = settled()
    await expect(POST(request(), context)).rejects.toThrow('handler failed')
    expect(await done).toMatchObject({ outcome: 'released', reason: 'failed' })
    expect(await tokens()).toBe(0)
  })
})

describe('options', () => {
  it('a gate or identify that cannot work is refused when it is made, not on every request', () => {
    for (const options of [
      { gate: undefined, identify: () => null },
      { gate: { reserve: () => null }, identify: 'key' },
    ])
      expect(() => withTollgate(() => new Response('ok'), options as never)).toThrow(
        /^withTollgate: (gate|identify) must be/,
      )
  })

  it('a route handler that is no function is refused when it is made (each request held, then failed)', async () => {
    const { options } = await setup()
    for (const handler of [undefined, 'POST', {}])
      expect(() => withTollgate(handler as never, options)).toThrow(
        /^withTollgate: the route handler must be a function/,
      )
  })
})
