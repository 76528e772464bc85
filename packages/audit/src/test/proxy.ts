/**
 * A TCP proxy in front of the real PostgreSQL that a test can cut (every connection destroyed,
 * the port closed) and restore on the same port: a database outage without touching the database.
 * It can also freeze: a network partition, where nothing is closed but nothing gets through.
 */
import { once } from 'node:events'
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net'

export async function tcpProxy(targetHost: string, targetPort: number) {
  const sockets = new Set<Socket>()
  /** Client sockets (the side the code under test opened) that it has neither ended nor closed. */
  const clients = new Set<Socket>()
  const frozen = new Set<Socket>()
  let blackhole = false
  let port = 0
  let server = createServer()
  const listen = async () => {
    // half-open allowed: a frozen connection must not answer a FIN with one of its own
    server = createServer({ allowHalfOpen: true }, (client) => {
      const upstream = createConnection({ port: targetPort, host: targetHost, allowHalfOpen: true })
      clients.add(client)
      if (blackhole) frozen.add(client)
      const gone = () => clients.delete(client)
      client.on('end', gone)
      client.on('close', gone)
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        sockets.add(from)
        from.on('close', () => sockets.delete(from))
        from.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
        // while frozen, bytes and FINs vanish: neither side learns anything
        from.on('data', (chunk: Buffer) => {
          if (!frozen.has(client)) to.write(chunk)
        })
        from.on('end', () => {
          if (!frozen.has(client)) to.end()
        })
      }
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
    /** How many connections the client side still holds open (has not ended or closed). */
    get open() {
      return clients.size
    },
    /** Resolves once the client side holds no connection open (within `ms`, else rejects). */
    async closedByClient(ms: number) {
      const started = Date.now()
      while (clients.size > 0) {
        if (Date.now() - started > ms)
          throw new Error(`${clients.size} connections still open after ${ms} ms`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
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
    /**
     * A partition: every open connection stops forwarding for good, silently (nothing is closed,
     * no FIN or RST gets through), and new connections are accepted but get no answer.
     */
    freeze() {
      blackhole = true
      for (const client of clients) frozen.add(client)
    },
    /** New connections work again; the ones frozen stay frozen (their streams lost bytes). */
    thaw() {
      blackhole = false
    },
    async stop() {
      if (server.listening) {
        const closed = once(server, 'close')
        server.close()
        for (const socket of sockets) socket.destroy()
        await closed
      } else for (const socket of sockets) socket.destroy()
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

/** `promise`, or a rejection naming `what` when it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}
