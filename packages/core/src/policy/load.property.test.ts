/**
 * Bad policies are refused with one typed error, whatever is wrong with them: random values put
 * at random places of the scenario policies, and random JSON, are either read or refused with
 * `invalid_policy`, never another error.
 */
import { readdirSync, readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { TollgateError } from '../errors.js'
import { replaceAt } from '../testing/replace.js'
import { parsePolicy } from './load.js'

const dir = new URL('../../../../examples/policies/', import.meta.url)
const scenarios: unknown[] = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .map((file) => parse(readFileSync(new URL(file, dir), 'utf8')))

const hostile = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -1,
    0,
    -0,
    0.1,
    1e300,
    2 ** 53,
    '',
    ' ',
    '__proto__',
    'constructor',
    null,
    true,
    [],
    {},
    '0s',
    '-5m',
    'P1D',
    'Europe/Nowhere',
  ),
  fc.string(),
  fc.double(),
  fc.jsonValue({ maxDepth: 3 }),
)

/** Read, or refused with `invalid_policy`; anything else fails the property. */
function readOrRefused(input: unknown): boolean {
  try {
    parsePolicy(input as never)
    return true
  } catch (error) {
    return TollgateError.isInstance(error) && error.code === 'invalid_policy'
  }
}

describe('parsePolicy on hostile input', () => {
  it('has the scenario policies to start from', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(6)
    for (const scenario of scenarios) expect(readOrRefused(scenario)).toBe(true)
  })

  it('a scenario policy with any value anywhere is read or refused with invalid_policy', () => {
    fc.assert(
      fc.property(
        fc.nat(scenarios.length - 1),
        fc.array(fc.nat(50), { maxLength: 7 }),
        hostile,
        (i, path, value) => readOrRefused(replaceAt(scenarios[i], path, value)),
      ),
      { numRuns: 3000 },
    )
  })

  it('any JSON value, or text, is read or refused with invalid_policy', () => {
    fc.assert(fc.property(fc.oneof(fc.jsonValue({ maxDepth: 5 }), fc.string()), readOrRefused), {
      numRuns: 2000,
    })
  })
})
