/**
 * `simulateFile`: a traffic file replayed in one thread, or sharded by tenant across worker
 * threads when the policy allows it — and checked afterwards: if two shards counted the same
 * partition of a rule, the sharded result could differ, so the file is replayed in one thread.
 */
import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { type CompiledPolicy, type PolicyInput, parsePolicy } from '@tollgate/core'
import { checkSimulateOptions, replay, resultOf, type SimulateOptions, type SimulationResult } from './run.js'
import { mergeStates, overlapping, type SimulationState } from './state.js'
import { readLines, TrafficError } from './traffic.js'

/** Options of {@link simulateFile}. */
export interface SimulateFileOptions extends SimulateOptions {
  /**
   * Worker threads to shard the replay across, by the policy's `tenant` dimension; `'auto'`
   * uses the available cores (at most 4) for files of 8 MB or more. Sharding applies only when the policy names a
   * `tenant`, every rule has a `per`, and the input is a file; the result is identical to a
   * one-thread replay (checked: when two shards count the same partition, it replays in one thread).
   * @default 1
   * @example { workers: 'auto' }
   */
  workers?: number | 'auto'
}

/** Smallest file `workers: 'auto'` shards: below it, starting threads costs more than it saves. */
const AUTO_BYTES = 8 * 2 ** 20

/** The dimension to shard by: the tenant, when no rule counts across tenants by construction. */
export function shardDimension(policy: CompiledPolicy): string | undefined {
  const tenant = policy.tenant
  if (tenant === undefined || policy.rules.some((rule) => rule.per.length === 0)) return undefined
  return tenant
}

/** A worker running the built `simulate-worker` beside this module, or (from source) `worker.ts` through tsx. */
function startWorker(workerData: unknown): Worker {
  const here = import.meta.url
  if (!here.endsWith('.ts'))
    return new Worker(
      new URL(here.endsWith('.cjs') ? './simulate-worker.cjs' : './simulate-worker.js', here),
      {
        workerData,
      },
    )
  const source = JSON.stringify(new URL('./worker.ts', here).href)
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${source}) })`
  return new Worker(boot, { eval: true, workerData })
}

/** Messages a worker posts back. */
export type WorkerReply =
  | { ok: true; state: SimulationState }
  | { ok: false; traffic: { line: number; message: string } | null; message: string }

async function sharded(
  policy: CompiledPolicy,
  path: string,
  options: SimulateOptions,
  count: number,
  dimension: string,
): Promise<SimulationState[]> {
  const track = policy.rules.filter((rule) => !rule.per.includes(dimension)).map((rule) => rule.id)
  const { top, series, bucketMs, skipInvalid } = options
  const workers = Array.from({ length: count }, (_, index) =>
    startWorker({
      source: policy.source,
      path,
      options: { top, series, bucketMs, skipInvalid },
      shard: { index, count, dimension, track },
    }),
  )
  return allShards(workers)
}

/**
 * Every worker's state, in order; at the first failure the other workers are stopped (they would
 * otherwise replay to the end of their shard, and keep the process alive, for an answer no one reads).
 */
export async function allShards(workers: Worker[]): Promise<SimulationState[]> {
  const runs = workers.map(
    (worker) =>
      new Promise<SimulationState>((resolve, reject) => {
        worker.once('message', (reply: WorkerReply) => {
          if (reply.ok) resolve(reply.state)
          else if (reply.traffic) reject(new TrafficError(reply.traffic.line, reply.traffic.message))
          else reject(new Error(reply.message))
        })
        worker.once('error', reject)
        worker.once('exit', (code) => reject(new Error(`simulation worker exited with code ${code}`)))
      }),
  )
  try {
    return await Promise.all(runs)
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.terminate()))
    throw error
  }
}

/**
 * {@link simulate} on a JSON-lines file (`-` for standard input), sharded across worker threads
 * when `options.workers` allows and the policy permits.
 *
 * @example
 * const { summary } = await simulateFile(policyText, 'traffic.jsonl', { workers: 'auto' })
 */
export async function simulateFile(
  policy: PolicyInput | CompiledPolicy | string,
  path: string,
  given?: SimulateFileOptions,
): Promise<SimulationResult> {
  const options = checkSimulateOptions(given)
  const { workers } = options
  if (workers !== undefined && workers !== 'auto' && !(Number.isSafeInteger(workers) && workers >= 1))
    throw new TypeError('simulateFile: workers must be a whole number, 1 or more, or "auto"')
  const started = performance.now()
  const compiled = parsePolicy(policy)
  const big = () => path !== '-' && statSync(path).size >= AUTO_BYTES
  const wanted =
    options.workers === 'auto' ? (big() ? Math.min(4, availableParallelism()) : 1) : (options.workers ?? 1)
  const dimension = shardDimension(compiled)
  if (wanted > 1 && dimension !== undefined && path !== '-') {
    const states = await sharded(compiled, path, options, wanted, dimension)
    if (overlapping(states).length === 0) {
      const merged = states.reduce(mergeStates)
      return resultOf(compiled, merged, options, performance.now() - started, wanted)
    }
  }
  const state = await replay(compiled, readLines(path), options)
  return resultOf(compiled, state, options, performance.now() - started, 1)
}
