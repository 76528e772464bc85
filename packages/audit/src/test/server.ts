/**
 * A real `node:http` server on a free loopback port that records every request's raw body and
 * headers and answers from a script (status and headers per attempt).
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Received {
  headers: IncomingHttpHeaders
  body: string
}

export interface Answer {
  status: number
  headers?: Record<string, string>
  /** Do not answer at all (the client must time out). */
  hang?: boolean
}

export async function hookServer(answer: (attempt: number, received: Received) => Answer) {
  const received: Received[] = []
  let aborted = 0
  const server = createServer((request, response) => {
    // the client gave up (aborted, timed out) before this request was answered
    response.on('close', () => {
      if (!response.writableFinished) aborted++
    })
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const entry = { headers: request.headers, body: Buffer.concat(chunks).toString('utf8') }
      received.push(entry)
      const reply = answer(received.length, entry)
      if (reply.hang) return
      response.writeHead(reply.status, reply.headers).end('ok')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hooks/tollgate`,
    received,
    /** Requests whose connection the client closed before they were answered. */
    get aborted() {
      return aborted
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}
