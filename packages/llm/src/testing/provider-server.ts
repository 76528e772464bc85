/**
 * A local HTTP server that speaks the OpenAI and Anthropic wire formats, for tests: JSON
 * replies, server-sent event streams, errors, streams cut mid-way and streams held open until
 * the client goes away. It records every request it receives.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What the server answers to the next request. */
export type Reply =
  | {
      json: unknown
      status?: number
      /** Response headers, e.g. `{ 'retry-after-ms': '250' }` or `{ 'x-should-retry': 'false' }`. */
      headers?: Record<string, string>
    }
  | {
      /** Events to send; a string is sent as-is after `data: `, an object as JSON. */
      events: (unknown | { event: string; data: unknown })[]
      /** Anthropic style: each item is `{ event, data }` and sent with an `event:` line. */
      named?: boolean
      /** Send `data: [DONE]` at the end (OpenAI). @default true unless `named` */
      done?: boolean
      /** After the events: `end` the response, `cut` (destroy the socket), or `hold` it open. */
      after?: 'end' | 'cut' | 'hold'
    }
  | {
      /** A body that never ends: this text is sent as-is (e.g. the start of a JSON reply), then… */
      partial: string
      /** …the socket is destroyed (`cut`), or the response held open until the client goes away (`hold`). */
      after: 'cut' | 'hold'
      /** @default 'application/json' */
      contentType?: string
    }

export interface Received {
  method: string
  path: string
  body: Record<string, unknown>
}

export interface ProviderServer {
  /** Base URL, e.g. `http://127.0.0.1:1234`. */
  url: string
  /** Requests received so far. */
  requests: Received[]
  /** Queue replies for the next requests (default: a 500 when the queue is empty). */
  reply(...replies: Reply[]): void
  /** Resolves when the client of the `index`-th held stream since the last reset (from 0) has gone away. */
  holdClosed(index: number): Promise<void>
  /** Forget the requests, replies and held streams so far (call before each test). */
  reset(): void
  close(): Promise<void>
}

export async function startProviderServer(): Promise<ProviderServer> {
  const requests: Received[] = []
  const queue: Reply[] = []
  let holds: { promise: Promise<void>; resolve: () => void }[] = []
  let held = 0
  let generation = 0
  const hold = (index: number) => {
    while (holds.length <= index) {
      let resolve!: () => void
      const promise = new Promise<void>((r) => {
        resolve = r
      })
      holds.push({ promise, resolve })
    }
    return holds[index]!
  }
  const sockets = new Set<import('node:net').Socket>()

  const server: Server = createServer((req, res) => {
    void handle(req, res)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    let text = ''
    for await (const chunk of req) text += chunk
    requests.push({ method: req.method ?? '', path: req.url ?? '', body: text ? JSON.parse(text) : {} })
    const reply = queue.shift() ?? {
      json: { error: { message: 'no reply queued', type: 'server_error' } },
      status: 500,
    }
    if ('json' in reply) {
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers })
      res.end(JSON.stringify(reply.json))
      return
    }
    const closed = once(res, 'close')
    if ('partial' in reply) {
      res.writeHead(200, { 'content-type': reply.contentType ?? 'application/json' })
      await new Promise<void>((resolve) => res.write(reply.partial, () => resolve()))
      await finish(reply.after, closed)
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    for (const item of reply.events) {
      const frame = reply.named
        ? `event: ${(item as { event: string }).event}\ndata: ${JSON.stringify((item as { data: unknown }).data)}\n\n`
        : `data: ${typeof item === 'string' ? item : JSON.stringify(item)}\n\n`
      await new Promise<void>((resolve) => res.write(frame, () => resolve()))
      if (res.destroyed) return
    }
    const after = reply.after ?? 'end'
    if (after !== 'end') return finish(after, closed)
    if (reply.done ?? !reply.named) res.write('data: [DONE]\n\n')
    res.end()

    /** End a response mid-way: destroy its socket, or wait for the client to go away. */
    async function finish(after: 'cut' | 'hold', closed: Promise<unknown>) {
      if (after === 'cut') {
        res.socket?.destroy()
        return
      }
      const index = held++
      const mine = generation
      await closed
      if (mine === generation) hold(index).resolve()
    }
  }

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply: (...replies) => void queue.push(...replies),
    holdClosed: (index) => hold(index).promise,
    reset() {
      requests.length = 0
      queue.length = 0
      holds = []
      held = 0
      generation++
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}
