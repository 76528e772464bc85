/**
 * Traffic files: one JSON object per line, a request and what it really used.
 * Blank lines and lines starting with `#` or `//` are skipped.
 */
import { createReadStream } from 'node:fs'
import { type Attributes, MAX_AMOUNT, type Subject } from '@tollgate/core'
import { parseTime, timeError } from '../time.js'

/** One recorded (or synthetic) call. */
export interface TrafficLine {
  /**
   * When the call was made: ms since the epoch (a number, or a string of digits), or an ISO 8601
   * date-time (`T` or a space, `Z`, `±HH:MM` or no offset: UTC) or date (midnight UTC), in the
   * years 1000 to 9999. Impossible dates (February 31) are refused; the local time zone is never used.
   * @example "2026-01-05T09:30:00Z"
   */
  t: number | string
  /** Who asked: dimension → id. */
  subject: Subject
  /** Plan, environment, flags and any other attribute rules match on. */
  attributes?: Attributes
  model?: string
  feature?: string
  /** Input tokens the call used (also its estimate). @default 0 */
  inputTokens?: number
  /** Output tokens the call really produced, settled after the call. @default the estimate */
  outputTokens?: number
  /** Output tokens the call asked for: the estimate held at reserve. @default the policy's `defaults.maxOutputTokens` */
  maxOutputTokens?: number
  /** Input tokens served from the provider's cache. */
  cachedInputTokens?: number
  /** Custom units used, e.g. `{ image_final: 1 }` (estimate and actual). */
  units?: Record<string, number>
  /** How long the call took: its concurrency lease is held that long. @default 0 */
  durationMs?: number
}

/** A traffic line that is not JSON, lacks a time or a subject, or gives an amount the engine refuses. */
export class TrafficError extends Error {
  constructor(
    /** The line number, from 1. */
    readonly line: number,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`)
    this.name = 'TrafficError'
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Token amounts, bounded as the engine bounds them (`MAX_AMOUNT`, a trillion). */
const AMOUNTS = ['inputTokens', 'outputTokens', 'maxOutputTokens', 'cachedInputTokens'] as const
const isAmount = (value: unknown) =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_AMOUNT
const isDuration = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0

/** Check one parsed line and return its time in ms; throws a {@link TrafficError}. */
export function checkLine(value: unknown, line: number): number {
  if (!isObject(value)) throw new TrafficError(line, 'not a JSON object')
  const time = parseTime(value.t)
  if (!time.ok) throw new TrafficError(line, timeError('"t"', time.reason))
  const { at } = time
  if (!isObject(value.subject)) throw new TrafficError(line, '"subject" must be an object of dimension → id')
  if (value.attributes !== undefined && !isObject(value.attributes))
    throw new TrafficError(line, '"attributes" must be an object')
  // usage is checked here, before the reserve: the settle refused it only after the call was held
  for (const field of AMOUNTS) {
    if (value[field] !== undefined && !isAmount(value[field]))
      throw new TrafficError(line, `"${field}" must be a whole number from 0 to ${MAX_AMOUNT}`)
  }
  if (value.durationMs !== undefined && !isDuration(value.durationMs))
    throw new TrafficError(line, '"durationMs" must be a whole number ≥ 0')
  if (value.units !== undefined && !(isObject(value.units) && Object.values(value.units).every(isAmount)))
    throw new TrafficError(line, `"units" must be an object of unit → whole number from 0 to ${MAX_AMOUNT}`)
  const input = (value.inputTokens ?? 0) as number
  if (value.cachedInputTokens !== undefined && (value.cachedInputTokens as number) > input)
    throw new TrafficError(
      line,
      `"cachedInputTokens" (${value.cachedInputTokens}) cannot exceed "inputTokens" (${input}): cached input is part of the input`,
    )
  return at
}

/** Parse one line of text; `null` for blank and comment lines. */
export function parseLine(text: string, line: number): { request: TrafficLine; at: number } | null {
  const trimmed = text.trim()
  if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith('//')) return null
  let value: unknown
  try {
    value = JSON.parse(trimmed)
  } catch (error) {
    throw new TrafficError(line, `not JSON (${(error as Error).message})`)
  }
  return { request: value as TrafficLine, at: checkLine(value, line) }
}

/**
 * The lines of a traffic file (`-` for standard input), as text, in batches: one array per chunk
 * read (about a megabyte), which costs far less per line than `readline`.
 */
export async function* readLines(path: string): AsyncGenerator<string[]> {
  const input =
    path === '-'
      ? process.stdin.setEncoding('utf8')
      : createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })
  let rest = ''
  for await (const chunk of input as AsyncIterable<string>) {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop()!
    yield lines
  }
  if (rest !== '') yield [rest]
}
