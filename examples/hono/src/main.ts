/** Runs the example on `PORT` (default 8788); `JWT_SECRET` is shared with whatever signs the users' tokens. */
import { serve } from '@hono/node-server'
import { SignJWT } from 'jose'
import { createApp } from './app.js'
import { fakeModel } from './model.js'

const jwtSecret = process.env.JWT_SECRET ?? 'dev-only-secret-change-me-0123456789'
const { app } = createApp({ jwtSecret, model: fakeModel() })
const port = Number(process.env.PORT ?? 8788)
serve({ fetch: app.fetch, port }, async () => {
  const token = await new SignJWT({ sub: 'user-1', aud: 'chat' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(jwtSecret))
  console.log(`curl -s localhost:${port}/api/chat -H 'authorization: Bearer ${token}' -d '{"prompt":"hi"}'`)
})
