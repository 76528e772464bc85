/**
 * Background clean-up of reserves whose answer was lost. A reserve sent to Redis that ends without
 * an answer (a timeout, a connection dropped after the command was written) may have landed, or
 * may land later when ioredis resends it; the caller was told the store failed, so nobody will settle
 * it. Its clean-up (the commit script's `abandon`: return the holds if any, and remember the id as
 * closed so that a reserve arriving later holds nothing) is queued here and sent once the client is
 * ready again, never making the caller wait. A failed attempt is tried again on the next `ready`, or
 * after `retryMs` while the client stays ready, up to {@link TRIES} attempts; errors go nowhere, as
 * those of the store's other background work (a late hold's release) do.
 */
import type { Client } from './connection.js'

/** Attempts per piece of clean-up. */
const TRIES = 5
/**
 * Most pieces of clean-up waiting at once (a long outage during heavy traffic). Past it, a lost
 * reserve's holds are left to expire with their reservation's TTL, as they were before.
 */
const MOST = 10_000

/** Queues `work` (idempotent: it may run more than once) under `key` (one waiting per key). */
export type Abandon = (key: string, work: () => Promise<unknown>) => void

interface Job {
  work: () => Promise<unknown>
  tries: number
}

export function abandoner(client: Client, retryMs: number): Abandon {
  /** Clean-up waiting for the client to be ready, or for its next attempt. */
  const waiting = new Map<string, Job>()
  let listening = false
  let timer: ReturnType<typeof setTimeout> | undefined

  const run = () => {
    if (client.status === 'end') {
      waiting.clear() // the client was closed for good: nothing can be sent any more
      return
    }
    if (client.status !== 'ready') {
      listen()
      return
    }
    const jobs = [...waiting]
    waiting.clear()
    for (const [key, job] of jobs) attempt(key, job)
  }
  /** One `ready` and one `end` listener for every job waiting, however many (as `bounded` does). */
  const wake = () => {
    listening = false
    client.off('ready', wake)
    client.off('end', wake)
    run()
  }
  const listen = () => {
    if (listening) return
    listening = true
    client.on('ready', wake)
    client.on('end', wake)
  }
  const later = () => {
    if (client.status !== 'ready') listen()
    else if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined
        run()
      }, retryMs)
      timer.unref?.()
    }
  }
  const wait = (key: string, job: Job) => {
    if (waiting.has(key) || waiting.size >= MOST) return
    waiting.set(key, job)
    later()
  }
  const attempt = (key: string, job: Job) => {
    job.tries++
    let pending: Promise<unknown>
    try {
      pending = job.work()
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.catch(() => {
      if (job.tries < TRIES) wait(key, job)
    })
  }

  return (key, work) => {
    const job = { work, tries: 0 }
    if (client.status === 'ready') attempt(key, job)
    else wait(key, job)
  }
}
