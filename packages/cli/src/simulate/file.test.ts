import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { type PolicyInput, parsePolicy } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { allShards, shardDimension, simulateFile } from './file.js'
import { shardOf } from './run.js'

const dir = mkdtempSync(join(tmpdir(), 'tollgate-file-'))
const write = (name: string, lines: object[]) => {
  const path = join(dir, name)
  writeFileSync(path, lines.map((line) => JSON.stringify(line)).join('\n'))
  return path
}

const policy: PolicyInput = {
  tenant: 'org',
  rules: [
    { id: 'key-minute', per: 'key', limits: { requests: 3 }, window: 'minute' },
    { id: 'org-day', per: 'org', limits: { tokens: 5000 }, window: 'day', alerts: [0.5] },
    { id: 'org-inflight', per: 'org', limits: { concurrency: 2 } },
  ],
}
const orgs = ['a', 'b', 'c', 'd', 'e', 'f']
const T0 = Date.parse('2026-01-05T00:00:00Z')
/** 600 calls from six orgs, each org with its own keys. */
const traffic = Array.from({ length: 600 }, (_, i) => ({
  t: T0 + i * 7_000,
  subject: { org: orgs[i % 6], key: `${orgs[i % 6]}-k${i % 4}` },
  inputTokens: 40 + (i % 9) * 10,
  outputTokens: 20,
  maxOutputTokens: 60,
  durationMs: (i % 5) * 9_000,
}))

describe('simulateFile', () => {
  it('refuses options that cannot work, naming them, before reading the file', async () => {
    const path = write('options.jsonl', traffic.slice(0, 3))
    for (const workers of [0, 1.5, 'all', Object.create(null)])
      await expect(simulateFile(policy, path, { workers } as never)).rejects.toThrow(/workers must be/)
    await expect(simulateFile(policy, path, { bucketMs: 0 })).rejects.toThrow(/bucketMs must be/)
  })

  it('shards by tenant only when every rule is partitioned', () => {
    expect(shardDimension(parsePolicy(policy))).toBe('org')
    expect(shardDimension(parsePolicy({ rules: policy.rules }))).toBeUndefined()
    const global = { id: 'all', limits: { requests: 9 }, window: 'day' as const }
    expect(shardDimension(parsePolicy({ ...policy, rules: [...policy.rules, global] }))).toBeUndefined()
  })

  it('gives the same result in worker threads as in one thread', async () => {
    const path = write('traffic.jsonl', traffic)
    const one = await simulateFile(policy, path, { workers: 1, series: true })
    const two = await simulateFile(policy, path, { workers: 3, series: true })
    expect(two.summary.workers).toBe(3)
    expect(one.summary.workers).toBe(1)
    expect({ ...two.summary, elapsedMs: 0, workers: 0 }).toEqual({ ...one.summary, elapsedMs: 0, workers: 0 })
    expect(two.charts).toEqual(one.charts)
    expect(one.summary.refused).toBeGreaterThan(0)
  }, 60_000)

  it('counts one key id of two tenants as two partitions, in separate shards', async () => {
    // the same key id used by two orgs in different shards: the key counts within each org (the
    // policy's tenant), so each has its 3 a minute, each shard counts its own, and rows name the org
    const x = 'a'
    const y = ['b', 'c', 'd', 'e', 'f', 'g', 'h'].find((org) => shardOf(org, 2) !== shardOf(x, 2))!
    const shared = Array.from({ length: 8 }, (_, i) => ({
      t: T0 + i * 1000,
      subject: { org: i % 2 ? x : y, key: 'shared' },
    }))
    const path = write('shared.jsonl', shared)
    const { summary } = await simulateFile(policy, path, { workers: 2 })
    expect(summary).toMatchObject({ workers: 2, requests: 8, allowed: 6, refused: 2 })
    const keys = summary.spend.find((row) => row.rule === 'key-minute')!
    expect(keys.top.map((row) => [row.partition, row.requests]).sort()).toEqual([
      [{ key: 'shared', org: x }, 3],
      [{ key: 'shared', org: y }, 3],
    ])
    const one = await simulateFile(policy, path, { workers: 1 })
    expect({ ...one.summary, elapsedMs: 0, workers: 0 }).toEqual({ ...summary, elapsedMs: 0, workers: 0 })
  }, 60_000)

  it('counts a line with a malformed tenant id as failed, in worker threads as in one thread', async () => {
    // a list as the tenant's id crashed the worker that hashed it (the run died with a stack trace)
    const lines = [
      { t: T0, subject: { org: 'a', key: 'k1' } },
      { t: T0 + 1000, subject: { org: ['a'], key: 'k2' } },
      { t: T0 + 2000, subject: { org: 7, key: 'k3' } },
      { t: T0 + 3000, subject: { org: 'b', key: 'k4' } },
    ]
    const path = write('malformed-tenant.jsonl', lines)
    const one = await simulateFile(policy, path, { workers: 1 })
    const two = await simulateFile(policy, path, { workers: 2 })
    expect(one.summary).toMatchObject({ requests: 4, allowed: 2, failed: 2 })
    expect({ ...two.summary, elapsedMs: 0, workers: 0 }).toEqual({ ...one.summary, elapsedMs: 0, workers: 0 })
  }, 60_000)

  it('replays in one thread when two shards counted the same partition', async () => {
    // a rule per model counts across tenants: two orgs in two shards share its partition
    const perModel: PolicyInput = {
      ...policy,
      rules: [
        ...policy.rules,
        { id: 'model-minute', per: 'model', limits: { requests: 5 }, window: 'minute' },
      ],
    }
    const x = 'a'
    const y = ['b', 'c', 'd', 'e', 'f', 'g', 'h'].find((org) => shardOf(org, 2) !== shardOf(x, 2))!
    const lines = Array.from({ length: 8 }, (_, i) => ({
      t: T0 + i * 1000,
      subject: { org: i % 2 ? x : y, key: `k${i}` },
      model: 'm',
    }))
    const path = write('model.jsonl', lines)
    const { summary } = await simulateFile(perModel, path, { workers: 2 })
    expect(summary).toMatchObject({ workers: 1, requests: 8, allowed: 5, refused: 3 })
    const one = await simulateFile(perModel, path, { workers: 1 })
    expect({ ...one.summary, elapsedMs: 0 }).toEqual({ ...summary, elapsedMs: 0 })
  }, 60_000)

  it('counts an out-of-order line once, and names the same first partition at a cap, in worker threads as in one thread', async () => {
    // x in shard 0, y in shard 1: both first reach the cap at the same ms, y's refusal on the earlier
    // line (3); the last line is late and runs at the previous time (it was counted once per shard,
    // and the merge kept shard 0's org on a tie of times)
    const x = orgs.find((org) => shardOf(org, 2) === 0)!
    const y = orgs.find((org) => shardOf(org, 2) === 1)!
    const capped: PolicyInput = {
      tenant: 'org',
      rules: [{ id: 'org-minute', per: 'org', limits: { requests: 1 }, window: 'minute' }],
    }
    // and the same with the orgs' lines swapped, whichever shard the merge starts from
    for (const [early, late] of [
      [y, x],
      [x, y],
    ] as const) {
      const lines = [
        { t: T0 + 5000, subject: { org: early } },
        { t: T0 + 5000, subject: { org: late } },
        { t: T0 + 6000, subject: { org: early } },
        { t: T0 + 6000, subject: { org: late } },
        { t: T0 + 1000, subject: { org: late } },
      ]
      const path = write(`late-and-tied-${early}.jsonl`, lines)
      const one = await simulateFile(capped, path, { workers: 1 })
      const two = await simulateFile(capped, path, { workers: 2 })
      expect(two.summary.workers).toBe(2)
      expect(one.summary).toMatchObject({ requests: 5, allowed: 2, refused: 3, outOfOrder: 1 })
      expect(one.summary.capsHit.map((hit) => [hit.rule, hit.partition, hit.firstAt])).toEqual([
        ['org-minute', { org: early }, T0 + 6000],
      ])
      expect(two.summary.outOfOrder).toBe(1)
      expect(two.summary.capsHit.map((hit) => hit.partition)).toEqual([{ org: early }])
      expect({ ...two.summary, elapsedMs: 0, workers: 0 }).toEqual({
        ...one.summary,
        elapsedMs: 0,
        workers: 0,
      })
    }
  }, 60_000)

  it('stops the other workers when one shard fails', async () => {
    // real threads: one fails at once, one would run until stopped (a shard with a long file left)
    const failing = new Worker(
      "require('node:worker_threads').parentPort.postMessage({ ok: false, traffic: { line: 7, message: 'bad line' }, message: '' })",
      { eval: true },
    )
    const endless = new Worker('setInterval(() => {}, 1_000)', { eval: true })
    const exited = new Promise<number>((resolve) => endless.once('exit', resolve))
    await expect(allShards([failing, endless])).rejects.toThrow(/line 7/)
    // stopped (left running, it would never exit and the test would time out); the exit code is 1,
    // or 0 when the thread was stopped before it ran any code
    expect([0, 1]).toContain(await exited)
  }, 30_000)
})
