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
 * A counter for one request.
 *
 * @example
 * const counter = createCounter('o200k_base')
 * counter.count('Hello, world!') // 4
 */
export function createCounter(encoding: EncodingName, options: CountOptions = {}): Counter {
  const exact = exactCounter(encoding)
  if (!warmed.has(encoding)) {
    exact('warm up') // the encoders build their tables on first use: keep that out of the time budget
    warmed.add(encoding)
  }
  const maxPiece = options.maxPieceChars ?? 100
  const timeBudget = options.timeBudgetMs ?? 3
  const started = performance.now()
  let chars = options.maxExactChars ?? 32_768
  let bounded = false
  let counted = false
  let exhausted = chars <= 0

  function spend(length: number): boolean {
    if (exhausted || length > chars) {
      exhausted = true
      return false
    }
    // the first segment is always counted, so short texts get exact, deterministic counts
    if (counted && performance.now() - started > timeBudget) {
      exhausted = true
      return false
    }
    counted = true
    chars -= length
    return true
  }

  function count(text: string): number {
    const n = text.length
    if (n === 0) return 0
    let total = 0
    let segment = 0 // start of the segment not yet counted
    let piece = 0 // start of the current piece (text between split points)
    const bound = (from: number, to: number) => {
      bounded = true
      total += utf8Length(text, from, to)
    }
    /** Count [segment, end) exactly if the budget allows; else bound everything from `segment` on. */
    const flush = (end: number): boolean => {
      if (end <= segment) return true
      if (!spend(end - segment)) {
        bound(segment, n)
        return false
      }
      total += exact(text.slice(segment, end))
      segment = end
      return true
    }
    if (exhausted) {
      bound(0, n)
      return total
    }
    for (let p = 1; p < n; p++) {
      if (p - segment > chars) {
        // past what the budget can count: stop scanning, bound the rest from the last split point
        if (!flush(piece)) return total
        exhausted = true
        bound(piece, n)
        return total
      }
      if (!isSplit(text, p, n)) continue
      if (p - piece > maxPiece) {
        if (!flush(piece)) return total
        bound(piece, p)
        segment = p
      } else if (p - segment >= SEGMENT_CHARS) {
        if (!flush(p)) return total
      }
      piece = p
    }
    if (n - piece > maxPiece) {
      if (!flush(piece)) return total
      bound(piece, n)
    } else flush(n)
    return total
  }

  return {
    encoding,
    count,
    get bounded() {
      return bounded
    },
  }
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
