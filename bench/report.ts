/**
 * Turning tinybench tasks into result rows, a console table and a JSON file.
 * Throughput is `1000 / mean latency` (ms → ops/s): the ops a single caller gets
 * per second, not tinybench's mean of per-sample rates (which overstates it).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Task } from 'tinybench'

export interface Row {
  name: string
  opsPerSec: number
  /** Mean latency of one iteration, in microseconds. */
  meanUs: number
  p50Us: number
  p99Us: number
  /** Relative margin of error of the mean latency, in percent. */
  rmePct: number
  samples: number
}

/**
 * One row per task; throws if a task failed (a refused decision, a thrown error). A task whose
 * every sample runs `calls` iterations reports per iteration: its latencies are sample means.
 */
export function rowOf(task: Task, calls = 1): Row {
  const result = task.result
  if (result.state === 'errored') throw new Error(`bench task "${task.name}" failed`, { cause: result.error })
  if (result.state !== 'completed') throw new Error(`bench task "${task.name}" did not complete`)
  const { latency } = result
  return {
    name: task.name,
    opsPerSec: (1000 * calls) / latency.mean,
    meanUs: (latency.mean * 1000) / calls,
    p50Us: (latency.p50 * 1000) / calls,
    p99Us: (latency.p99 * 1000) / calls,
    rmePct: latency.rme,
    samples: latency.samplesCount,
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const us = (n: number) => n.toFixed(2)

/** Print rows as an aligned table. */
export function printTable(title: string, rows: readonly Row[]): void {
  const header = ['task', 'ops/s', 'mean µs', 'p50 µs', 'p99 µs', '± %', 'samples']
  const cells = rows.map((r) => [
    r.name,
    int(r.opsPerSec),
    us(r.meanUs),
    us(r.p50Us),
    us(r.p99Us),
    r.rmePct.toFixed(2),
    int(r.samples),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]) =>
    c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ')
  console.log(`\n${title}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`)
  for (const c of cells) console.log(line(c))
}

/** Where and on what the numbers were taken, for the JSON file. */
export function environment() {
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    /** 1-minute load average when the suite finished: above `cores`, other work competed for the CPU. */
    loadAverage: Number(loadavg()[0]!.toFixed(2)),
  }
}

export async function writeJson(path: URL, data: unknown): Promise<void> {
  await mkdir(dirname(fileURLToPath(path)), { recursive: true })
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`)
}
