import { describe, expect, it } from 'vitest'
import { unhandledRejections } from './unhandled.js'

/**
 * Runs `body` with the runner's own `unhandledRejection` listeners set aside, so that a rejection
 * left unhandled on purpose is not reported as an error of the run.
 */
async function setAside<T>(body: () => Promise<T>): Promise<T> {
  const runner = process.listeners('unhandledRejection')
  process.removeAllListeners('unhandledRejection')
  try {
    return await body()
  } finally {
    for (const listener of runner) process.on('unhandledRejection', listener)
  }
}

describe('unhandledRejections', () => {
  it('answers every rejection nobody handled while the body ran, in order, and none that was handled', async () => {
    const first = new Error('first')
    const second = new Error('second')
    const reasons = await setAside(() =>
      unhandledRejections(async () => {
        void Promise.reject(first)
        Promise.reject(new Error('handled')).catch(() => {})
        await Promise.resolve()
        void Promise.reject(second)
      }),
    )
    expect(reasons).toEqual([first, second])
    expect(reasons[0]).toBe(first)
  })

  it('waits for the body, answers [] when all is handled, and rethrows what the body throws', async () => {
    let done = false
    expect(
      await unhandledRejections(async () => {
        await Promise.resolve()
        await Promise.resolve()
        done = true
      }),
    ).toEqual([])
    expect(done).toBe(true)
    const boom = new Error('boom')
    const thrown = await setAside(() =>
      unhandledRejections(async () => {
        throw boom
      }).catch((error: unknown) => error),
    )
    expect(thrown).toBe(boom)
  })

  it('stops listening once it answers, or throws', async () => {
    const before = process.listenerCount('unhandledRejection')
    await unhandledRejections(() => undefined)
    expect(process.listenerCount('unhandledRejection')).toBe(before)
    await unhandledRejections(() => {
      throw new Error('boom')
    }).catch(() => {})
    expect(process.listenerCount('unhandledRejection')).toBe(before)
  })
})
