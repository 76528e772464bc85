/**
 * Alerts fire once per window per partition across processes: two gates, each with its own
 * Redis connection and store on one shared prefix (as two processes would be), cross the same
 * thresholds concurrently. The thresholds already reported live in Redis (the counter's hash),
 * so each threshold alerts once in all, and is delivered once through the webhook.
 */
import { type Alert, createTollgate, fakeClock, type PolicyInput } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { hookServer } from './test/server.js'
import { type AlertDelivery, alertWebhook } from './webhook/send.js'
import { verifyAlertSignature } from './webhook/sign.js'

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const prefix = `tgtest-audit-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
const clients: Redis[] = []
const client = () => {
  const redis = new Redis(REDIS_URL, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  })
  clients.push(redis)
  return redis
}

afterAll(async () => {
  const redis = clients[0]!
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.unlink(...keys)
  } while (cursor !== '0')
  for (const redis of clients) redis.disconnect()
})

const policy: PolicyInput = {
  rules: [
    {
      id: 'team-day',
      owner: 'ml@example.com',
      per: 'team',
      limits: { tokens: 2_000 },
      window: 'day',
      alerts: [0.25, 0.5],
    },
    { id: 'org-minute', per: 'org', limits: { requests: 1_000 }, window: 'minute', alerts: [0.01] },
  ],
}

describe('alerts across processes sharing Redis', () => {
  it('fire once per window per partition, and are delivered once each', async () => {
    const secret = 'whsec_redis_of_32_bytes_or_more!!'
    const hook = await hookServer(() => ({ status: 200 }))
    const clock = fakeClock(Date.UTC(2026, 0, 5, 10))
    const alerts: { gate: string; alert: Alert }[] = []
    const gates = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const redis = client()
        await redis.connect()
        const webhook = alertWebhook({ url: hook.url, secret, backoffMs: () => 0 })
        const gate = createTollgate({
          policy,
          store: redisStore({ client: redis, prefix, clock }),
          onAlert: (alert) => {
            alerts.push({ gate: name, alert })
            webhook(alert)
          },
        })
        return { gate, webhook }
      }),
    )

    /** 10 calls of 100 tokens for each of two teams, alternating gates (`on`), all in flight at once. */
    const burst = async (on = gates) => {
      const decisions = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          on[i % on.length]!.gate.reserve({
            subject: { org: 'acme', team: i % 4 < 2 ? 't1' : 't2' },
            estimate: { inputTokens: 50, maxOutputTokens: 50 },
          }),
        ),
      )
      expect(decisions.every((d) => d.allowed)).toBe(true)
      return decisions
    }
    const releaseAll = (decisions: Awaited<ReturnType<typeof burst>>) =>
      Promise.all(decisions.map((d, i) => gates[(i + 1) % 2]!.gate.release(d.id)))
    const key = ({ alert }: { alert: Alert }) => `${alert.rule}|${alert.scope}|${alert.threshold}`
    const everyThreshold = [
      'org-minute|org=acme|0.01',
      'team-day|team=t1|0.25',
      'team-day|team=t1|0.5',
      'team-day|team=t2|0.25',
      'team-day|team=t2|0.5',
    ]

    // 20 concurrent calls on two gates cross every threshold: each alerts once in all
    await releaseAll(await burst())
    expect(alerts.map(key).sort()).toEqual(everyThreshold)
    // which gate reports which threshold depends on the order the calls reach Redis: any split

    // each gate alone crosses every threshold again in the same windows. Each threshold was
    // reported by one gate, so the other gate's silence about it can only come from Redis
    for (const only of gates) await releaseAll(await burst([only]))
    expect(alerts).toHaveLength(5)

    // the holds were released, so the same calls cross the same thresholds again in the same
    // windows: already reported, nothing alerts
    await releaseAll(await burst())
    expect(alerts).toHaveLength(5)

    // the next day (and minute): every threshold alerts again, once
    clock.set(Date.UTC(2026, 0, 6, 10))
    await burst()
    expect(alerts.slice(5).map(key).sort()).toEqual(everyThreshold)

    for (const { webhook } of gates) await webhook.close()
    await hook.close()
    expect(hook.received).toHaveLength(alerts.length)
    const delivered = hook.received.map((r) => JSON.parse(r.body) as AlertDelivery)
    expect(delivered.map((d) => d.alert).sort(byKey)).toEqual(alerts.map((a) => a.alert).sort(byKey))
    for (const r of hook.received)
      expect(await verifyAlertSignature(secret, r.headers['tollgate-signature'] as string, r.body)).toBe(true)
  })
})

const byKey = (a: Alert, b: Alert) =>
  `${a.at}${a.rule}${a.scope}${a.threshold}`.localeCompare(`${b.at}${b.rule}${b.scope}${b.threshold}`)
