/**
 * A Hono chat route with quotas. Users arrive with a JWT from the auth service (verified with
 * `signedIdentity`); each user has a request rate and a daily token allowance. `POST /api/chat`
 * answers JSON, or server-sent events with `"stream": true`.
 */
import { createTollgate, definePolicy, type TollgateOptions } from '@tollgate/core'
import { type TollgateEnv, tollgate } from '@tollgate/hono'
import { signedIdentity } from '@tollgate/web'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import type { ChatModel } from './model.js'

export const policy = definePolicy({
  rules: [
    { id: 'user-rpm', per: 'user', limits: { requests: 20 }, window: '60s' },
    { id: 'user-daily-tokens', per: 'user', limits: { tokens: 2_000 }, window: 'day' },
  ],
})

export interface AppOptions {
  /** Secret shared with the auth service that signs the JWTs (HS256). */
  jwtSecret: string
  model: ChatModel
  /** Clock and store of the gate (tests pass a fake clock). */
  gate?: Omit<TollgateOptions, 'policy'>
}

interface ChatRequest {
  prompt?: string
  stream?: boolean
  max_tokens?: number
}

export function createApp(options: AppOptions) {
  const gate = createTollgate({ policy, ...options.gate })
  const app = new Hono<TollgateEnv>()
  app.post(
    '/api/chat',
    tollgate({
      gate,
      identify: signedIdentity({
        jwt: { secret: options.jwtSecret, audience: 'chat' },
        clock: options.gate?.clock,
      }),
      model: 'gpt-4o-mini',
      feature: 'chat',
      // Hono caches the parsed body: the route reads it again for free
      estimate: async (c) => {
        const body = (await c.req.json()) as ChatRequest
        return { inputTokens: (body.prompt ?? '').length, maxOutputTokens: body.max_tokens ?? 256 }
      },
    }),
    async (c) => {
      const hold = c.get('tollgate')
      const body = (await c.req.json()) as ChatRequest
      const { text, usage } = options.model.stream(hold.model, body.prompt ?? '', hold.signal)
      if (!body.stream) {
        let reply = ''
        for await (const part of text) reply += part
        await hold.settle(await usage)
        return c.json({ model: hold.model, reply })
      }
      return streamSSE(c, async (sse) => {
        for await (const part of text) await sse.writeSSE({ data: JSON.stringify({ delta: part }) })
        hold.report(await usage) // settled when the body ends
        await sse.writeSSE({ data: '[DONE]' })
      })
    },
  )
  return { app, gate }
}
