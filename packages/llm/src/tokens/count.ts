/**
 * Token counting with bounded CPU. Text is counted exactly while a per-estimate budget
 * lasts; past it (or for a stretch of text whose BPE cost would grow quadratically) it is
 * bounded by its UTF-8 byte length, which is never below the true count: every token of a
 * byte-level BPE (o200k_base, cl100k_base) covers at least one byte.
 *
 * Text is cut only at safe split points (before a space that sits between two non-space
 * characters, or after a newline followed by a non-space character other than `/`), where
 * the encoders' pre-tokenizers always start a new chunk, so counts of the parts add up to
 * the count of the whole.
 */
import { type EncodingName, exactCounter } from './encoding.js'

/** Limits on the CPU spent counting one request. */
export interface CountOptions {
  /**
   * Characters counted exactly per estimate (all texts of one request together). Past it,
   * text is bounded by its UTF-8 byte length.
   * @default 32_768
   * @example { maxExactChars: 100_000 } // count longer prompts exactly, at more CPU per call
   */
  maxExactChars?: number
  /**
   * Longest stretch of text without a safe split point (e.g. a run of CJK characters, a long
   * base64 string) counted exactly. BPE time grows with the square of a chunk's length, so
   * longer stretches are bounded by their UTF-8 byte length.
   * @default 100
   * @example { maxPieceChars: 200 }
   */
  maxPieceChars?: number
  /**
   * Wall-clock time spent counting exactly per estimate, in ms. Past it, the rest is bounded.
   * The first segment (up to about 512 characters) is always counted. This makes estimates of
   * long texts depend on machine speed; `Infinity` turns it off.
   * @default 3
   * @example { timeBudgetMs: Number.POSITIVE_INFINITY } // deterministic estimates
   */
  timeBudgetMs?: number
}

/** Counts the texts of one request within one budget. */
export interface Counter {
  readonly encoding: EncodingName
  /** Tokens of `text`: exact while the budget lasts, an upper bound past it. */
  count(text: string): number
  /** Whether any text was bounded instead of counted exactly. */
  readonly bounded: boolean
}

const warmed = new Set<EncodingName>()

/** Exact counts are made in segments of about this many characters, so time is checked often. */
const SEGMENT_CHARS = 512

/**
 * Exact counts of recent texts up to 32,768 characters (system prompts, tool schemas and role
 * names repeat from call to call), per encoding, with the longest piece between split points
 * (a counter with a smaller `maxPieceChars` would have bounded the text instead). Two small
 * generations: when the young one is full, the old one is dropped, and a text found in the old
 * one moves back to the young one — so a text that recurs stays, and one-off prompts pass
 * through without making look-ups slow. At most 2 × 256 texts and 2 × 500,000 characters.
 */
const GENERATION_TEXTS = 256
const GENERATION_CHARS = 500_000
const CACHE_MAX_TEXT = 32_768
interface Cached {
  tokens: number
  longestPiece: number
}
class CountCache {
  #young = new Map<string, Cached>()
  #old = new Map<string, Cached>()
  #chars = 0

  get(text: string): Cached | undefined {
    const young = this.#young.get(text)
    if (young !== undefined) return young
    const old = this.#old.get(text)
    if (old !== undefined) this.set(text, old)
    return old
  }

  set(text: string, value: Cached): void {
    if (this.#young.size >= GENERATION_TEXTS || this.#chars + text.length > GENERATION_CHARS) {
      this.#old = this.#young
      this.#young = new Map()
      this.#chars = 0
    }
    this.#young.set(text, value)
    this.#chars += text.length
  }
}
const caches: Record<EncodingName, CountCache> = {
  o200k_base: new CountCache(),
  cl100k_base: new CountCache(),
}

class BudgetCounter implements Counter {
  readonly encoding: EncodingName
  bounded = false
  readonly #exact: (text: string) => number
  readonly #maxPiece: number
  readonly #timeBudget: number
  /** Time spent in exact counting so far (not time since the first count: a stream's deltas arrive over seconds). */
  #spent = 0
  #chars: number
  #counted = false
  #exhausted: boolean

  constructor(encoding: EncodingName, given: CountOptions | undefined) {
    const options = checkCountOptions(given)
    this.encoding = encoding
    const exact = exactCounter(encoding)
    if (!warmed.has(encoding)) {
      exact('warm up') // the encoders build their tables on first use: keep that out of the time budget
      warmed.add(encoding)
    }
    this.#exact = (text) => {
      const started = performance.now()
      const tokens = exact(text)
      this.#spent += performance.now() - started
      return tokens
    }
    this.#maxPiece = options.maxPieceChars ?? 100
    this.#timeBudget = options.timeBudgetMs ?? 3
    this.#chars = options.maxExactChars ?? 32_768
    this.#exhausted = this.#chars <= 0
  }

  #spend(length: number): boolean {
    if (this.#exhausted || length > this.#chars) {
      this.#exhausted = true
      return false
    }
    // the first segment is always counted, so short texts get exact, deterministic counts
    if (!this.#counted) this.#counted = true
    else if (this.#spent > this.#timeBudget) {
      this.#exhausted = true
      return false
    }
    this.#chars -= length
    return true
  }

  count(text: string): number {
    if (typeof text !== 'string')
      throw new TypeError(`countTokens: text must be a string, got ${typeof text}`)
    const n = text.length
    if (n === 0) return 0
    if (this.#exhausted) {
      this.bounded = true
      return utf8Length(text)
    }
    // a text no longer than a piece has no piece too long to count: count it whole
    if (n <= this.#maxPiece && n <= this.#chars) {
      if (this.#spend(n)) return this.#exact(text)
      this.bounded = true
      return utf8Length(text)
    }
    const cacheable = n <= CACHE_MAX_TEXT
    if (cacheable) {
      const hit = caches[this.encoding].get(text)
      // a hit spends the characters a count would have, so estimates do not depend on the cache
      if (hit && hit.longestPiece <= this.#maxPiece && n <= this.#chars) {
        this.#chars -= n
        return hit.tokens
      }
    }
    const wasBounded = this.bounded
    this.bounded = false
    const { tokens, longestPiece } = this.#scan(text)
    if (cacheable && !this.bounded) caches[this.encoding].set(text, { tokens, longestPiece })
    this.bounded ||= wasBounded
    return tokens
  }

  /** Count `text` exactly at safe split points while the budget lasts; bound the rest. */
  #scan(text: string): Cached {
    const n = text.length
    const maxPiece = this.#maxPiece
    let total = 0
    let segment = 0 // start of the segment not yet counted
    let piece = 0 // start of the current piece (text between split points)
    let longestPiece = 0
    const bound = (from: number, to: number) => {
      this.bounded = true
      total += utf8Length(text, from, to)
    }
    /** Count [segment, end) exactly if the budget allows; else bound everything from `segment` on. */
    const flush = (end: number): boolean => {
      if (end <= segment) return true
      if (!this.#spend(end - segment)) {
        bound(segment, n)
        return false
      }
      total += this.#exact(segment === 0 && end === n ? text : text.slice(segment, end))
      segment = end
      return true
    }
    for (let p = 1; p < n; p++) {
      if (p - segment > this.#chars) {
        // past what the budget can count: stop scanning, bound the rest from the last split point
        if (flush(piece)) {
          this.#exhausted = true
          bound(piece, n)
        }
        return { tokens: total, longestPiece }
      }
      if (!isSplit(text, p, n)) continue
      if (p - piece > longestPiece) longestPiece = p - piece
      if (p - piece > maxPiece) {
        if (!flush(piece)) return { tokens: total, longestPiece }
        bound(piece, p)
        segment = p
      } else if (p - segment >= SEGMENT_CHARS) {
        if (!flush(p)) return { tokens: total, longestPiece }
      }
      piece = p
    }
    if (n - piece > longestPiece) longestPiece = n - piece
    if (n - piece > maxPiece) {
      if (flush(piece)) bound(piece, n)
    } else flush(n)
    return { tokens: total, longestPiece }
  }
}

/**
 * The options, checked: a count that is no number made every count throw, a NaN one counted nothing
 * exactly without saying so.
 */
function checkCountOptions(given: CountOptions | undefined): CountOptions {
  const options = given ?? {}
  if (typeof options !== 'object') throw new TypeError('count options must be an object')
  for (const name of ['maxExactChars', 'maxPieceChars', 'timeBudgetMs'] as const) {
    const value: unknown = options[name]
    if (value !== undefined && !(typeof value === 'number' && value >= 0))
      throw new TypeError(`${name} must be a number, 0 or more`)
  }
  return options
}

/**
 * A counter for one request.
 *
 * @example
 * const counter = createCounter('o200k_base')
 * counter.count('Hello, world!') // 4
 */
export function createCounter(encoding: EncodingName, options?: CountOptions): Counter {
  return new BudgetCounter(encoding, options)
}

/** Whether the encoders' pre-tokenizers always start a chunk at `p` (see the module comment). */
function isSplit(text: string, p: number, n: number): boolean {
  const here = text.charCodeAt(p)
  const before = text.charCodeAt(p - 1)
  if (here === 0x20) return p + 1 < n && !isSpace(before) && !isSpace(text.charCodeAt(p + 1))
  return before === 0x0a && here !== 0x2f && !isSpace(here)
}

/** `\s` in JavaScript regular expressions, for one UTF-16 unit. */
export function isSpace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d)
  if (code < 0xa0) return false
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  )
}

const nodeBuffer = (globalThis as { Buffer?: { byteLength(text: string, encoding: 'utf8'): number } }).Buffer

/** UTF-8 byte length of `text[from, to)` (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8Length(text: string, from = 0, to = text.length): number {
  if (nodeBuffer && to - from > 256) return nodeBuffer.byteLength(text.slice(from, to), 'utf8')
  let bytes = 0
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < to) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

/**
 * Tokens of one text with the given encoding, within a fresh budget.
 *
 * @example
 * countTokens('Hello, world!') // { tokens: 4, exact: true }
 */
export function countTokens(
  text: string,
  encoding: EncodingName = 'o200k_base',
  options?: CountOptions,
): { tokens: number; exact: boolean } {
  const counter = createCounter(encoding, options)
  const tokens = counter.count(text)
  return { tokens, exact: !counter.bounded }
}
