/**
 * Money is held as integer micro-units of the policy's currency (1 USD = 1,000,000).
 * Prices are held as micro-units per million tokens, so that each part of a cost is an exact
 * integer product rounded up once (a call's cost is the sum of its rounded parts).
 */

/** Micro-units per currency unit. */
export const MICROS = 1_000_000

/** Currency units (as written in a policy) to integer micro-units. */
export function toMicros(amount: number): number {
  return Math.round(amount * MICROS)
}

/** Micro-units to currency units, for display. */
export function fromMicros(micros: number): number {
  return micros / MICROS
}

/**
 * Cost in micro-units of `quantity` items priced at `microsPerMillion` per million items,
 * rounded up so that usage is never under-charged.
 */
export function costOf(quantity: number, microsPerMillion: number): number {
  if (quantity === 0 || microsPerMillion === 0) return 0
  const product = quantity * microsPerMillion
  if (Number.isSafeInteger(product)) return Math.ceil(product / MICROS)
  const big = BigInt(Math.round(quantity)) * BigInt(Math.round(microsPerMillion))
  return Number((big + BigInt(MICROS - 1)) / BigInt(MICROS))
}
