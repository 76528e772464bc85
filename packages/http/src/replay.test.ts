/**
 * Replays whose body is sent slowly: the headers arrive inside the window, the body only once the
 * first use's nonce may have been forgotten. The window must hold when the nonce is claimed, so the
 * copy is refused by its time — with the memory nonce cache and with the shared `redisNonceStore`.
 * The server's wall clock is a fake clock moved while the request is in flight: no sleeps.
 */
import { request as nodeRequest } from 'node:http'
import { type CounterSpec, memoryStore, type Store } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { redisNonceStore } from '@tollgate/web/redis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NonceStore } from './nonces.js'
import { SIGNATURE_HEADER } from './protocol.js'
import { startServer, type TestServer } from './test/server.js'
import { signatureFor } from './test/signed.js'

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const prefix = `tgtest-httpreplay-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`
const client = new Redis(REDIS_URL, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false })

let server: TestServer
beforeAll(async () => {
  server = await startServer()
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
})
afterAll(async () => {
  await server.close()
  const keys = await client.keys(`${prefix}*`)
  if (keys.length > 0) await client.unlink(...keys)
  await client.quit()
})

const spec: CounterSpec = {
  key: 'k',
  metric: 'tokens',
  amount: 5,
  cap: 100,
  enforce: true,
  window: { kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] },
  expiry: 'keep',
}
const used = async (store: Store) => (await store.read([spec]))[0]!.used
const MAX_SKEW = 30_000

/** A fake wall clock that tells a test when the handler next reads it. */
function watchedClock() {
  const wall = fakeClock(Date.now())
  let reader: (() => void) | undefined
  return {
    wall,
    clock: {
      now() {
        const told = reader
        reader = undefined
        told?.()
        return wall.now()
      },
    },
    /** Resolves at the handler's next read of the clock (for a request: its timestamp check). */
    nextRead: () =>
      new Promise<void>((resolve) => {
        reader = resolve
      }),
  }
}

/**
 * Posts `body` with `header`, all but its last byte at once; the last byte only after `meanwhile`
 * (started once the headers went out) is done. Answers the status and the body text.
 */
function postSlowly(
  url: string,
  header: string,
  body: Uint8Array,
  meanwhile: () => Promise<void>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = nodeRequest(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': body.byteLength,
          [SIGNATURE_HEADER]: header,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode!, text }))
      },
    )
    req.on('error', reject)
    req.write(body.subarray(0, body.byteLength - 1))
    meanwhile().then(() => req.end(body.subarray(body.byteLength - 1)), reject)
  })
}

/**
 * One legitimate `adjust`, then a copy of it whose body ends once the clock is past the window and
 * `forget` dropped the first nonce (as its TTL would have by then).
 */
async function slowReplay(nonces: NonceStore | undefined, forget: (nonce: string) => Promise<void>) {
  const { wall, clock, nextRead } = watchedClock()
  const store = memoryStore({ clock: fakeClock() })
  const url = `${server.mount(store, { clock, maxSkewMs: MAX_SKEW, ...(nonces ? { nonces } : {}) })}/adjust`
  const body = new TextEncoder().encode(JSON.stringify({ counter: spec, amount: 5 }))
  const nonce = 'n'.repeat(8) + Math.random().toString(36).slice(2).padEnd(16, '0')
  const header = await signatureFor(url, body, { timestamp: wall.now(), nonce })
  const send = () => fetch(url, { method: 'POST', headers: { [SIGNATURE_HEADER]: header }, body })

  expect((await send()).status).toBe(200)
  expect((await send()).status).toBe(401) // an immediate copy: refused by its nonce
  const replay = await postSlowly(url, header, body, async () => {
    await nextRead() // the headers passed the timestamp check, inside the window…
    wall.advance(MAX_SKEW + 1) // …and the body comes only once the first nonce may be forgotten
    await forget(nonce)
  })
  return { replay, used: await used(store) }
}

describe('a copy of a signed request whose body arrives after the window', () => {
  it('is refused by its time with the memory nonce cache, though the first nonce expired', async () => {
    const { replay, used } = await slowReplay(undefined, async () => {})
    expect(replay.status).toBe(401)
    expect(JSON.parse(replay.text)).toEqual({
      error: { code: 'unauthorized', message: 'The request timestamp is outside the accepted window.' },
    })
    expect(used).toBe(5) // applied once
  })

  it('is refused by its time with redisNonceStore, once Redis forgot the first nonce', async () => {
    const nonces = redisNonceStore({ client, prefix })
    const { replay, used } = await slowReplay(nonces, async (nonce) => {
      // the nonce was kept for the window only: its TTL has run out by the time the clock shows
      const ttl = await client.pttl(`${prefix}${nonce}`)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(MAX_SKEW + 1)
      await client.del(`${prefix}${nonce}`)
    })
    expect(replay.status).toBe(401)
    expect(JSON.parse(replay.text).error.message).toMatch(/outside the accepted window/)
    expect(used).toBe(5)
  })

  it('a request whose slow body ends inside the window is still served once', async () => {
    const { wall, clock, nextRead } = watchedClock()
    const store = memoryStore({ clock: fakeClock() })
    const url = `${server.mount(store, { clock, maxSkewMs: MAX_SKEW })}/adjust`
    const body = new TextEncoder().encode(JSON.stringify({ counter: spec, amount: 5 }))
    const header = await signatureFor(url, body, { timestamp: wall.now() })
    const answer = await postSlowly(url, header, body, async () => {
      await nextRead()
      wall.advance(MAX_SKEW) // the last instant of the window
    })
    expect(answer.status).toBe(200)
    // the nonce is kept past the window: a copy now is refused by its nonce, later by its time
    const copy = await fetch(url, { method: 'POST', headers: { [SIGNATURE_HEADER]: header }, body })
    expect(copy.status).toBe(401)
    expect(((await copy.json()) as { error: { message: string } }).error.message).toMatch(/replay/)
    expect(await used(store)).toBe(5)
  })
})
