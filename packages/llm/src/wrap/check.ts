/**
 * The wrappers' options, checked once when a client is wrapped. Numbers that are no numbers
 * (`NaN`, negative counts) were taken as given before: `attempts: { max: NaN }` made every call
 * throw `undefined`, and the others changed counting or retries without a word.
 */
import type { AnthropicWrapOptions } from './options.js'

type Check = (value: unknown) => boolean

const whole: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const positiveWhole: Check = (v) => whole(v) && (v as number) >= 1
const finite: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0
/** A time budget may be `Infinity` (count every text exactly). */
const budget: Check = (v) => typeof v === 'number' && v >= 0
const flag: Check = (v) => typeof v === 'boolean'
const fn: Check = (v) => typeof v === 'function'
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    values.includes(v as string)

const WHAT: Record<string, string> = {
  whole: 'a whole number, 0 or more',
  positiveWhole: 'a whole number, 1 or more',
  finite: 'a finite number, 0 or more',
  budget: 'a number of ms, 0 or more',
  flag: 'true or false',
  fn: 'a function',
}

const OPTIONS: Record<string, [Check, string]> = {
  maxOutputTokens: [whole, WHAT.whole!],
  opaquePartTokens: [whole, WHAT.whole!],
  maxExactChars: [whole, WHAT.whole!],
  maxPieceChars: [positiveWhole, WHAT.positiveWhole!],
  timeBudgetMs: [budget, WHAT.budget!],
  margin: [finite, WHAT.finite!],
  injectMaxOutputTokens: [flag, WHAT.flag!],
  cutOffStreams: [flag, WHAT.flag!],
  onSettle: [fn, WHAT.fn!],
  unfinishedStreams: [oneOf('streamed', 'reserved'), "'streamed' or 'reserved'"],
  failedAttempts: [oneOf('count', 'release'), "'count' or 'release'"],
}

const ATTEMPTS: Record<string, [Check, string]> = {
  max: [positiveWhole, WHAT.positiveWhole!],
  retries: [whole, WHAT.whole!],
  initialDelayMs: [finite, WHAT.finite!],
  maxDelayMs: [finite, WHAT.finite!],
  sleep: [fn, WHAT.fn!],
  now: [fn, WHAT.fn!],
}

/** Throws a `TypeError` naming the first option of `who` (`wrapOpenAI`, `wrapAnthropic`) that cannot work. */
export function checkWrapOptions(who: string, options: AnthropicWrapOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${who}: options must be an object`)
  if (options.subject === undefined) throw new TypeError(`${who}: subject is required`)
  const refuse = (name: string, what: string, value: unknown) => {
    throw new TypeError(`${who}: ${name} must be ${what}, got ${describe(value)}`)
  }
  const record = options as unknown as Record<string, unknown>
  for (const [name, [ok, what]] of Object.entries(OPTIONS))
    if (record[name] !== undefined && !ok(record[name])) refuse(name, what, record[name])
  const { shrinkOutput, attempts } = options
  if (shrinkOutput !== undefined && typeof shrinkOutput !== 'boolean') {
    if (typeof shrinkOutput !== 'object' || shrinkOutput === null)
      refuse('shrinkOutput', 'true, false or { min }', shrinkOutput)
    else if (shrinkOutput.min !== undefined && !positiveWhole(shrinkOutput.min))
      refuse('shrinkOutput.min', WHAT.positiveWhole!, shrinkOutput.min)
  }
  if (attempts === undefined) return
  if (typeof attempts !== 'object' || attempts === null) refuse('attempts', 'an object', attempts)
  const fields = attempts as unknown as Record<string, unknown>
  for (const [name, [ok, what]] of Object.entries(ATTEMPTS))
    if (fields[name] !== undefined && !ok(fields[name])) refuse(`attempts.${name}`, what, fields[name])
  const { fallbacks } = attempts
  if (
    fallbacks !== undefined &&
    typeof fallbacks !== 'function' &&
    (typeof fallbacks !== 'object' || fallbacks === null)
  )
    refuse('attempts.fallbacks', 'a map of model → models, or a function', fallbacks)
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40))
  if (typeof value === 'number') return String(value)
  return value === null ? 'null' : typeof value
}
