/**
 * What the policy types promise about windows and durations, the runtime keeps: every unit and
 * calendar window the types accept is read by `parseDuration` and the schema.
 */
import { describe, expect, it } from 'vitest'
import { parseDuration } from '../duration.js'
import type { DurationUnit, WindowInput, WindowUnit } from './input.js'
import { parsePolicy } from './load.js'

const DURATION_UNITS = ['ms', 's', 'm', 'h', 'd', 'w'] as const satisfies readonly DurationUnit[]
const WINDOW_UNITS = [
  'minute',
  'hour',
  'day',
  'week',
  'month',
  'lifetime',
] as const satisfies readonly WindowUnit[]
// every member of the types is listed above: a unit added to a type and not here does not compile
const everyDurationUnit: DurationUnit extends (typeof DURATION_UNITS)[number] ? true : false = true
const everyWindowUnit: WindowUnit extends (typeof WINDOW_UNITS)[number] ? true : false = true

const accepted = (window: WindowInput) => {
  parsePolicy({ rules: [{ id: 'r', per: 'user', limits: { requests: 1 }, window }] })
  return true
}

describe('the window and duration types', () => {
  it('accept only units parseDuration reads, alone and added up', () => {
    expect(everyDurationUnit && everyWindowUnit).toBe(true)
    for (const unit of DURATION_UNITS) {
      expect(parseDuration(`2${unit}`)).toBeGreaterThan(0)
      expect(parseDuration(`1.5${unit}`)).toBeGreaterThan(0)
      for (const other of DURATION_UNITS) expect(parseDuration(`1${unit}2${other}`)).toBeGreaterThan(0)
    }
  })

  it('accept only windows a policy may have', () => {
    for (const window of WINDOW_UNITS) expect(accepted(window)).toBe(true)
    for (const window of [
      '60s',
      '1h30m',
      '250ms',
      60_000,
      { rolling: '1h', slots: 60 },
      { bucket: '1m' },
    ] as const)
      expect(accepted(window)).toBe(true)
  })
})
