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
