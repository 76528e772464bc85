/**
 * Redis memory per counter window and per reservation, open and closed: what `graceMs` and
 * `idempotencyMs` cost (docs/redis.md, _Memory_). Through a gate on the memory suite's six-limit
 * policy, it reserves and settles once for each of its 1,000 users (which makes every counter window
 * of the minute), then makes `COUNT` reservations and settles them, and prints the growth of Redis
 * `used_memory` per window and per reservation after each step. Keys live under a prefix unique to the run and are deleted at the
 * end. Run it on an otherwise idle Redis: other clients' writes count too.
 *
 *   npx --yes pnpm@10 build && node bench/redis-memory.mjs     # BENCH_REDIS_URL, default redis://127.0.0.1:6379
 */
import { randomUUID } from 'node:crypto'
import { createTollgate } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import Redis from 'ioredis'
import { estimate, policy, subjects, usage } from './headline.mjs'
import { countMatching, deleteMatching } from './keys.mjs'

const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
client.on('error', () => {})
await client.connect()
const prefix = `tgmemory-${randomUUID().slice(0, 8)}`
const COUNT = Number(process.env.COUNT ?? 20_000)
const gate = createTollgate({ policy, store: redisStore({ client, prefix }) })
const used = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1])

/** `call` over every item, 100 at a time. */
async function inBlocks(items, call) {
  const out = []
  for (let i = 0; i < items.length; i += 100)
    out.push(...(await Promise.all(items.slice(i, i + 100).map(call))))
  return out
}

/** Keys of the run whose name has `:<letter>:` after the tag. */
const count = (letter) => countMatching(client, `{${prefix}*}:${letter}:*`)

try {
  const empty = await used()
  const warm = await inBlocks(subjects, (subject) => gate.reserve({ subject, estimate }))
  await inBlocks(warm, (d) => gate.settle(d.id, usage))
  const windows = await count('f')
  const closedWarm = await count('d')
  const before = await used()
  const made = await inBlocks(
    Array.from({ length: COUNT }, (_, i) => subjects[i % subjects.length]),
    (subject) => gate.reserve({ subject, estimate }),
  )
  if (made.some((d) => !d.allowed)) throw new Error('a reservation was refused')
  const open = await used()
  await inBlocks(made, (d) => gate.settle(d.id, usage))
  const closed = await used()
  const per = (bytes) => `${Math.round((bytes - before) / COUNT)} bytes`
  // the warm-up's closed ids are counted at the closed figure below, and taken off the windows'
  const perClosed = (closed - before) / COUNT
  const perWindow = (before - empty - closedWarm * perClosed) / windows
  console.log(
    `Redis memory per calendar counter window, over ${windows.toLocaleString('en-US')}: ${Math.round(perWindow)} bytes`,
  )
  console.log(`Redis memory per six-counter reservation, over ${COUNT.toLocaleString('en-US')}:`)
  console.log(`  open    ${per(open)}`)
  console.log(`  closed  ${per(closed)} (kept for idempotencyMs)`)
} finally {
  await deleteMatching(client, `*${prefix}*`)
  await client.quit()
}
