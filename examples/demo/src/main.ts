/**
 * The demo: a day of traffic from three workspaces on the in-memory store, with a fake
 * clock, printing every decision Tollgate makes and the state of each workspace at the end.
 */
// fakeClock from the main entry: `@tollgate/core/testing` also holds the store conformance suite,
// which needs vitest and fast-check
import { type Alert, createTollgate, fakeClock, fromMicros, type ReserveRequest } from '@tollgate/core'
import { policy } from './policy.js'

const clock = fakeClock('2026-11-23T08:00:00Z')
const alerts: Alert[] = []
const gate = createTollgate({ policy, clock, onAlert: (alert) => alerts.push(alert) })

const workspaces = {
  trial: { subject: { workspace: 'ws-trial', user: 'ana', key: 'key_t1' }, attributes: { plan: 'trial' } },
  starter: {
    subject: { workspace: 'ws-starter', user: 'ben', key: 'key_s1' },
    attributes: { plan: 'starter' },
  },
  enterprise: {
    subject: { workspace: 'ws-big', user: 'cleo', key: 'key_e1' },
    attributes: { plan: 'enterprise', flags: ['enterprise'] },
  },
} as const

const pad = (text: string, width: number) => text.padEnd(width).slice(0, width)
const time = () => new Date(clock.now()).toISOString().slice(11, 19)
const counts = { allowed: 0, refused: 0, downgraded: 0 }

async function call(who: keyof typeof workspaces, model: string, inputTokens: number, outputTokens: number) {
  const request: ReserveRequest = {
    ...workspaces[who],
    model,
    estimate: { inputTokens, maxOutputTokens: outputTokens * 2 },
  }
  const decision = await gate.reserve(request)
  let outcome: string
  if (decision.allowed) {
    counts.allowed++
    // … here the app calls the model; then it settles what the call really used:
    await gate.settle(decision.id, { inputTokens, outputTokens })
    if (decision.downgrade) counts.downgraded++
    const swap = decision.downgrade ? ` (downgraded from ${decision.downgrade.from})` : ''
    const warn = decision.warnings.map((w) => ` ⚠ ${w.rule} passed ${w.threshold * 100}%`).join('')
    outcome = `allow  ${decision.model}${swap}${warn}`
  } else {
    counts.refused++
    const hours = (ms: number) =>
      ms < 120_000 ? `${Math.ceil(ms / 1000)}s` : `${(ms / 3_600_000).toFixed(1)}h`
    const wait =
      decision.retryAfterMs === null
        ? ''
        : `, ${decision.retryable ? 'retry' : 'resets'} in ${hours(decision.retryAfterMs)}`
    outcome = `REFUSE ${decision.status} ${decision.code} by ${decision.rule}${wait}`
  }
  console.log(
    `${time()}  ${pad(who, 10)} ${pad(model, 11)} ${pad(`${inputTokens}+${outputTokens}`, 12)} ${outcome}`,
  )
}

console.log('Tollgate demo: a day of traffic on the in-memory store (fake clock)\n')
console.log(`${pad('time', 8)}  ${pad('workspace', 10)} ${pad('model', 11)} ${pad('tokens', 12)} decision`)
for (let hour = 0; hour < 10; hour++) {
  await call('trial', 'gpt-4o-mini', 1_500, 400)
  await call('starter', 'gpt-4o', 12_000, 1_500)
  if (hour === 2) await call('trial', 'gpt-4o', 800, 200) // not on a trial plan
  if (hour === 3) await call('starter', 'o1', 2_000, 500) // premium: downgraded for non-enterprise
  if (hour === 4) await call('enterprise', 'o1', 2_000, 500)
  if (hour === 5) for (let burst = 0; burst < 6; burst++) await call('enterprise', 'gpt-4o-mini', 300, 100)
  clock.advance('1h')
}

console.log(`\n${counts.allowed} allowed (${counts.downgraded} downgraded), ${counts.refused} refused`)
console.log('\nAlerts fired (once per window and partition):')
for (const alert of alerts)
  console.log(`  ${alert.rule} ${JSON.stringify(alert.partition)} passed ${alert.threshold! * 100}%`)
console.log('\nUsage at the end of the day:')
for (const [name, who] of Object.entries(workspaces)) {
  for (const limit of await gate.usage(who)) {
    if (limit.kind === 'concurrency' || limit.kind === 'rolling') continue
    const show = (n: number) => (limit.metric === 'cost' ? `$${fromMicros(n).toFixed(2)}` : String(n))
    console.log(`  ${pad(name, 10)} ${pad(limit.rule, 15)} used ${show(limit.used)} of ${show(limit.limit)}`)
  }
}
