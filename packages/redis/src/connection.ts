/**
 * Bounded Redis calls: every call waits for the connection when it is being made, but never
 * longer than `timeoutMs`, and a call that times out is not cancelled (Redis may still apply
 * it): its late answer goes to a callback, so that a hold nobody waits for any more can be returned.
 */
import type { Cluster, Redis } from 'ioredis'
import { explainReplyError } from './server.js'

/** A store call that failed for a reason of the store's own (timeout, closed connection, bad client). */
export class RedisStoreError extends Error {
  override readonly name = 'RedisStoreError'
  constructor(
    message: string,
    readonly code: 'timeout' | 'closed',
  ) {
    super(message)
  }
}

/** What the store uses of an ioredis client: a standalone `Redis` or a `Cluster` answer alike here. */
export type Client = Pick<Redis, 'status' | 'on' | 'off' | 'connect' | 'defineCommand'> & {
  mget(keys: string[]): Promise<(string | null)[]>
  set(key: string, value: string): Promise<unknown>
  del(key: string): Promise<number>
  get(key: string): Promise<string | null>
}

/** Runs `work` within the timeout; `late` receives an answer that arrives after the call gave up. */
export type Within = <T>(work: () => Promise<T>, late?: (value: T) => void) => Promise<T>

const noop = () => {}

export function bounded(redis: Redis | Cluster, timeoutMs: number): Within {
  const client = redis as unknown as Client
  /**
   * Callers waiting for the connection, woken together by one `ready` or `end` listener
   * (so that a thousand calls during a reconnect add two listeners, not two thousand).
   */
  const waiting = new Set<() => void>()
  let listening = false
  const wake = () => {
    listening = false
    client.off('ready', wake)
    client.off('end', wake)
    const all = [...waiting]
    waiting.clear()
    for (const resume of all) resume()
  }

  return <T>(work: () => Promise<T>, late?: (value: T) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let done = false
      const finish = (error: unknown, value?: T) => {
        if (done) return
        done = true
        clearTimeout(timer)
        waiting.delete(resume)
        if (error === undefined) resolve(value as T)
        else reject(error)
      }
      const start = () => {
        if (done) return
        let pending: Promise<T>
        try {
          pending = work()
        } catch (error) {
          finish(error)
          return
        }
        pending.then(
          (value) => {
            if (done) late?.(value)
            else finish(undefined, value)
          },
          (error) => {
            // A script Redis refused: on a server older than Redis 7, say so (see server.ts).
            if ((error as Error | undefined)?.name === 'ReplyError')
              explainReplyError(redis, error).then((explained) => finish(explained), finish)
            else finish(error ?? new Error('Redis call failed'))
          },
        )
      }
      const resume = () => {
        if (client.status === 'ready') start()
        else if (client.status === 'end')
          finish(new RedisStoreError('The Redis connection was closed.', 'closed'))
        else wait()
      }
      const wait = () => {
        if (!listening) {
          listening = true
          client.on('ready', wake)
          client.on('end', wake)
        }
        waiting.add(resume)
      }
      const timer = setTimeout(
        () =>
          finish(
            new RedisStoreError(
              `Redis did not answer within ${timeoutMs} ms (status "${client.status}").`,
              'timeout',
            ),
          ),
        timeoutMs,
      )
      timer.unref?.()
      if (client.status === 'wait') client.connect().catch(noop)
      if (client.status === 'ready' || client.status === 'end') resume()
      else wait()
    })
}
