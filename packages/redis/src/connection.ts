/**
 * Bounded Redis calls: every call waits for the connection when it is being made, but never
 * longer than `timeoutMs`, and a call that times out is not cancelled (Redis may still apply
 * it): its late answer goes to a callback, so that a hold nobody waits for any more can be returned.
 * A call sent that ends without an answer from Redis (it timed out, or its connection was lost:
 * Redis may have run it, or may run it when ioredis resends it) is reported to another callback.
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

/**
 * Runs `work` within the timeout; `late` receives an answer that arrives after the call gave up;
 * `lost` is called (once) when `work` was started but the call ends without an answer from Redis:
 * it timed out, or it failed with anything but a Redis error reply (a connection closed, a stream
 * not writeable, ioredis' `MaxRetriesPerRequestError`…).
 */
export type Within = <T>(work: () => Promise<T>, late?: (value: T) => void, lost?: () => void) => Promise<T>

/** Whether an error is Redis' own answer (an error reply): the command reached Redis and was answered. */
export function answered(error: unknown): boolean {
  return (error as Error | null | undefined)?.name === 'ReplyError'
}

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

  return <T>(work: () => Promise<T>, late?: (value: T) => void, lost?: () => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let done = false
      /** `work` was started (its command handed to ioredis); `gone`: reported to `lost`. */
      let sent = false
      let gone = false
      const lose = () => {
        if (gone || !lost) return
        gone = true
        lost()
      }
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
        sent = true
        pending.then(
          (value) => {
            if (done) late?.(value)
            else finish(undefined, value)
          },
          (error) => {
            // A script Redis refused: on a server older than Redis 7, say so (see server.ts).
            if (answered(error))
              explainReplyError(redis, error).then((explained) => finish(explained), finish)
            else {
              lose()
              finish(error ?? new Error('Redis call failed'))
            }
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
      const timer = setTimeout(() => {
        // Sent and not answered: Redis may still run it. Not sent (waiting for the connection): nothing to undo.
        if (sent) lose()
        finish(
          new RedisStoreError(
            `Redis did not answer within ${timeoutMs} ms (status "${client.status}").`,
            'timeout',
          ),
        )
      }, timeoutMs)
      timer.unref?.()
      if (client.status === 'wait') client.connect().catch(noop)
      if (client.status === 'ready' || client.status === 'end') resume()
      else wait()
    })
}
