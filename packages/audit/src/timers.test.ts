import { expect, it } from 'vitest'
import { waits } from './timers.js'

/** Timers that keep this process alive (unref'd ones are not listed). */
const active = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

it('a wait holds the process open only while a flush or a close is waiting on it', () => {
  const timers = waits()
  const base = active()
  void timers.sleep(60_000)
  expect(active()).toBe(base) // a retry's back-off alone never keeps a process alive
  const release = timers.hold() // an awaited flush(): the process exited mid-retry before
  expect(active()).toBe(base + 1)
  void timers.sleep(60_000)
  expect(active()).toBe(base + 2)
  const again = timers.hold()
  release()
  expect(active()).toBe(base + 2) // another flush still waits
  again()
  again() // once only
  expect(active()).toBe(base)
})
