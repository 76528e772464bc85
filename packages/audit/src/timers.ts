/**
 * Waits that do not keep a process alive on their own, until a sink is closing: then every
 * pending wait holds the process open, so a `close()` in progress is never cut short.
 */

/** Exponential backoff with full jitter: up to 100 ms, 200 ms, 400 ms … capped at 30 s. */
export function defaultBackoffMs(attempt: number): number {
  const ceiling = Math.min(30_000, 100 * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
}

type Handle = ReturnType<typeof setTimeout> & { ref?(): unknown; unref?(): unknown }

/**
 * A set of waits; `keepAlive()` makes the pending ones and all later ones hold the process, and
 * `hold()` does the same until the function it returns is called (an awaited `flush()`).
 */
export function waits() {
  const pending = new Map<Handle, () => void>()
  let alive = false
  let holders = 0
  /** Calls `fn` after `ms`, unless the function it returns is called first. */
  const after = (ms: number, fn: () => void): (() => void) => {
    const handle: Handle = setTimeout(() => {
      pending.delete(handle)
      fn()
    }, ms)
    if (!alive && holders === 0) handle.unref?.()
    pending.set(handle, fn)
    return () => {
      clearTimeout(handle)
      pending.delete(handle)
    }
  }
  return {
    after,
    sleep(ms: number): Promise<void> {
      if (ms <= 0) return Promise.resolve()
      return new Promise((resolve) => void after(ms, resolve))
    },
    /** Runs every pending wait now (once a sink gave up, nothing is worth waiting for). */
    wake(): void {
      for (const [handle, fn] of [...pending]) {
        clearTimeout(handle)
        pending.delete(handle)
        fn()
      }
    },
    keepAlive(): void {
      alive = true
      for (const handle of pending.keys()) handle.ref?.()
    },
    hold(): () => void {
      holders++
      for (const handle of pending.keys()) handle.ref?.()
      let released = false
      return () => {
        if (released) return
        released = true
        if (--holders === 0 && !alive) for (const handle of pending.keys()) handle.unref?.()
      }
    },
  }
}
