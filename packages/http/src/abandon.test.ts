/**
 * The queue of abandons to send again, alone, on fake timers: how long each retry waits, how many
 * wait at once, one per id, and what is not tried again. (Over a real server: failure.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { abandoner } from './abandon.js'
import { HttpStoreError } from './errors.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const away = () => Promise.reject(new HttpStoreError('network', 'The store server could not be reached.'))

describe('abandoner', () => {
  it('sends at once, then after firstDelayMs, doubled each time, 5 tries in all', async () => {
    const sent: number[] = []
    const queue = abandoner({
      send: () => {
        sent.push(Date.now())
        return away()
      },
      firstDelayMs: 100,
      random: () => 0.5, // no jitter
    })
    const start = Date.now()
    queue.abandon('a')
    await vi.advanceTimersByTimeAsync(10_000)
    expect(sent.map((t) => t - start)).toEqual([0, 100, 300, 700, 1_500])
    expect(queue.size).toBe(0)
  })

  it("waits on unref'd timers, which keep no process alive; the last attempt leaves none", async () => {
    const timers = vi.spyOn(globalThis, 'setTimeout')
    try {
      const queue = abandoner({ send: away, firstDelayMs: 100 })
      queue.abandon('a')
      await vi.advanceTimersByTimeAsync(0)
      expect(timers).toHaveBeenCalledTimes(1)
      const [wait] = timers.mock.results
      expect((wait?.value as NodeJS.Timeout | undefined)?.hasRef()).toBe(false)
      await vi.advanceTimersByTimeAsync(10_000)
      expect(timers).toHaveBeenCalledTimes(4) // one wait between each two of the 5 attempts
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      timers.mockRestore()
    }
  })

  it('keeps one retry per id, and at most `most` waiting', async () => {
    const sent: string[] = []
    const queue = abandoner({
      send: (id) => {
        sent.push(id)
        return away()
      },
      firstDelayMs: 100,
      most: 2,
    })
    queue.abandon('a')
    queue.abandon('a') // the same id again: sent, but one retry waits for both
    queue.abandon('b')
    queue.abandon('c') // sent, but no room left to wait: left to its TTL
    await vi.advanceTimersByTimeAsync(0)
    expect(sent).toEqual(['a', 'a', 'b', 'c'])
    expect(queue.size).toBe(2)
    await vi.advanceTimersByTimeAsync(200)
    expect(sent.slice(4).sort()).toEqual(['a', 'b'])
  })

  it('sends what waits when the server answers, a few at a time', async () => {
    let up = false
    let inFlight = 0
    let most = 0
    const sent: string[] = []
    const queue = abandoner({
      send: async (id) => {
        sent.push(id)
        if (!up) throw new HttpStoreError('timeout', 'No answer.')
        most = Math.max(most, ++inFlight)
        await new Promise((resolve) => setTimeout(resolve, 1))
        inFlight--
      },
      firstDelayMs: 60_000,
    })
    for (let i = 0; i < 100; i++) queue.abandon(`r${i}`)
    await vi.advanceTimersByTimeAsync(0)
    expect(queue.size).toBe(100)
    up = true
    queue.answered()
    await vi.advanceTimersByTimeAsync(100)
    expect(sent).toHaveLength(200)
    expect(new Set(sent.slice(100)).size).toBe(100)
    expect(most).toBeLessThanOrEqual(32)
    expect(queue.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0) // the waits they were sent before are cleared
    await vi.advanceTimersByTimeAsync(600_000)
    expect(sent).toHaveLength(200)
  })

  it('does not try again what the server refused (a 4xx but 408, 425, 429) or what cannot be sent', async () => {
    const errors: unknown[] = [
      new HttpStoreError('status', 'refused', { status: 400 }),
      new HttpStoreError('status', 'refused', { status: 401 }),
      new TypeError('not JSON'),
      new HttpStoreError('status', 'slow down', { status: 429 }),
      new HttpStoreError('status', 'bad gateway', { status: 502 }),
      new HttpStoreError('signature', 'not signed'),
    ]
    const queue = abandoner({ send: (id) => Promise.reject(errors[Number(id)]), firstDelayMs: 100 })
    for (let i = 0; i < errors.length; i++) queue.abandon(String(i))
    await vi.advanceTimersByTimeAsync(0)
    expect(queue.size).toBe(3)
  })

  it('a send that throws instead of rejecting is tried again like one that rejects', async () => {
    let calls = 0
    const queue = abandoner({
      send: () => {
        calls++
        throw new HttpStoreError('network', 'down')
      },
      firstDelayMs: 10,
    })
    queue.abandon('a')
    await vi.advanceTimersByTimeAsync(1_000)
    expect(calls).toBe(5)
  })
})
