import { once } from 'node:events'
import { request as httpRequest, type Server } from 'node:http'
import { createRequire } from 'node:module'
import { type AddressInfo, connect } from 'node:net'
import {
  apiKeyIdentity,
  type ErrorBody,
  memoryKeyRegistry,
  type SettleEvent,
  type UsageReport,
} from '@tollgate/web'
import express5 from 'express'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type TestGate, testGate } from '../../web/src/test/fixtures.js'
import { tollgate, usageRoute } from './index.js'

const require = createRequire(import.meta.url)
const express4 = require('express4') as typeof express5
const versions = [
  ['Express 5', express5],
  ['Express 4', express4],
] as const

const keys = memoryKeyRegistry()
const identify = apiKeyIdentity(keys, { keyDimension: false })
const u1 = { tenant: 't1', user: 'u1' }
const dashboard = 'https://dash.example.com'
let k1: string
let k2: string
let admin: string

beforeAll(async () => {
  k1 = (await keys.issue({ subject: u1 })).key
  k2 = (await keys.issue({ subject: { tenant: 't2', user: 'u2' } })).key
  admin = (await keys.issue({ subject: { tenant: 'ops', user: 'root' }, attributes: { role: 'admin' } })).key
})

for (const [name, express] of versions) {
  describe(`@tollgate/express usageRoute over real HTTP (${name})`, () => {
    let server: Server
    let base: string
    let state: TestGate
    let waiters: ((e: SettleEvent) => void)[]
    const settled = () => new Promise<SettleEvent>((resolve) => waiters.push(resolve))

    beforeEach(async () => {
      state = testGate()
      waiters = []
      const app = express()
      app.post(
        '/chat',
        express.json(),
        tollgate({
          gate: state.gate,
          identify,
          model: 'gpt-4o-mini',
          estimate: { inputTokens: 100, maxOutputTokens: 200 },
          onSettle: (e) => {
            for (const w of waiters.splice(0)) w(e)
          },
        }),
        (req, res) => {
          req.tollgate!.report({ inputTokens: 90, outputTokens: 10 })
          res.json({ ok: true })
        },
      )
      const usage = usageRoute(state.gate, {
        identify,
        cors: [dashboard],
        admin: { authorize: ({ identity }) => identity.attributes.role === 'admin' },
      })
      app.all('/v1/usage', usage) // every method: the route itself answers 405

      server = app.listen(0, '127.0.0.1')
      await once(server, 'listening')
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })
    afterEach(async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    })

    const get = (query = '', key: string | null = k1, init: RequestInit = {}) =>
      fetch(`${base}/v1/usage${query}`, {
        ...init,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
      })
    const chat = async (key = k1) => {
      const done = settled()
      const response = await fetch(`${base}/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: '{}',
      })
      expect(response.status).toBe(200)
      await done
    }
    const tokens = (report: UsageReport) => report.limits.find((l) => l.rule === 'user-daily')!

    it('shows what settled requests used and what is left', async () => {
      await chat()
      await chat()
      const response = await get()
      expect(response.status).toBe(200)
      expect(response.headers.get('cache-control')).toBe('no-store')
      const report = (await response.json()) as UsageReport
      expect(report.subject).toEqual(u1)
      expect(report.currency).toBe('USD')
      expect(tokens(report)).toMatchObject({ used: 200, held: 0, remaining: 1800, limit: 2000 })
      expect(report.limits.find((l) => l.rule === 'user-rpm')).toMatchObject({ used: 2, remaining: 1 })
      const budget = report.limits.find((l) => l.rule === 'tenant-budget')!
      expect(budget.usedAmount).toBe(budget.used / 1_000_000)
      expect(budget.used).toBeGreaterThan(0)
      state.clock.advance('1d')
      expect(tokens((await (await get()).json()) as UsageReport).used).toBe(0)
    })

    it('a caller sees only its own subject; admin mode needs approval', async () => {
      await chat()
      const own = (await (await get('', k2)).json()) as UsageReport
      expect(own.subject).toEqual({ tenant: 't2', user: 'u2' })
      expect(tokens(own).used).toBe(0)
      const refused = await get('?subject.user=u1&subject.tenant=t1', k2)
      expect(refused.status).toBe(403)
      expect(await refused.text()).not.toContain('"used"')
      const approved = await get('?subject.user=u1&subject.tenant=t1', admin)
      expect(approved.status).toBe(200)
      const report = (await approved.json()) as UsageReport
      expect(report.subject).toEqual(u1)
      expect(tokens(report).used).toBe(100)
    })

    it('400 for a request target Node accepts but no URL can hold (it threw, and became a 500)', async () => {
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
      let answer = ''
      socket.on('data', (chunk) => {
        answer += chunk
      })
      socket.end(
        `GET http://localhost:99999/v1/usage HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${k1}\r\nconnection: close\r\n\r\n`,
      )
      await once(socket, 'close')
      expect(answer).toMatch(/^HTTP\/1\.1 400 /)
      expect(answer).toContain('"code":"invalid_request"')
    })

    it('401 without identity, 405 on POST and TRACE, HEAD without a body', async () => {
      const missing = await get('', null)
      expect(missing.status).toBe(401)
      expect(((await missing.json()) as ErrorBody).error.code).toBe('unauthenticated')
      const post = await get('', k1, { method: 'POST' })
      expect(post.status).toBe(405)
      expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS')
      // fetch cannot send TRACE: a raw request
      const trace = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${base}/v1/usage`, {
          method: 'TRACE',
          headers: { authorization: `Bearer ${k1}` },
        })
        req.on('response', (res) => {
          res.resume()
          resolve(res.statusCode!)
        })
        req.on('error', reject)
        req.end()
      })
      expect(trace).toBe(405)
      const head = await get('', k1, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(await head.text()).toBe('')
    })

    it('CORS headers only for allowed origins', async () => {
      const allowed = await get('', k1, { headers: { origin: dashboard } })
      expect(allowed.headers.get('access-control-allow-origin')).toBe(dashboard)
      const other = await get('', k1, { headers: { origin: 'https://evil.example' } })
      expect(other.status).toBe(200)
      expect(other.headers.get('access-control-allow-origin')).toBeNull()
      const preflight = await get('', null, { method: 'OPTIONS', headers: { origin: dashboard } })
      expect(preflight.status).toBe(204)
      expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, HEAD')
      const evil = await get('', null, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } })
      expect(evil.status).toBe(403)
      expect(evil.headers.get('access-control-allow-origin')).toBeNull()
    })
  })
}
