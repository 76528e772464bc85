/**
 * Options of the client wrappers, and what they report after each call.
 */
import type { AllowedDecision, Attributes, CommitResult, Subject } from '@tollgate/core'
import type { CountOptions } from '../tokens/count.js'
import type { MeteredUsage } from '../usage/meter.js'

/** The API a wrapped call went to. */
export type Api = 'chat.completions' | 'responses' | 'embeddings' | 'messages'

/** The call being made, for options given as functions. */
export interface CallInfo {
  api: Api
  /** The request body as the caller wrote it. */
  body: Readonly<Record<string, unknown>>
}

/** A value, or a function called once per call (e.g. to read the subject from async context). */
export type PerCall<T> = T | ((call: CallInfo) => T | Promise<T>)

/** How a wrapped call ended. */
export type CallEnd =
  /** The result arrived, or the stream ran to its end. */
  | 'completed'
  /** The caller stopped the stream (`break`, `controller.abort()`, an abort signal). */
  | 'aborted'
  /** The stream broke (connection lost, server error mid-way). */
  | 'broken'
  /** The call failed before anything was billed (an HTTP error, no connection): released. */
  | 'failed'

/** Reported after every admitted call, once its reservation is settled or released. */
export interface SettleEvent {
  api: Api
  decision: AllowedDecision
  end: CallEnd
  /** `released` for failed calls; `settled` otherwise. */
  outcome: 'settled' | 'released'
  /** What was settled, `null` for a release. `estimated: true` flags output counted from streamed text. */
  metered: MeteredUsage | null
  /** The store's answer, `null` when the settle or release itself failed (see `error`). */
  result: CommitResult | null
  /** The call's error (for `failed`, `broken`) or the settle's. */
  error?: unknown
}

/** Options of {@link wrapOpenAI} (and the base of {@link AnthropicWrapOptions}). */
export interface WrapOptions extends CountOptions {
  /**
   * Who is calling: a subject, or a function called per call.
   * @example { subject: () => ({ org: als.getStore()!.org, user: als.getStore()!.user }) }
   */
  subject: PerCall<Subject>
  /**
   * The product feature the calls serve, for rules that match or partition on it.
   * @default undefined
   * @example { feature: 'summarize' }
   */
  feature?: PerCall<string | undefined>
  /**
   * Plan, environment, flags and other attributes rules match on.
   * @default {}
   * @example { attributes: { plan: 'free', environment: 'production' } }
   */
  attributes?: PerCall<Attributes | undefined>
  /**
   * Output tokens to reserve when a request names no `max_tokens` / `max_completion_tokens` /
   * `max_output_tokens`.
   * @default the policy's `defaults.maxOutputTokens` (1024 unless set)
   * @example { maxOutputTokens: 4096 }
   */
  maxOutputTokens?: number
  /**
   * Write that default cap into requests that name none (`max_completion_tokens` for Chat
   * Completions, `max_output_tokens` for Responses, `max_tokens` for Anthropic), so the
   * provider cannot produce more than was reserved.
   * @default false
   * @example { injectMaxOutputTokens: true }
   */
  injectMaxOutputTokens?: boolean
  /**
   * Tokens counted for an input part whose size is unknown before the call (audio, files, PDFs).
   * @default 2000
   * @example { opaquePartTokens: 8000 }
   */
  opaquePartTokens?: number
  /**
   * What an aborted or broken stream settles when the provider sent no usage: output counted
   * from the streamed text (`streamed`), or the whole reservation (`reserved`, budget-safe for
   * reasoning models whose hidden reasoning tokens are billed but never streamed).
   * @default 'streamed'
   * @example { unfinishedStreams: 'reserved' }
   */
  unfinishedStreams?: 'streamed' | 'reserved'
  /**
   * Called once per admitted call after its settle or release. Errors it throws are swallowed.
   * @default undefined
   * @example { onSettle: (e) => { if (e.metered?.estimated) log.warn('usage estimated', e.decision.id) } }
   */
  onSettle?: (event: SettleEvent) => void
}

/** Options of {@link wrapAnthropic}. */
export interface AnthropicWrapOptions extends WrapOptions {
  /**
   * Share added to text counted with o200k_base (Anthropic's tokenizer is not public), for
   * input estimates and for output counted from streamed text.
   * @default 0.2
   * @example { margin: 0.35 }
   */
  margin?: number
}
