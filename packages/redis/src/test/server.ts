/** A private redis-server for tests that need an empty database, or to pause, kill and restart Redis. */
import { type ChildProcess, spawn } from 'node:child_process'
import { Redis } from 'ioredis'

export interface TestServer {
  port: number
  url: string
  /** Stops the server (SIGKILL: no goodbye, like a crash) and waits for it to exit. */
  kill(): Promise<void>
  /** Starts it again on the same port. */
  restart(): Promise<void>
}

async function waitForPing(port: number, process: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (process.exitCode !== null || process.signalCode !== null)
      throw new Error(`redis-server on port ${port} exited with ${process.exitCode}`)
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    })
    probe.on('error', () => {})
    try {
      await probe.connect()
      if ((await probe.ping()) === 'PONG') return
    } catch {
      // not up yet
    } finally {
      probe.disconnect()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis-server on port ${port} did not answer`)
}

/** Starts `redis-server` on a free loopback port, without persistence. */
export async function startRedis(): Promise<TestServer> {
  let child: ChildProcess | undefined
  let port = 0
  const launch = async (at: number) => {
    const proc = spawn(
      'redis-server',
      ['--port', String(at), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    )
    await waitForPing(at, proc)
    return proc
  }
  for (let attempt = 0; attempt < 10 && !child; attempt++) {
    const at = 20_000 + Math.floor(Math.random() * 20_000)
    try {
      child = await launch(at)
      port = at
    } catch {
      // port taken: try another
    }
  }
  if (!child) throw new Error('could not start redis-server')
  const server: TestServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const running = child
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      const exited = new Promise((resolve) => running.once('exit', resolve))
      running.kill('SIGKILL')
      await exited
    },
    async restart() {
      await server.kill()
      child = await launch(port)
    },
  }
  return server
}
