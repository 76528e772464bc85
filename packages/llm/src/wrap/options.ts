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
  /**
   * The attempt failed before anything was billed (an HTTP error, no connection): settled with
   * no tokens and no cost, so it still counts as a request (`failedAttempts`), or released.
   */
  | 'failed'
  /** Tollgate ended the stream: its output reached what the remaining budget allows (`cutOffStreams`). */
  | 'cut'

/** Which attempt of one original call a reservation was for. */
export interface AttemptInfo {
  /** 1 for the first attempt, 2 for the next (a retry or a fallback)… */
  number: number
  /** `primary` for the model the caller asked for (and its retries), `fallback` for a fallback model. */
  kind: 'primary' | 'fallback'
  /** The model asked for in this attempt (before any downgrade by the policy). */
  model: string | undefined
  /** The id of the original action, the same for every attempt (the subject's `action` when it has one). */
  action: string
}

/** Reported after every admitted call, once its reservation is settled or released. */
export interface SettleEvent {
  api: Api
  decision: AllowedDecision
  /** The attempt this reservation was for: each retry and fallback is reserved and reported apart. */
  attempt: AttemptInfo
  /** The output cap written into the request when `shrinkOutput` shrank it, else `undefined`. */
  shrunkTo?: number
  end: CallEnd
  /** `released` for failed attempts with `failedAttempts: 'release'` (or never sent); `settled` otherwise. */
  outcome: 'settled' | 'released'
  /** What was settled, `null` for a release. `estimated: true` flags output counted from streamed text. */
  metered: MeteredUsage | null
  /** The store's answer, `null` when the settle or release itself failed (see `error`). */
  result: CommitResult | null
  /** The call's error (for `failed`, `broken`) or the settle's. */
  error?: unknown
}

/** Retries and fallbacks (SCENARIOS S5): every attempt is reserved and checked on its own. */
export interface AttemptOptions {
  /**
   * Most provider attempts per original call: the first, its retries and the fallbacks together.
   * @default 1 + `retries`, plus 1 + `retries` per fallback model
   * @example { attempts: { max: 2, fallbacks: { 'gpt-4o': ['gpt-4o-mini'] } } } // one primary, one fallback
   */
  max?: number
  /**
   * Retries of one model after a capacity error (HTTP 408, 409, 429, 5xx, 529, no connection,
   * a timeout) before moving on to the next fallback model. A per-request `maxRetries` option
   * overrides it for that call.
   * @default the client's `maxRetries` (2 unless set) when the model has no fallbacks, else 0
   * @example { attempts: { retries: 1 } }
   */
  retries?: number
  /**
   * Models to try, in order, after the model the caller named fails with a capacity error:
   * by that model's name, or a function of the call. Each fallback attempt is reserved under
   * its own model with the attribute `attempt: 'fallback'`, so rules on that model apply.
   * @default {} (no fallbacks)
   * @example { attempts: { fallbacks: { 'gpt-4o': ['gpt-4o-mini'], 'claude-opus-4-5': ['claude-sonnet-4-5'] } } }
   */
  fallbacks?:
    | Readonly<Record<string, readonly string[]>>
    | ((call: CallInfo) => readonly string[] | undefined)
  /**
   * First backoff delay in ms before a retry; it doubles per retry of the same model, up to
   * `maxDelayMs`, minus up to 25% jitter. A `retry-after-ms` or `retry-after` header of the
   * error (up to 60 s) is used instead; a longer one ends that model's retries.
   * @default 500
   * @example { attempts: { initialDelayMs: 250 } }
   */
  initialDelayMs?: number
  /**
   * Longest backoff delay in ms.
   * @default 8000
   * @example { attempts: { maxDelayMs: 2000 } }
   */
  maxDelayMs?: number
  /**
   * Waits between attempts; resolve early when `signal` aborts. Inject it in tests.
   * @default a `setTimeout` that the request's abort signal cuts short
   * @example { attempts: { sleep: async (ms) => { waits.push(ms) } } }
   */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /**
   * The clock for `retry-after` headers that carry an HTTP date, in ms since the epoch.
   * @default Date.now
   * @example { attempts: { now: () => clock.now() } }
   */
  now?: () => number
}

/** Options of {@link wrapOpenAI} (and the base of {@link AnthropicWrapOptions}). */
export interface WrapOptions extends CountOptions {
  /**
   * Who is calling: a subject, or a function called per call. When a rule of the policy counts
   * `per: action`, every attempt's subject also carries `action`, the id of the original call:
   * the subject's own `action` when it has one (e.g. the user action that led to the call), else
   * an id unique to the call. Every attempt's attributes carry `attempt: 'primary' | 'fallback'`.
   * Together they let rules count attempts per action (SCENARIOS S5).
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
   * What a stream that does not run to its end — aborted, broken, or cut off by `cutOffStreams`
   * — settles when the provider sent no output usage. `streamed`: the usage the provider reported
   * so far, output counted from the streamed text. `reserved`: the whole reservation, or more where
   * what was reported or streamed is more — input tokens, output tokens and cost each at least the
   * hold's and at least what `streamed` settles (budget-safe for reasoning models, whose hidden
   * reasoning tokens are billed but never streamed). A stream that runs to its end without usage
   * settles its text either way.
   * @default 'streamed'
   * @example { unfinishedStreams: 'reserved' }
   */
  unfinishedStreams?: 'streamed' | 'reserved'
  /**
   * Retries and fallbacks, driven by the wrapper so that every attempt is reserved and checked
   * again: the SDK's own retries are turned off for each request (`maxRetries: 0`). Quota and
   * billing refusals are never retried: a `TollgateError`, and provider errors 402, 403 and
   * `insufficient_quota`.
   * @default retries as the client's `maxRetries`, no fallbacks
   * @example { attempts: { max: 2, fallbacks: { 'gpt-4o': ['gpt-4o-mini'] } } }
   */
  attempts?: AttemptOptions
  /**
   * What a failed attempt (an HTTP error, no connection, a timeout) leaves behind. `count`:
   * it is settled with no tokens and no cost, so it still counts as one request — rules on
   * `requests` (rate limits, a retry budget per action) see every attempt. `release`: the whole
   * hold is returned, as if the attempt never happened. A request the SDK refused to send is
   * always released.
   * @default 'count'
   * @example { failedAttempts: 'release' }
   */
  failedAttempts?: 'count' | 'release'
  /**
   * End a stream whose output reaches what the budget left at the reservation allows (the
   * `tokens`, `outputTokens` and `cost` limits the decision matched, counting its own hold):
   * the caller's iteration ends early and the call settles from what was streamed, flagged,
   * with `end: 'cut'`. Useful when requests name no output cap.
   * @default false
   * @example { cutOffStreams: true }
   */
  cutOffStreams?: boolean
  /**
   * When a reservation is refused only by `tokens`, `outputTokens` or `cost` limits, reserve
   * again with the output cap shrunk to what those limits allow, and write that cap into the
   * request (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) — instead of refusing.
   * `min` is the smallest cap worth a call: below it, the refusal stands.
   * @default false
   * @example { shrinkOutput: { min: 256 } }
   */
  shrinkOutput?: boolean | { min?: number }
  /**
   * Called once per admitted attempt after its settle or release. Errors it throws are swallowed.
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
