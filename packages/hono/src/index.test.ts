import { checkRateLimitHeaders } from '@tollgate/core/testing'
import { type SettleEvent, signedIdentity, sseMeter } from '@tollgate/web'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { SignJWT } from 'jose'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { charMeter, testGate, used } from '../../web/src/test/fixtures.js'
import { type TollgateEnv, tollgate } from './index.js'

const secret = 'hono-test-secret-of-32-bytes-or-more!'

/** Waits for `condition`, turn by turn of the event loop (no timer). */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 10_000 && !condition(); turn++) await new Promise((r) => setImmediate(r))
  if (!condition()) throw new Error('the condition never held')
}
const subject = { user: 'u1', tenant: 't1' }

/**
 * A Hono app whose `prefix/*` routes are behind the gate of `setup()`, with an error handler that
 * records the errors Hono hands it and answers 500.
 */
function gatedApp(prefix: string, { gate, clock }: ReturnType<typeof setup>) {
  const events: SettleEvent[] = []
  const handled: Error[] = []
  const app = new Hono<TollgateEnv>()
  app.onError((error, c) => {
    handled.push(error)
    return c.json({ error: { message: error.message, type: 'server_error' } }, 500)
  })
  app.use(
    `${prefix}/*`,
    tollgate({
      gate,
      identify: signedIdentity({ jwt: { secret }, clock }),
      model: () => 'gpt-4o-mini',
      estimate: { inputTokens: 100, maxOutputTokens: 200 },
      onSettle: (e) => events.push(e),
    }),
  )
  return { app, events, handled }
}

function setup() {
  const { gate, clock, records } = testGate()
  const waiters: ((e: SettleEvent) => void)[] = []
  const settled = () => new Promise<SettleEvent>((resolve) => waiters.push(resolve))
  const app = new Hono<TollgateEnv>()
  app.use(
    '/v1/*',
    tollgate({
      gate,
      identify: signedIdentity({ jwt: { secret }, clock }),
      model: async (c) => ((await c.req.json()) as { model?: string }).model,
      estimate: { inputTokens: 100, maxOutputTokens: 200 },
      meter: () => sseMeter(charMeter()),
      onSettle: (e) => {
        for (const w of waiters.splice(0)) w(e)
      },
    }),
  )
  app.post('/v1/chat', async (c) => {
    const tollgate = c.get('tollgate')
    expectTypeOf(tollgate.model).toEqualTypeOf<string>()
    const body = await c.req.json() // the middleware's read is cached: the route can read again
    tollgate.report({ inputTokens: 60, outputTokens: 15 })
    return c.json({ model: tollgate.model, echo: body.model })
  })
  app.post('/v1/stream', (c) =>
    streamSSE(c, async (stream) => {
      await stream.writeSSE({ data: JSON.stringify({ delta: 'abc' }) })
      await stream.writeSSE({ data: JSON.stringify({ delta: 'defg' }) })
      if (c.req.query('hold')) await new Promise<void>((resolve) => stream.onAbort(resolve))
      if (c.req.query('usage'))
        await stream.writeSSE({ data: JSON.stringify({ usage: { inputTokens: 80, outputTokens: 7 } }) })
    }),
  )
  app.onError((error, c) => c.json({ error: { message: error.message, type: 'server_error' } }, 500))
  app.post('/v1/boom', () => {
    throw new Error('route failed')
  })
  const token = (claims = subject) =>
    new SignJWT({ sub: claims.user, tenant: claims.tenant })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(clock.now() / 1000) + 60)
      .sign(new TextEncoder().encode(secret))
  const post = async (path: string, auth?: string) =>
    app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      body: JSON.stringify({ model: 'gpt-4o-mini' }),
    })
  const tokens = () => used(gate, subject, 'user-daily', 'tokens')
  return { app, gate, clock, records, post, token, settled, tokens }
}

describe('@tollgate/hono with app.request', () => {
  it('refuses missing and tampered tokens with 401, and expired ones (fake clock)', async () => {
    const { post, token, clock, tokens } = setup()
    expect((await post('/v1/chat')).status).toBe(401)
    const good = await token()
    const [h, , s] = good.split('.')
    const forged = Buffer.from(JSON.stringify({ sub: 'admin', tenant: 't1', exp: 9e9 })).toString('base64url')
    const tampered = await post('/v1/chat', `${h}.${forged}.${s}`)
    expect(tampered.status).toBe(401)
    expect(await tampered.json()).toMatchObject({
      error: { type: 'authentication_error', code: 'unauthenticated' },
    })
    clock.advance('2m')
    const expired = await post('/v1/chat', good)
    expect(expired.status).toBe(401)
    expect(await expired.json()).toMatchObject({ error: { message: 'The identity token has expired.' } })
    expect(await tokens()).toBe(0)
  })

  it('exposes c.get("tollgate"), adds valid headers and settles the reported usage', async () => {
    const { post, token, settled, tokens } = setup()
    const done = settled()
    const response = await post('/v1/chat', await token())
    expect(response.status).toBe(200)
    checkRateLimitHeaders(response.headers)
    expect(await response.json()).toEqual({ model: 'gpt-4o-mini', echo: 'gpt-4o-mini' })
    expect(await done).toMatchObject({ reason: 'complete', usage: { inputTokens: 60, outputTokens: 15 } })
    expect(await tokens()).toBe(75)
  })

  it('answers 429 with retry headers after the rate limit', async () => {
    const { post, token } = setup()
    const jwt = await token()
    for (let i = 0; i < 3; i++) expect((await post('/v1/chat', jwt)).status).toBe(200)
    const response = await post('/v1/chat', jwt)
    expect(response.status).toBe(429)
    expect(response.headers.get('retry-after-ms')).toMatch(/^[1-9]\d*$/)
    expect(response.headers.get('x-should-retry')).toBe('true')
    checkRateLimitHeaders(response.headers)
  })

  it('settles a streamed response when it ends, and from what was sent when the client cancels', async () => {
    const { post, token, settled, tokens, records } = setup()
    let done = settled()
    const full = await post('/v1/stream', await token())
    expect(full.headers.get('ratelimit')).not.toBeNull()
    expect(await full.text()).toContain('defg')
    expect(await done).toMatchObject({ reason: 'complete', usage: { outputTokens: 7, estimated: true } })
    expect(await tokens()).toBe(107)
    // counted from the text, not reported: flagged in the settle record (it said `estimated: false`)
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: true })

    done = settled()
    const held = await post('/v1/stream?hold=1', await token())
    const reader = held.body!.getReader()
    let text = ''
    while (!text.includes('defg')) text += new TextDecoder().decode((await reader.read()).value)
    await reader.cancel()
    expect(await done).toMatchObject({ reason: 'aborted', usage: { outputTokens: 7 } })
    expect(await tokens()).toBe(214)
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: true })

    done = settled()
    await (await post('/v1/stream?usage=1', await token())).text()
    expect(await done).toMatchObject({ reason: 'complete', usage: { inputTokens: 80, outputTokens: 7 } })
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: false }) // the stream's usage
  })

  it('closes the hold of a HEAD request to a GET route at once (Hono sends no body for it)', async () => {
    // the tapped body was never read: no settle came, and the hold stayed until its TTL
    const { gate, clock, records, token, tokens } = setup()
    const app = new Hono<TollgateEnv>()
    app.use(
      '/g/*',
      tollgate({
        gate,
        identify: signedIdentity({ jwt: { secret }, clock }),
        model: () => 'gpt-4o-mini',
        estimate: { inputTokens: 100, maxOutputTokens: 200 },
        onSettle: (e) => events.push(e),
      }),
    )
    const events: SettleEvent[] = []
    app.get('/g/doc', (c) => c.text('a document'))
    app.get('/g/missing', (c) => c.text('no such document', 404))
    const auth = { authorization: `Bearer ${await token()}` }
    const head = await app.request('/g/doc', { method: 'HEAD', headers: auth })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
    await until(() => events.length === 1)
    expect(events[0]).toMatchObject({ outcome: 'settled', reason: 'complete', usage: {} })
    expect(await tokens()).toBe(300) // the route ran: the estimate, never zero
    expect(records.at(-1)).toMatchObject({ event: 'settle', estimated: true })
    await app.request('/g/missing', { method: 'HEAD', headers: auth })
    await until(() => events.length === 2)
    expect(events[1]).toMatchObject({ outcome: 'released' })
  })

  it('a route that forgets `return` gets Hono’s own error (500), as behind any middleware, and its hold is closed as failed', async () => {
    // the middleware set `c.res` from Hono's empty placeholder: the client got `200 ""`
    const context = setup()
    const { token, tokens } = context
    const { app, events, handled: errors } = gatedApp('/n', context)
    app.use('/plain/*', async (_c, next) => {
      await next() // any middleware: Hono reports the forgotten `return` itself
    })
    for (const path of ['/n/forgot', '/plain/forgot'])
      app.post(path, async (c) => {
        c.get('tollgate')?.report({ inputTokens: 40, outputTokens: 5 })
        c.json({ reply: 'hi' }) // no `return`
      })
    const auth = { authorization: `Bearer ${await token()}` }
    const plain = await app.request('/plain/forgot', { method: 'POST', headers: auth })
    const gated = await app.request('/n/forgot', { method: 'POST', headers: auth })
    expect([plain.status, gated.status]).toEqual([500, 500])
    expect(await gated.json()).toEqual(await plain.json())
    expect(errors.map((e) => e.message)).toEqual(Array(2).fill(expect.stringMatching(/forget to return/)))
    await until(() => events.length === 1)
    // the route ran: what it reported is settled, the rest released (as for a route that throws)
    expect(events[0]).toMatchObject({
      outcome: 'settled',
      reason: 'failed',
      usage: { inputTokens: 40, outputTokens: 5 },
    })
    expect(await tokens()).toBe(45)
  })

  it('closes the hold as failed when the route throws no Error (Hono rethrows it past app.onError)', async () => {
    // Hono hands only `Error`s to onError: anything else comes out of `next()` and out of the app
    const context = setup()
    const { token, tokens } = context
    const { app, events, handled } = gatedApp('/x', context)
    app.post('/x/refused', () => {
      throw 'the provider refused' // a rejection with a string, as some clients do
    })
    app.post('/x/partial', (c) => {
      c.get('tollgate').report({ inputTokens: 40, outputTokens: 5 })
      throw { code: 'stream_cut' }
    })
    const auth = { authorization: `Bearer ${await token()}` }
    await expect(app.request('/x/refused', { method: 'POST', headers: auth })).rejects.toBe(
      'the provider refused',
    )
    await until(() => events.length === 1)
    expect(events[0]).toMatchObject({ outcome: 'released', reason: 'failed' })
    expect(await tokens()).toBe(0)
    await expect(app.request('/x/partial', { method: 'POST', headers: auth })).rejects.toEqual({
      code: 'stream_cut',
    })
    await until(() => events.length === 2)
    // the route ran: what it reported is settled, the rest released
    expect(events[1]).toMatchObject({
      outcome: 'settled',
      reason: 'failed',
      usage: { inputTokens: 40, outputTokens: 5 },
    })
    expect(await tokens()).toBe(45)
    expect(handled).toEqual([])
  })

  it('releases when the route throws', async () => {
    const { post, token, settled, tokens } = setup()
    const done = settled()
    const response = await post('/v1/boom', await token())
    expect(response.status).toBe(500)
    expect(response.headers.get('ratelimit')).not.toBeNull()
    expect(await done).toMatchObject({ outcome: 'released' })
    expect(await tokens()).toBe(0)
  })
})

describe('options', () => {
  it('a gate or identify that cannot work is refused when it is made, not on every request', () => {
    for (const options of [
      { gate: undefined, identify: () => null },
      { gate: { reserve: () => null }, identify: 'key' },
    ])
      expect(() => tollgate(options as never)).toThrow(/^tollgate: (gate|identify) must be/)
  })
})
