/**
 * `toNodeListener` in a real `node:http` server: sequential store calls share one kept-alive
 * connection (also after a refusal), a handler that throws is answered 500 with no details, and
 * what a fetch Request cannot hold never reaches it.
 */

import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { memoryStore } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { httpStore } from './client.js'
import { storeHandler } from './handler.js'
import { toNodeListener } from './node.js'
import { SECRET } from './test/server.js'

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
})

async function serve(handler: (request: Request) => Promise<Response>) {
  server = createServer(toNodeListener(handler))
  let connections = 0
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections }
}

describe('toNodeListener', () => {
  it('keeps the connection alive across store calls, refusals included', async () => {
    const { url, connections } = await serve(
      storeHandler(memoryStore({ clock: fakeClock() }), { secret: SECRET }),
    )
    const store = httpStore({ url, secret: SECRET })
    for (let i = 0; i < 20; i++) await store.setOverride(`k${i}`, i)
    await expect(store.lookup('\uD800'.repeat(600_000))).rejects.toMatchObject({
      code: 'store_error', // a body too large is no outage
      cause: { status: 413 },
    })
    await expect(store.read([{ bad: true } as never])).rejects.toMatchObject({ status: 400 })
    for (let i = 0; i < 5; i++) await store.blocked(['m'])
    expect(connections()).toBeLessThanOrEqual(2) // the 413 closes its connection (its body is left unread)
  })

  it('answers 400 to a target no URL can hold and 405 to TRACE, without calling the handler (they were 500s)', async () => {
    let calls = 0
    const { url } = await serve(async () => {
      calls++
      return new Response('ok')
    })
    const raw = async (head: string) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1')
      let answer = ''
      socket.on('data', (chunk) => {
        answer += chunk
      })
      socket.end(`${head}\r\nhost: localhost\r\nconnection: close\r\n\r\n`)
      await once(socket, 'close')
      return answer
    }
    expect(await raw('POST http://localhost:99999/reserve HTTP/1.1')).toMatch(/^HTTP\/1\.1 400 /)
    expect(await raw('TRACE /reserve HTTP/1.1')).toMatch(/^HTTP\/1\.1 405 /)
    expect(calls).toBe(0)
    expect(await raw('GET /reserve HTTP/1.1')).toMatch(/^HTTP\/1\.1 200 /)
  })

  it('answers 500 without details when the handler throws', async () => {
    const { url } = await serve(async () => {
      throw new Error('secret internals')
    })
    const response = await fetch(url, { method: 'POST', body: '{}' })
    expect(response.status).toBe(500)
    expect(await response.text()).toBe('')
  })
})
