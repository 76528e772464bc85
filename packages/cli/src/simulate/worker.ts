/** A simulation worker thread: replays one shard of a traffic file and posts its state back. */
import { parentPort, workerData } from 'node:worker_threads'
import { parsePolicy } from '@tollgate/core'
import type { WorkerReply } from './file.js'
import { replay } from './run.js'
import { readLines, TrafficError } from './traffic.js'

async function run(): Promise<WorkerReply> {
  const { source, path, options, shard } = workerData
  try {
    return { ok: true, state: await replay(parsePolicy(source), readLines(path), options, shard) }
  } catch (error) {
    const traffic = error instanceof TrafficError ? { line: error.line, message: error.reason } : null
    return {
      ok: false,
      traffic,
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    }
  }
}

run().then((reply) => parentPort!.postMessage(reply))
