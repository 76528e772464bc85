/**
 * An OpenAI-compatible proxy: `POST /v1/chat/completions`, streamed or not. Each request is
 * identified by its API key (`Authorization: Bearer <key>`, looked up in a key registry), checked
 * against the policy with an estimate of its tokens, forwarded to the upstream with the decided
 * model, and settled from the upstream's usage — or, for a stream the client abandons, from what
 * was streamed. `GET /v1/usage` answers the caller's own usage (per key and tenant) for a dashboard.
 */
import type { Tollgate } from '@tollgate/core'
import { tollgate, usageRoute } from '@tollgate/express'
import { chatCompletionMeter, encodingForModel, estimateChatCompletion, openAIUsage } from '@tollgate/llm'
import { apiKeyIdentity, type KeyRegistry, type SettleEvent, sseMeter } from '@tollgate/web'
import express, {
  type Express,
  type Response as ExpressResponse,
  type NextFunction,
  type Request,
} from 'express'

export interface ProxyOptions {
  gate: Tollgate
  keys: Pick<KeyRegistry, 'verify'>
  /** Base URL of the OpenAI-compatible upstream, e.g. `https://api.openai.com`. */
  upstreamUrl: string
  /** The upstream's API key (the clients' keys are never forwarded). */
  upstreamKey?: string
  onSettle?: (event: SettleEvent) => void
}

interface ChatBody {
  model?: unknown
  stream?: unknown
  stream_options?: Record<string, unknown>
}

const openAIError = (message: string, type: string) => ({ error: { message, type, code: null, param: null } })

export function createProxy(options: ProxyOptions): Express {
  const app = express()
  const identify = apiKeyIdentity(options.keys)
  // what the caller's key has used and has left; `all`: other methods get a JSON 405, not a 404
  app.all('/v1/usage', usageRoute(options.gate, { identify }))
  app.post(
    '/v1/chat/completions',
    express.json({ limit: '4mb' }),
    tollgate({
      gate: options.gate,
      identify,
      feature: 'chat',
      model: (req) => (typeof req.body?.model === 'string' ? req.body.model : undefined),
      estimate: (req) => {
        const { inputTokens, maxOutputTokens } = estimateChatCompletion(req.body ?? {})
        return { inputTokens, maxOutputTokens }
      },
      // a stream cut short is settled from the text streamed so far (input keeps its estimate)
      meter: (req) =>
        req.body?.stream === true
          ? sseMeter(chatCompletionMeter(encodingForModel(String(req.body.model))))
          : undefined,
      onSettle: options.onSettle,
    }),
    async (req, res) => {
      const hold = req.tollgate!
      const body = req.body as ChatBody
      // the decided model (a downgrade is never silent: it is in the decision and the audit record)
      const forward: ChatBody = { ...body, model: hold.model }
      // ask for usage, so that streams settle from real numbers (the usage chunk reaches the client too)
      if (body.stream === true) forward.stream_options = { ...body.stream_options, include_usage: true }
      let upstream: Response
      try {
        upstream = await fetch(`${options.upstreamUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(options.upstreamKey ? { authorization: `Bearer ${options.upstreamKey}` } : {}),
          },
          body: JSON.stringify(forward),
          signal: hold.signal, // the client went away: stop the upstream call
        })
      } catch {
        res.status(502).json(openAIError('The upstream could not be reached.', 'server_error'))
        return
      }
      res.status(upstream.status)
      res.setHeader('content-type', upstream.headers.get('content-type') ?? 'application/json')
      if (body.stream !== true || !upstream.ok || !upstream.body) {
        const json = (await upstream.json().catch(() => null)) as { usage?: unknown } | null
        const usage = openAIUsage(json?.usage)
        if (usage && upstream.ok) hold.report(usage.usage)
        res.end(JSON.stringify(json ?? openAIError('The upstream answered no JSON.', 'server_error')))
        return
      }
      res.setHeader('cache-control', 'no-cache')
      try {
        for await (const chunk of upstream.body) res.write(chunk)
        res.end()
      } catch {
        res.destroy() // the upstream broke or the client left: the hold settles from what was sent
      }
    },
  )
  // a body that is no JSON (or too large) is answered as OpenAI answers it, not with Express's HTML page
  app.use((error: unknown, _req: Request, res: ExpressResponse, next: NextFunction) => {
    if (res.headersSent) return next(error)
    const type = (error as { type?: unknown } | null)?.type
    if (type === 'entity.parse.failed')
      return void res
        .status(400)
        .json(openAIError('The request body is not valid JSON.', 'invalid_request_error'))
    if (type === 'entity.too.large')
      return void res.status(413).json(openAIError('The request body is too large.', 'invalid_request_error'))
    res.status(500).json(openAIError('The proxy failed.', 'server_error'))
  })
  return app
}
