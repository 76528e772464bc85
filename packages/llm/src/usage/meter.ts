/**
 * A meter watches one call's result or stream and says what to settle: the provider's usage
 * when it sent one, else output tokens counted from the text that was streamed (flagged).
 */
import type { Usage } from '@tollgate/core'
import { createCounter } from '../tokens/count.js'
import type { EncodingName } from '../tokens/encoding.js'

/** What a call used, as far as Tollgate could tell. */
export interface MeteredUsage {
  /** What to settle with. Fields left out keep their estimate (core semantics). */
  usage: Usage
  /**
   * `true` when the provider reported no output usage (a stream aborted, cut, or sent without
   * usage): `usage.outputTokens` was counted from the streamed text, and input keeps its estimate
   * unless the provider reported it.
   */
  estimated: boolean
  /** Reasoning tokens the provider reported (already included in `outputTokens`). */
  reasoningTokens?: number
  /** Anthropic cache writes, by cache lifetime (included in `inputTokens`). */
  cacheWriteTokens?: { '5m': number; '1h': number }
}

/** Watches one call. */
export interface Meter {
  /** Observe one streamed item; answers `false` when the item must be hidden from the caller. */
  push(item: unknown): boolean
  /** Observe a whole, non-streamed result. */
  result(value: unknown): void
  /** What the call used, from what was observed. */
  finish(): MeteredUsage
  /** The output text observed so far (for stream cut-off; a meter without it is never cut off). */
  text?(): string
  /**
   * The output text observed since the previous call (all of it on the first): what stream
   * cut-off counts after each item, so its work per item follows the item's text, not the whole
   * text so far. A meter without it is read through `text()`.
   */
  newText?(): string
}

/**
 * A meter's output text: all of it, and what was added since the last `take()`. The second copy is
 * kept only once `take()` was called (a stream that is cut off), and holds one item's text.
 *
 * @example
 * const log = new TextLog(); log.add('Hello'); log.take() // 'Hello'
 */
export class TextLog {
  #all = ''
  #fresh: string | undefined
  add(piece: string): void {
    if (!piece) return
    this.#all += piece
    if (this.#fresh !== undefined) this.#fresh += piece
  }
  get text(): string {
    return this.#all
  }
  take(): string {
    const fresh = this.#fresh ?? this.#all
    this.#fresh = ''
    return fresh
  }
}

/** Counting streamed text happens once per call, after the stream: a wider budget than estimates. */
const STREAMED_TEXT_BUDGET = { maxExactChars: 262_144, timeBudgetMs: 25 }

/** Output tokens of text the caller received: counted exactly, or bounded above for huge output. */
export function countStreamed(text: string, encoding: EncodingName): number {
  return createCounter(encoding, STREAMED_TEXT_BUDGET).count(text)
}

/** A count from a provider: a finite number ≥ 0, rounded up to a whole one (a fraction is a quirk). */
export const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.ceil(value) : undefined

export const obj = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined

export const str = (value: unknown): string => (typeof value === 'string' ? value : '')
