/**
 * One chat route behind one policy, on three frameworks. Each app takes its own gate (so that a test
 * can run them side by side) and the same identity; the route reports the usage the request asks
 * for, as an LLM call would report what it used.
 */
import type { Tollgate } from '@tollgate/core'
import { tollgate as expressTollgate } from '@tollgate/express'
import { tollgate as honoTollgate, type TollgateEnv } from '@tollgate/hono'
import { withTollgate } from '@tollgate/next'
import { type Identify, readJson } from '@tollgate/web'
import express, { type Express } from 'express'
import { Hono } from 'hono'

/** What a client sends: the model, the output it allows, and (for the demo) what the call will use. */
export interface ChatBody {
  model?: string
  max_tokens?: number
  use?: { inputTokens: number; outputTokens: number }
}

const estimateOf = (body: ChatBody | undefined) => ({
  inputTokens: 100,
  maxOutputTokens: typeof body?.max_tokens === 'number' ? body.max_tokens : 200,
})
const answer = (model: string) => ({ object: 'chat.completion', model, choices: [] })
/** A body that is not a JSON object is refused before the gate: no quota is spent on it. */
const badBody = { error: { message: 'The body must be a JSON object.', type: 'invalid_request_error' } }
const isObject = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Express: `express.json()`, then the middleware on the route's path. */
export function expressApp(gate: Tollgate, identify: Identify): Express {
  const app = express()
  app.use(express.json({ strict: false }))
  app.post(
    '/v1/chat',
    (req, res, next) => (isObject(req.body) ? next() : res.status(400).json(badBody)),
    expressTollgate({
      gate,
      identify,
      model: (req) => (req.body as ChatBody | undefined)?.model,
      estimate: (req) => estimateOf(req.body as ChatBody | undefined),
    }),
    (req, res) => {
      const body = req.body as ChatBody
      if (body.use) req.tollgate!.report(body.use)
      res.json(answer(req.tollgate!.model))
    },
  )
  // a body express.json() cannot parse
  app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(400).json(badBody)
  })
  return app
}

/** Hono: the middleware on the route, the body read once and cached. */
export function honoApp(gate: Tollgate, identify: Identify) {
  const app = new Hono<TollgateEnv>()
  app.post(
    '/v1/chat',
    async (c, next) => {
      if (!isObject(await c.req.json().catch(() => undefined))) return c.json(badBody, 400)
      await next()
    },
    honoTollgate({
      gate,
      identify,
      // the body is a JSON object here (checked above); Hono caches it for every read
      model: async (c) => ((await c.req.json()) as ChatBody).model,
      estimate: async (c) => estimateOf((await c.req.json()) as ChatBody),
    }),
    async (c) => {
      const body = (await c.req.json()) as ChatBody
      const hold = c.get('tollgate')
      if (body.use) hold.report(body.use)
      return c.json(answer(hold.model))
    },
  )
  return app
}

/** Next.js App Router: the route handler wrapped by `withTollgate` (`export const POST = nextRoute(…)`). */
/** The route context Next.js passes a route handler. */
export type NextContext = { params: Promise<Record<string, string>> }

export function nextRoute(
  gate: Tollgate,
  identify: Identify,
): (req: Request, context: NextContext) => Promise<Response> {
  const route = withTollgate(
    async (req: Request, { tollgate }) => {
      const body = (await req.json()) as ChatBody
      if (body.use) tollgate.report(body.use)
      return Response.json(answer(tollgate.model))
    },
    {
      gate,
      identify,
      model: async (req) => ((await readJson(req)) as ChatBody | undefined)?.model,
      estimate: async (req) => estimateOf((await readJson(req)) as ChatBody | undefined),
    },
  )
  return async (req, context) =>
    isObject(await readJson(req)) ? route(req, context) : Response.json(badBody, { status: 400 })
}
