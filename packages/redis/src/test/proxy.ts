/**
 * A loopback TCP proxy in front of a test Redis that loses one answer on purpose: the next command
 * whose bytes contain a marker is forwarded and run by Redis, but the reply is dropped and the
 * client's connection cut (as a network blip or `CLIENT KILL` after Redis ran the command would).
 * While `refuse(true)`, new connections are closed at once, so a test can look at what Redis holds
 * before the client is ready again.
 */
import { connect, createServer, type Socket } from 'node:net'

export interface TestProxy {
  port: number
  url: string
  /** The next command containing `marker` runs, but its answer is dropped and the connection cut. */
  dropReplyOf(marker: string): void
  /** How many answers were dropped so far. */
  readonly cuts: number
  /** Close (true) or accept (false) every new connection; connections already open carry on. */
  refuse(on: boolean): void
  close(): Promise<void>
}

export function startProxy(targetPort: number): Promise<TestProxy> {
  let marker: Buffer | null = null
  let cuts = 0
  let refusing = false
  const sockets = new Set<Socket>()
  const server = createServer((down) => {
    if (refusing) {
      down.destroy()
      return
    }
    const up = connect(targetPort, '127.0.0.1')
    sockets.add(down)
    sockets.add(up)
    let dropping = false
    const end = () => {
      down.destroy()
      up.destroy()
      sockets.delete(down)
      sockets.delete(up)
    }
    down.on('data', (chunk: Buffer) => {
      if (marker && chunk.includes(marker)) {
        marker = null
        dropping = true
      }
      up.write(chunk)
    })
    up.on('data', (chunk: Buffer) => {
      if (dropping) {
        // Redis ran the command and answered: the answer is lost with the connection.
        dropping = false
        cuts++
        end()
        return
      }
      down.write(chunk)
    })
    for (const socket of [down, up]) {
      socket.on('error', end)
      socket.on('close', end)
    }
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      resolve({
        port,
        url: `redis://127.0.0.1:${port}`,
        dropReplyOf(text) {
          marker = Buffer.from(text)
        },
        get cuts() {
          return cuts
        },
        refuse(on) {
          refusing = on
        },
        close() {
          for (const socket of sockets) socket.destroy()
          return new Promise<void>((done) => server.close(() => done()))
        },
      })
    }),
  )
}
