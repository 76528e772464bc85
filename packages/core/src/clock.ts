/**
 * Where time comes from. The engine and the memory store read one injectable clock;
 * the Redis store reads Redis' clock instead.
 */

/** A source of time in milliseconds since the epoch. */
export interface Clock {
  now(): number
}

/** The system clock (`Date.now`). */
export const systemClock: Clock = { now: () => Date.now() }

/**
 * What is wrong with a clock given as an option, read once; `undefined` when it can be used. A
 * clock's `now()` returns milliseconds since the epoch as a finite number: one that returned
 * `undefined` or `NaN` left the memory store at its first instant for good (every window open
 * forever, a spent limit never reset), and a string or `Date` failed every call.
 *
 * @example const problem = clockProblem(options.clock); if (problem) throw new TypeError(`myStore: ${problem}`)
 */
export function clockProblem(clock: unknown): string | undefined {
  if (typeof (clock as Partial<Clock> | null)?.now !== 'function') return 'clock must have a now() method'
  const reading: unknown = (clock as Clock).now()
  if (typeof reading === 'number' && Number.isFinite(reading)) return undefined
  const got =
    typeof reading === 'number' ? String(reading) : reading instanceof Date ? 'a Date' : typeof reading
  return `clock.now() must return milliseconds since the epoch (a finite number), got ${got}`
}

/**
 * Throws a `TypeError` naming `who` when a clock given as an option cannot be used (see
 * {@link clockProblem}); a missing clock (`undefined`) is fine.
 *
 * @example checkClock('myStore', options.clock)
 */
export function checkClock(who: string, clock: unknown): void {
  if (clock === undefined) return
  const problem = clockProblem(clock)
  if (problem) throw new TypeError(`${who}: ${problem}`)
}
