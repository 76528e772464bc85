/**
 * A TCP proxy in front of the real PostgreSQL that a test can cut (every connection destroyed,
 * the port closed) and restore on the same port: a database outage without touching the database.
 */
import { once } from 'node:events'
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net'

export async function tcpProxy(targetHost: string, targetPort: number) {
  const sockets = new Set<Socket>()
  let port = 0
  let server = createServer()
  const listen = async () => {
    server = createServer((client) => {
      const upstream = createConnection(targetPort, targetHost)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        socket.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream).pipe(client)
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as AddressInfo).port
  }
  await listen()
  return {
    get port() {
      return port
    },
    /** Refuses new connections and breaks every open one. */
    async cut() {
      const closed = once(server, 'close')
      server.close()
      for (const socket of sockets) socket.destroy()
      await closed
    },
    /** Accepts connections again, on the same port. */
    restore: listen,
    async stop() {
      if (server.listening) {
        const closed = once(server, 'close')
        server.close()
        for (const socket of sockets) socket.destroy()
        await closed
      }
    },
  }
}

/** Resolves when `predicate` holds, checked after each call of the returned `notify`. */
export function waitFor<T>(predicate: (items: T[]) => boolean) {
  const items: T[] = []
  let wake: (() => void) | undefined
  const reached = new Promise<void>((resolve) => {
    wake = resolve
  })
  return {
    items,
    push(item: T) {
      items.push(item)
      if (predicate(items)) wake?.()
    },
    reached,
  }
}
