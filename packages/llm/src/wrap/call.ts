/**
 * One gated call: the attempts of one original action — the model the caller named, its
 * retries, then the fallback models — each reserved and checked on its own (`attempt.ts`),
 * then the result parsed and settled, or the stream metered. The SDK's own retries are turned
 * off per request (`maxRetries: 0`) and driven here, with the SDKs' backoff policy, so that a
 * retry is never made inside a reservation that was checked for the first attempt only.
 */
import { randomUUID } from 'node:crypto'
import { type Attributes, type Subject, type Tollgate, TollgateError } from '@tollgate/core'
import type { EstimateOptions } from '../estimate/types.js'
import {
  type Adapter,
  type Attempt,
  type Body,
  type CallContext,
  openAttempt,
  type SdkMethod,
} from './attempt.js'
import type { AttemptOptions, CallInfo, PerCall, WrapOptions } from './options.js'
import { GatedPromise, type WithResponse } from './promise.js'
import { settleFromResponse } from './raw.js'
import { classify, retryDelay, sleep } from './retry.js'
import { isAbort, meterStream } from './stream.js'

export type { Adapter, SdkMethod } from './attempt.js'

const NO_ATTEMPTS: AttemptOptions = {}

/** Action ids: unique per process (a random prefix) and cheap per call (a sequence). */
const PROCESS = randomUUID()
let sequence = 0
const nextAction = () => `${PROCESS}.${(sequence++).toString(36)}`

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null | undefined)?.then === 'function'

function perCall<T>(value: PerCall<T>, call: CallInfo): T | Promise<T> {
  return typeof value === 'function' ? (value as (call: CallInfo) => T | Promise<T>)(call) : value
}

/**
 * The wrapped method: same arguments and result as `original`. `client` is read for its
 * `maxRetries`, the default number of retries.
 *
 * @example
 * const create = gatedMethod(gate, options, chatAdapter, original.bind(resource), client)
 */
export function gatedMethod<O extends WrapOptions>(
  gate: Tollgate,
  options: O,
  adapter: Adapter<O>,
  original: SdkMethod,
  client: object,
): SdkMethod {
  const estimateOptions: EstimateOptions = {
    maxExactChars: options.maxExactChars,
    maxPieceChars: options.maxPieceChars,
    timeBudgetMs: options.timeBudgetMs,
    opaquePartTokens: options.opaquePartTokens,
    defaultMaxOutputTokens: options.maxOutputTokens ?? gate.policy.maxOutputTokens,
  }
  // the subject carries the action id only when a rule counts per action (it costs the engine a key)
  const byAction = gate.policy.rules.some((rule) => rule.per.includes('action'))
  return (body, requestOptions) => {
    const ready = run(
      gate,
      options,
      adapter,
      original,
      client,
      estimateOptions,
      byAction,
      body ?? {},
      requestOptions,
    )
    ready.catch(() => {}) // rejections reach the caller through the promise below
    return new GatedPromise({
      data: () => parsed(ready),
      withResponse: () => ready.then(sdkWithResponse),
      raw: () => raw(ready),
    })
  }
}

function sdkWithResponse(attempt: Attempt): Promise<WithResponse<unknown>> {
  if (attempt.call.withResponse) return attempt.call.withResponse()
  return Promise.resolve({ data: undefined, response: undefined as unknown as Response })
}

/** The caller's subject, feature and attributes; the subject gains the action id when `byAction`. */
async function identify<O extends WrapOptions>(options: O, info: CallInfo, byAction: boolean) {
  const subject = perCall(options.subject, info)
  const feature = perCall(options.feature, info)
  const attributes = perCall(options.attributes, info)
  const resolved: [Subject, string | undefined, Attributes | undefined] =
    isThenable(subject) || isThenable(feature) || isThenable(attributes)
      ? await Promise.all([subject, feature, attributes])
      : [subject, feature, attributes]
  const action = resolved[0].action ?? nextAction()
  return {
    subject: resolved[0].action === undefined && byAction ? { ...resolved[0], action } : resolved[0],
    feature: resolved[1],
    attributes: resolved[2] ?? {},
    action,
  }
}

async function run<O extends WrapOptions>(
  gate: Tollgate,
  options: O,
  adapter: Adapter<O>,
  original: SdkMethod,
  client: object,
  estimateOptions: EstimateOptions,
  byAction: boolean,
  body: Body,
  requestOptions: unknown,
): Promise<Attempt> {
  const info: CallInfo = { api: adapter.api, body }
  const caller = (requestOptions ?? {}) as Record<string, unknown>
  const ctx: CallContext<O> = {
    gate,
    options,
    adapter,
    original,
    estimateOptions,
    body,
    requestOptions: { ...caller, maxRetries: 0 },
    ...(await identify(options, info, byAction)),
  }
  const attempts = options.attempts ?? NO_ATTEMPTS
  const model = typeof body.model === 'string' ? body.model : undefined
  const models = [model, ...fallbacksOf(attempts, model, info)]
  const asked = caller.maxRetries
  if (asked !== undefined && !(typeof asked === 'number' && Number.isSafeInteger(asked) && asked >= 0))
    throw new TypeError(
      `maxRetries must be a whole number, 0 or more, got ${typeof asked === 'number' ? asked : typeof asked}`,
    )
  const retries =
    (asked as number | undefined) ??
    attempts.retries ??
    (models.length > 1 ? 0 : ((client as { maxRetries?: number }).maxRetries ?? 2))
  const max = Math.max(1, attempts.max ?? models.length * (1 + retries))
  const signal = caller.signal as AbortSignal | undefined
  const wait = attempts.sleep ?? sleep
  let number = 0
  let last: unknown
  for (let m = 0; m < models.length; m++) {
    for (let retry = 0; number < max; retry++) {
      number++
      let attempt: Attempt
      try {
        const kind = m === 0 ? 'primary' : 'fallback'
        attempt = await openAttempt(ctx, { number, kind, model: models[m], action: ctx.action })
      } catch (error) {
        // the first refusal is the caller's answer; a later one ends this model's attempts
        if (number === 1 || !TollgateError.isInstance(error)) throw error
        last = new TollgateError(error.code, error.message, { decision: error.decision, cause: last })
        break
      }
      try {
        await (attempt.call.asResponse ? attempt.call.asResponse() : attempt.call)
        return attempt
      } catch (error) {
        await attempt.finish('failed', error)
        if (classify(error) === 'final') throw error
        last = error
      }
      if (retry >= retries || number >= max) break
      const delay = retryDelay(last, retry, attempts)
      if (delay === null) break
      await wait(delay, signal)
      if (signal?.aborted) throw await abortError(ctx, signal)
    }
  }
  throw last
}

function fallbacksOf(attempts: AttemptOptions, model: string | undefined, info: CallInfo): readonly string[] {
  const fallbacks = attempts.fallbacks
  if (!fallbacks) return []
  if (typeof fallbacks === 'function') return fallbacks(info) ?? []
  return (model !== undefined && Object.hasOwn(fallbacks, model) ? fallbacks[model] : undefined) ?? []
}

/** The SDK's own error for a request aborted while waiting to retry (no request is sent). */
async function abortError(ctx: CallContext, signal: AbortSignal): Promise<unknown> {
  try {
    const call = ctx.original(ctx.body, ctx.requestOptions)
    await (call.asResponse ? call.asResponse() : call)
  } catch (error) {
    return error
  }
  return signal.reason
}

async function parsed(ready: Promise<Attempt>): Promise<unknown> {
  const attempt = await ready
  let data: unknown
  try {
    data = await attempt.call
  } catch (error) {
    // the provider answered, but its body could not be read whole: nothing of the output was
    // seen, so the settle keeps the output's estimate, flagged (`close` in attempt.ts)
    await attempt.finish(isAbort(error) ? 'aborted' : 'broken', error)
    throw error
  }
  if (attempt.streaming) return meterStream(data, attempt.meter, attempt.finish, attempt.cut)
  attempt.meter.result(data)
  await attempt.finish('completed')
  return data
}

async function raw(ready: Promise<Attempt>): Promise<Response> {
  const attempt = await ready
  if (!attempt.call.asResponse) throw new TypeError('This client method does not support asResponse().')
  const response = await attempt.call.asResponse()
  void settleFromResponse(response.clone(), attempt.meter, attempt.finish)
  return response
}
