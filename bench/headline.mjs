/**
 * The headline workload of the plain-JS bench tools (`ab-memory.mjs`, `ab-process.mjs`,
 * `memory-floor.mjs`, `redis-layout.mjs`, `redis-minimal.mjs`), the same as the memory suite's in
 * `memory.ts`: six limits (user, team and org rules, each with requests and tokens over calendar
 * minutes, never binding), 1000 users in 50 teams in 5 orgs, one estimate and one usage report;
 * and the loops those tools share. `BENCH_USERS` changes the number of users (to see how a tool's
 * figures change with the partitions active at once; the headline is 1000), and `BENCH_MAX_PLANS`
 * the gate's `maxPlans`.
 */
function users() {
  const n = Number(process.env.BENCH_USERS ?? 1000)
  if (!Number.isSafeInteger(n) || n < 50) throw new Error('BENCH_USERS must be a whole number of at least 50')
  return n
}
export const subjects = Array.from({ length: users() }, (_, i) => ({
  org: `org-${(i % 50) % 5}`,
  team: `team-${i % 50}`,
  user: `user-${i}`,
}))
export const limits = { requests: 1e9, tokens: 1e12 }
export const policy = {
  rules: ['user', 'team', 'org'].map((d) => ({ id: d, per: d, limits, window: 'minute' })),
}
export const estimate = { inputTokens: 100, maxOutputTokens: 100 }
export const usage = { inputTokens: 100, outputTokens: 80 }

/**
 * rate-limiter-flexible's six limiters for the headline's limits, made with `Limiter`
 * (`RateLimiterMemory`, or `RateLimiterRedis` with `options` such as `{ storeClient }`): per
 * dimension, one of requests (1 point a call) and one of tokens (the estimate's 200 a call).
 * `prefix`, when given, starts each limiter's `keyPrefix`.
 */
export function sixLimiters(Limiter, options = {}, prefix = undefined) {
  return ['user', 'team', 'org'].flatMap((dimension) =>
    [
      ['requests', 1],
      ['tokens', estimate.inputTokens + estimate.maxOutputTokens],
    ].map(([metric, cost]) => ({
      dimension,
      cost,
      limiter: new Limiter({
        ...options,
        ...(prefix === undefined ? {} : { keyPrefix: `${prefix}-${dimension}-${metric}` }),
        points: limits[metric],
        duration: 60,
      }),
    })),
  )
}

/** One iteration of RLF's six `consume` calls for subject `s`, awaited one after another. */
export async function consumeSix(six, s) {
  for (const { limiter, dimension, cost } of six) await limiter.consume(s[dimension], cost)
}

/**
 * A chunk of `size` headline iterations (reserve, then settle) on a fresh gate of `lib` (a build
 * of `@tollgate/core`), continuing the subject rotation from one call to the next.
 */
export function gateChunk(lib, size) {
  const maxPlans =
    process.env.BENCH_MAX_PLANS === undefined ? {} : { maxPlans: Number(process.env.BENCH_MAX_PLANS) }
  const gate = lib.createTollgate({ policy, store: lib.memoryStore(), ...maxPlans })
  let n = 0
  return async () => {
    for (let i = 0; i < size; i++) {
      const d = await gate.reserve({ subject: subjects[n++ % subjects.length], estimate })
      if (!d.allowed) throw new Error(`refused: ${d.code}`)
      await gate.settle(d.id, usage)
    }
  }
}

/** A chunk of `size` iterations of RLF's six memory consumes, continuing the rotation. */
export function rlfChunk(RateLimiterMemory, size) {
  const six = sixLimiters(RateLimiterMemory)
  let n = 0
  return async () => {
    for (let i = 0; i < size; i++) await consumeSix(six, subjects[n++ % subjects.length])
  }
}

/**
 * Runs `tasks` (name → a chunk of `size` iterations) twice each to warm up, then `rounds` times in
 * turn, and answers the median rate of each (`per`, as text) and the median of the per-round
 * ratios of two (`ratio`), which the machine's drift over minutes does not skew.
 */
export async function alternate(tasks, size, rounds) {
  const timed = async (f) => {
    const started = performance.now()
    await f()
    return (size / (performance.now() - started)) * 1000
  }
  for (const f of Object.values(tasks)) {
    await f()
    await f()
  }
  const rates = Object.fromEntries(Object.keys(tasks).map((name) => [name, []]))
  for (let r = 0; r < rounds; r++)
    for (const name of Object.keys(tasks)) rates[name].push(await timed(tasks[name]))
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
  return {
    ratio: (a, b, digits = 2) => median(rates[a].map((x, i) => x / rates[b][i])).toFixed(digits),
    per: (name) => `${Math.round(median(rates[name])).toLocaleString('en-US')}/s`,
  }
}

/**
 * Other paths than the headline's, each on a gate and memory store of its own: 200,000
 * reserve+settle on rolling 60 s windows and as many reserve+release. Run before the headline
 * (`MIXED=1` in `ab-process.mjs`, `BENCH_BEFORE=mixed` in `interleaved.mjs`), it shows what a
 * process's history does to the headline's compiled code (bench/README.md, "What a process ran
 * before").
 */
export async function otherPaths(lib) {
  const rolling = lib.createTollgate({
    policy: { rules: policy.rules.map((rule) => ({ ...rule, window: '60s' })) },
    store: lib.memoryStore(),
  })
  const released = lib.createTollgate({ policy, store: lib.memoryStore() })
  for (let i = 0; i < 200_000; i++) {
    const subject = subjects[i % subjects.length]
    await rolling.settle((await rolling.reserve({ subject, estimate })).id, usage)
    await released.release((await released.reserve({ subject, estimate })).id)
  }
}
