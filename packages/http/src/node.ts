/**
 * `@tollgate/http/node`: mount a web `(Request) => Response` handler (such as `storeHandler`) in a
 * plain `node:http` (or `node:https`) server. The request body is streamed, so a handler that stops
 * reading (413) never buffers the rest: it is drained and dropped, and the connection is closed after
 * the answer.
 *
 * @example
 * import { createServer } from 'node:http'
 * import { storeHandler } from '@tollgate/http'
 * import { toNodeListener } from '@tollgate/http/node'
 *
 * createServer(toNodeListener(storeHandler(store, { secret }))).listen(8787)
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** A `node:http` request listener. */
export type NodeListener = (request: IncomingMessage, response: ServerResponse) => void

/** The request body as a web stream that pulls from the socket only as the handler reads. */
function bodyOf(req: IncomingMessage): ReadableStream<Uint8Array> {
  let cancelled = false
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.pause()
      req.on('data', (chunk: Uint8Array) => {
        if (cancelled) return
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        if ((controller.desiredSize ?? 0) <= 0) req.pause()
      })
      req.on('end', () => {
        if (!cancelled) controller.close()
      })
      req.on('error', (error) => {
        if (!cancelled) controller.error(error)
      })
    },
    pull() {
      req.resume()
    },
    cancel() {
      cancelled = true
      req.resume() // drain and drop the rest, so the answer is not lost to a connection reset
    },
  })
}

function toRequest(req: IncomingMessage): Request {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item)
  }
  const method = req.method ?? 'GET'
  const hasBody = method !== 'GET' && method !== 'HEAD'
  return new Request(url, {
    method,
    headers,
    ...(hasBody ? { body: bodyOf(req), duplex: 'half' } : {}),
  } as RequestInit)
}

async function serve(
  handler: (request: Request) => Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // What Node accepts but a fetch Request cannot hold is answered here, without details: a target
  // no URL can hold (`POST http://host:99999/x`) and the methods fetch refuses (they threw: a 500)
  const refused = !URL.canParse(req.url ?? '/', 'http://localhost')
    ? 400
    : /^(CONNECT|TRACE|TRACK)$/i.test(req.method ?? '')
      ? 405
      : 0
  if (refused) {
    res.statusCode = refused
    res.setHeader('connection', 'close')
    res.end()
    return
  }
  try {
    const response = await handler(toRequest(req))
    const body = new Uint8Array(await response.arrayBuffer())
    res.statusCode = response.status
    response.headers.forEach((value, name) => {
      res.setHeader(name, value)
    })
    if (!req.complete) res.setHeader('connection', 'close') // the rest of the body is never read
    res.end(body)
  } catch {
    if (res.headersSent) res.destroy()
    else {
      res.statusCode = 500
      res.setHeader('connection', 'close')
      res.end()
    }
  }
}

/**
 * A `node:http` listener serving `handler`. Answers 500 (with no details) should the handler throw,
 * 400 to a request target no URL can hold and 405 to the methods fetch refuses (CONNECT, TRACE, TRACK).
 *
 * @example
 * createServer(toNodeListener(storeHandler(redisStore({ client }), { secret }))).listen(8787)
 */
export function toNodeListener(handler: (request: Request) => Promise<Response>): NodeListener {
  return (req, res) => {
    void serve(handler, req, res)
  }
}
