/**
 * A local stand-in for the OpenAI API, for the example's tests: `POST /v1/chat/completions`
 * answers a chat completion as JSON, or as server-sent events ending with a usage chunk when the
 * request asks for `stream_options.include_usage`. In `hold` mode a stream stops after its content
 * and stays open until the client goes away. Every request body is recorded.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeUpstream {
  url: string
  /** Bodies of the requests received. */
  requests: Record<string, unknown>[]
  /** Keep streams open after their content until the client disconnects. */
  hold: boolean
  /** Resolves when a held stream's client has gone away. */
  closed(): Promise<void>
  close(): Promise<void>
}

/** The reply's words: 'Hello' ' from' ' upstream'. */
export const WORDS = ['Hello', ' from', ' upstream']
export const USAGE = { prompt_tokens: 21, completion_tokens: 3, total_tokens: 24 }

const chunk = (model: string, delta: object, extra: object = {}) => ({
  id: 'chatcmpl-fake',
  object: 'chat.completion.chunk',
  created: 1,
  model,
  choices: [{ index: 0, delta, finish_reason: null, logprobs: null }],
  ...extra,
})

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const requests: Record<string, unknown>[] = []
  let onClosed: () => void = () => undefined
  const server: Server = createServer(async (req, res) => {
    let text = ''
    for await (const part of req) text += part
    const body = JSON.parse(text || '{}') as Record<string, unknown>
    requests.push(body)
    const model = String(body.model)
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          id: 'chatcmpl-fake',
          object: 'chat.completion',
          created: 1,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: WORDS.join(''), refusal: null },
              finish_reason: 'stop',
              logprobs: null,
            },
          ],
          usage: USAGE,
        }),
      )
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`)
    for (const word of WORDS) send(chunk(model, { content: word }))
    if (upstream.hold) {
      res.once('close', () => onClosed())
      return
    }
    send({ ...chunk(model, {}), choices: [{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }] })
    const options = body.stream_options as { include_usage?: boolean } | undefined
    if (options?.include_usage) send({ ...chunk(model, {}), choices: [], usage: USAGE })
    res.end('data: [DONE]\n\n')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const upstream: FakeUpstream = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    hold: false,
    closed: () => new Promise<void>((resolve) => (onClosed = resolve)),
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
  return upstream
}
