import { fakeClock } from '@tollgate/core/testing'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { createApp } from './app.js'
import { fakeModel } from './model.js'

const jwtSecret = 'example-secret-0123456789-0123456789'

function setup() {
  const clock = fakeClock()
  const { app, gate } = createApp({ jwtSecret, model: fakeModel('one two three four'), gate: { clock } })
  const token = (sub: string, aud = 'chat') =>
    new SignJWT({ sub, aud })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(clock.now() / 1000) + 3600)
      .sign(new TextEncoder().encode(jwtSecret))
  const chat = async (jwt: string | null, body: object) =>
    app.request('/api/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
      body: JSON.stringify(body),
    })
  const tokens = async (user: string) =>
    (await gate.usage({ subject: { user } })).find((s) => s.rule === 'user-daily-tokens')!
  return { clock, chat, token, tokens }
}

describe('examples/hono: a chat route with quotas', () => {
  it('answers a user with a valid token and settles what the model used', async () => {
    const { chat, token, tokens } = setup()
    const response = await chat(await token('alice'), { prompt: 'hello there' })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ model: 'gpt-4o-mini', reply: 'one two three four' })
    expect(response.headers.get('x-ratelimit-remaining-tokens')).not.toBeNull()
    // fake model: input = 2 words + 7, output = 4 words
    expect(await tokens('alice')).toMatchObject({ used: 13, held: 0 })
  })

  it('streams, settling when the stream ends', async () => {
    const { chat, token, tokens } = setup()
    const response = await chat(await token('bob'), { prompt: 'stream please', stream: true })
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const text = await response.text()
    expect(text).toContain('"delta":" four"')
    await expect.poll(async () => (await tokens('bob')).held).toBe(0)
    expect((await tokens('bob')).used).toBe(13)
  })

  it('refuses requests without a valid token for this audience', async () => {
    const { chat, token } = setup()
    expect((await chat(null, { prompt: 'hi' })).status).toBe(401)
    expect((await chat(await token('eve', 'admin'), { prompt: 'hi' })).status).toBe(401)
  })

  it('refuses a request past the daily allowance with 429, which does not ask for a retry', async () => {
    const { chat, token, clock } = setup()
    const jwt = await token('carol')
    const first = await chat(jwt, { prompt: 'x', max_tokens: 1500 })
    expect(first.status).toBe(200)
    await first.text()
    const second = await chat(jwt, { prompt: 'y'.repeat(100), max_tokens: 1895 })
    expect(second.status).toBe(429)
    expect(second.headers.get('x-should-retry')).toBe('false')
    expect(await second.json()).toMatchObject({
      error: { code: 'quota_exceeded', type: 'insufficient_quota', rule: 'user-daily-tokens' },
    })
    clock.advance('1d') // a new day
    expect((await chat(await token('carol'), { prompt: 'y'.repeat(100), max_tokens: 1895 })).status).toBe(200)
  })
})
