/**
 * A private three-master Redis Cluster for tests, on free loopback ports: three
 * `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`,
 * ready once every node reports `cluster_state:ok`. `stop()` kills only those processes
 * and removes their temporary directory.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, type ClusterOptions, Redis } from 'ioredis'

const run = promisify(execFile)

export interface TestCluster {
  /** The three master ports. */
  ports: number[]
  /** A ready Cluster client as the docs recommend (no offline queue, no resending). */
  client(options?: ClusterOptions): Promise<Cluster>
  /** A plain connection to one node (for `CLUSTER KEYSLOT`, `CLUSTER SLOTS`, …). */
  node(index?: number): Redis
  /** The master port serving a hash slot. */
  portOf(slot: number): Promise<number>
  /** Kills the three servers (only them) and removes their directory. */
  stop(): Promise<void>
}

/** Whether a loopback port can be listened on now. */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Three ports whose cluster bus ports (port + 10000) are free as well. */
async function freePorts(): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 25_000)
    const ports = [base, base + 1, base + 2]
    const checks = await Promise.all(ports.flatMap((p) => [free(p), free(p + 10_000)]))
    if (checks.every(Boolean)) return ports
  }
  throw new Error('no free loopback ports for a test cluster')
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** Polls `check` up to `tries` times, waiting `ms` between tries (waiting on another process). */
async function poll(what: string, tries: number, ms: number, check: () => Promise<boolean>) {
  for (let i = 0; i < tries; i++) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, ms))
  }
  throw new Error(`test cluster: ${what} did not happen in time`)
}

/** Starts a three-master cluster (no replicas, no persistence) and waits until it serves every slot. */
export async function startCluster(): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-cluster-'))
  const children: ChildProcess[] = []
  const probes: Redis[] = []
  const clients: Cluster[] = []
  const stop = async () => {
    for (const c of clients) c.disconnect()
    for (const p of probes) p.disconnect()
    await Promise.all(
      children.map((child) => {
        if (exited(child)) return undefined
        const done = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        return done
      }),
    )
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const ports = await freePorts()
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
        ],
        { stdio: 'ignore' },
      )
      children.push(child)
      // Should the test process end without stop(), the server goes with it.
      process.once('exit', () => child.kill('SIGKILL'))
    }
    const node = (index = 0) => {
      const probe = new Redis({
        port: ports[index]!,
        host: '127.0.0.1',
        // the servers may still be starting: retry the connection a bounded number of times
        retryStrategy: (times) => (times < 100 ? 50 : null),
      })
      probe.on('error', () => {})
      probes.push(probe)
      return probe
    }
    const nodes = ports.map((_, i) => node(i))
    await poll('the nodes answering', 100, 50, async () => {
      if (children.some(exited)) throw new Error('a redis-server exited')
      const pongs = await Promise.all(nodes.map((n) => n.ping()))
      return pongs.every((p) => p === 'PONG')
    })
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    await poll('cluster_state:ok on every node', 200, 50, async () => {
      const infos = await Promise.all(nodes.map((n) => n.cluster('INFO') as Promise<string>))
      return infos.every((info) => info.includes('cluster_state:ok'))
    })
    return {
      ports,
      node,
      client: async (options) => {
        const client = new Cluster(
          ports.map((port) => ({ host: '127.0.0.1', port })),
          {
            enableOfflineQueue: false,
            ...options,
            redisOptions: {
              autoResendUnfulfilledCommands: false,
              maxRetriesPerRequest: 1,
              ...options?.redisOptions,
            },
          },
        )
        client.on('error', () => {})
        clients.push(client)
        if (client.status !== 'ready') await once(client, 'ready')
        return client
      },
      async portOf(slot) {
        const ranges = await nodes[0]!.cluster('SLOTS')
        const range = ranges.find(([from, to]) => from <= slot && slot <= to)
        if (!range) throw new Error(`no node serves slot ${slot}`)
        return Number(range[2]![1])
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/** Every key matching a SCAN pattern, on every master of the cluster. */
export async function scanCluster(cluster: Cluster, pattern: string): Promise<string[]> {
  const keys: string[] = []
  for (const node of cluster.nodes('master')) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== '0')
  }
  return keys
}
