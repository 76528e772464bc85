/**
 * One provider attempt of a gated call: estimate the request for the attempt's model, reserve
 * (shrinking the output cap when asked and the budget allows), refuse or send the request with
 * the SDK's own retries off, then settle from the provider's usage — or release when the
 * attempt failed before anything was billed. Retries and fallbacks (`call.ts`) open one
 * attempt each, so every attempt is checked and held on its own.
 */
import {
  type AllowedDecision,
  type Amounts,
  type Attributes,
  type CommitResult,
  callHook,
  costOf,
  type Subject,
  type Tollgate,
  TollgateError,
  type Usage,
} from '@tollgate/core'
import type { CallEstimate, EstimateOptions } from '../estimate/types.js'
import type { EncodingName } from '../tokens/encoding.js'
import type { Meter, MeteredUsage } from '../usage/meter.js'
import { outputAllowance, priceOf, shrinkRoom } from './budget.js'
import type { Api, AttemptInfo, CallEnd, WrapOptions } from './options.js'
import type { WithResponse } from './promise.js'
import type { CutOff } from './stream.js'

export type Body = Record<string, unknown>

/** What a provider adapter knows about one API. */
export interface Adapter<O extends WrapOptions = WrapOptions> {
  api: Api
  estimate(body: Body, options: EstimateOptions, wrap: O): CallEstimate
  /**
   * The body to send (model rewritten on a downgrade, caps and stream options added) and its
   * meter. The body may be the given one when nothing changes: it is never written into.
   */
  prepare(
    body: Body,
    decision: AllowedDecision,
    estimate: CallEstimate,
    wrap: O,
  ): { body: Body; meter: Meter }
  /** The field that caps output, how many choices share it, and the smallest cap the API takes. */
  outputCap?(body: Body): { field: string; choices: number; min: number }
  /** How streamed output is counted (for cut-off): the encoding and the margin added. */
  counting(body: Body, wrap: O): { encoding: EncodingName; margin: number }
  /** Exact cost in micro-units when the price table cannot express it (Anthropic cache writes). */
  cost?(metered: MeteredUsage, decision: AllowedDecision, gate: Tollgate): number | undefined
}

/** The SDK method's return value: an `APIPromise`, or any promise. */
export interface SdkPromise extends PromiseLike<unknown> {
  withResponse?: () => Promise<WithResponse<unknown>>
  asResponse?: () => Promise<Response>
}

export type SdkMethod = (body: Body, requestOptions?: unknown) => SdkPromise

/** What every attempt of one original call shares. */
export interface CallContext<O extends WrapOptions = WrapOptions> {
  gate: Tollgate
  options: O
  adapter: Adapter<O>
  original: SdkMethod
  estimateOptions: EstimateOptions
  body: Body
  /** The caller's request options with the SDK's retries turned off. */
  requestOptions: Record<string, unknown>
  /** The caller's subject with the action id. */
  subject: Subject
  feature: string | undefined
  attributes: Attributes
  action: string
}

/** An attempt whose reservation was allowed and whose request was sent. */
export interface Attempt {
  info: AttemptInfo
  decision: AllowedDecision
  call: SdkPromise
  meter: Meter
  streaming: boolean
  /** Set when `cutOffStreams` applies and a limit bounds the output. */
  cut: CutOff | undefined
  /** Settle (or, for `failed`, settle nothing but the request or release) once; later calls do nothing. */
  finish(end: CallEnd, error?: unknown): Promise<void>
}

/**
 * Reserve and send one attempt. Throws a `TollgateError` carrying the decision when refused.
 *
 * @example
 * const attempt = await openAttempt(ctx, { number: 1, kind: 'primary', model: 'gpt-4o', action })
 */
export async function openAttempt<O extends WrapOptions>(
  ctx: CallContext<O>,
  info: AttemptInfo,
): Promise<Attempt> {
  const { gate, options, adapter } = ctx
  const body = info.model === ctx.body.model ? ctx.body : { ...ctx.body, model: info.model }
  const estimate = adapter.estimate(body, ctx.estimateOptions, options)
  const request = {
    subject: ctx.subject,
    attributes: { ...ctx.attributes, attempt: info.kind },
    feature: ctx.feature,
    model: info.model,
    estimate: { inputTokens: estimate.inputTokens, maxOutputTokens: estimate.maxOutputTokens },
    attempt: info.number,
  }
  let decision = await gate.reserve(request)
  let shrunkTo: number | undefined
  if (!decision.allowed && options.shrinkOutput && adapter.outputCap) {
    const cap = adapter.outputCap(body)
    const room = shrinkRoom(decision, estimate.inputTokens, priceOf(gate, decision.requestedModel))
    const min = Math.max(
      cap.min,
      typeof options.shrinkOutput === 'object' ? (options.shrinkOutput.min ?? 1) : 1,
    )
    const each = room === null ? 0 : Math.floor(room / cap.choices)
    if (each >= min && each * cap.choices < estimate.maxOutputTokens) {
      const maxOutputTokens = each * cap.choices
      const second = await gate.reserve({ ...request, estimate: { ...request.estimate, maxOutputTokens } })
      if (second.allowed) {
        decision = second
        shrunkTo = each
        estimate.maxOutputTokens = maxOutputTokens
      }
    }
  }
  if (!decision.allowed) throw TollgateError.fromDecision(decision)
  const allowed = decision
  const prepared = adapter.prepare(body, allowed, estimate, options)
  // (prepare may hand back the caller's own body when nothing changes: never write into it)
  const sent =
    shrunkTo === undefined ? prepared.body : { ...prepared.body, [adapter.outputCap!(body).field]: shrunkTo }
  const streaming = sent.stream === true
  let finished = false
  const finish = async (end: CallEnd, error?: unknown, release = options.failedAttempts === 'release') => {
    if (finished) return
    finished = true
    await close(ctx, info, allowed, prepared.meter, streaming, end, error, shrunkTo, release)
  }
  let call: SdkPromise
  try {
    call = ctx.original(sent, ctx.requestOptions)
  } catch (error) {
    await finish('failed', error, true) // never sent
    throw error
  }
  const cut = streaming && options.cutOffStreams ? cutOff(ctx, allowed, body) : undefined
  return { info, decision: allowed, call, meter: prepared.meter, streaming, cut, finish }
}

/** The cut-off of a streamed attempt: what the budget left at the reservation allows. */
function cutOff<O extends WrapOptions>(ctx: CallContext<O>, decision: AllowedDecision, body: Body) {
  const held = decision.reservation.amounts
  const price = priceOf(ctx.gate, decision.model)
  const allowance = outputAllowance(decision.limits, held, held.inputTokens ?? 0, price)
  if (!Number.isFinite(allowance)) return undefined
  return { allowance, ...ctx.adapter.counting(body, ctx.options) }
}

async function close<O extends WrapOptions>(
  ctx: CallContext<O>,
  attempt: AttemptInfo,
  decision: AllowedDecision,
  meter: Meter,
  streaming: boolean,
  end: CallEnd,
  error: unknown,
  shrunkTo: number | undefined,
  release: boolean,
): Promise<void> {
  const { gate, options, adapter } = ctx
  const id = decision.reservation.id
  let metered: MeteredUsage | null = null
  let result: CommitResult | null = null
  let failure = error
  const released = end === 'failed' && release
  try {
    if (released) result = await gate.release(id)
    else if (end === 'failed') {
      metered = { usage: { inputTokens: 0, outputTokens: 0, cost: 0 }, estimated: false }
      result = await gate.settle(id, metered.usage)
    } else {
      metered = meter.finish()
      // a whole result whose body broke (or was aborted) before it was read: none of the output
      // was seen, so it keeps its estimate (left out of the settle), flagged — not the 0 of no text
      if (!streaming && end !== 'completed') metered = withoutOutput(metered)
      // `unfinishedStreams: 'reserved'`: input, output and cost each settle the hold's, or what was
      // reported or streamed where that is more — never less than `streamed` would settle
      const held =
        metered.estimated && end !== 'completed' && options.unfinishedStreams === 'reserved'
          ? decision.reservation.amounts
          : undefined
      if (held) metered = atLeastHeld(metered, held)
      const usage: Usage = { ...metered.usage }
      if (metered.estimated) usage.estimated = true
      const cost = adapter.cost?.(metered, decision, gate)
      if (cost !== undefined) usage.cost = cost
      if (held) {
        // cache reads, priced below input, can bring the cost of the tokens under the hold's: not below it
        const priced = usage.cost ?? tableCost(usage, gate.policy.models.get(decision.model)?.price)
        if (priced !== undefined && held.cost !== undefined && priced < held.cost) usage.cost = held.cost
      }
      result = await gate.settle(id, usage)
    }
  } catch (settleError) {
    failure ??= settleError
    // usage the gate refused (a provider's odd count): the call was made, so settle at the estimate
    // rather than leave the hold open until its TTL
    if (TollgateError.isInstance(settleError) && settleError.code === 'invalid_amount' && !released)
      result = await gate.settle(id, {}).catch(() => null)
  }
  // a hook's failure (or its rejected promise) never reaches the caller
  callHook(options.onSettle, {
    api: adapter.api,
    decision,
    attempt,
    ...(shrunkTo === undefined ? {} : { shrunkTo }),
    end,
    outcome: released ? 'released' : 'settled',
    metered,
    result,
    ...(failure === undefined ? {} : { error: failure }),
  })
}

/**
 * `metered` settling, token by token, the larger of the hold and what was reported or counted:
 * `unfinishedStreams: 'reserved'`. Input and output left out are the hold's. Cache reads and
 * writes stay as reported (they are part of the input, which only grows).
 */
function atLeastHeld(metered: MeteredUsage, held: Amounts): MeteredUsage {
  const atLeast = (counted: number | undefined, reserved: number | undefined) =>
    Math.max(counted ?? 0, reserved ?? 0)
  const usage: Usage = {
    ...metered.usage,
    inputTokens: atLeast(metered.usage.inputTokens, held.inputTokens),
    outputTokens: atLeast(metered.usage.outputTokens, held.outputTokens),
  }
  return { ...metered, usage }
}

/** What the settle prices `usage` at from the price table (as the engine does); `undefined` without a price. */
function tableCost(
  usage: Usage,
  price: { input: number; output: number; cachedInput: number } | undefined,
): number | undefined {
  if (!price) return undefined
  const input = usage.inputTokens ?? 0
  const cached = usage.cachedInputTokens ?? 0
  return (
    costOf(Math.max(0, input - cached), price.input) +
    costOf(cached, price.cachedInput) +
    costOf(usage.outputTokens ?? 0, price.output)
  )
}

/** `metered` with its output left out (the settle keeps the output's estimate), flagged. */
function withoutOutput(metered: MeteredUsage): MeteredUsage {
  const { outputTokens: _, ...usage } = metered.usage
  return { ...metered, usage, estimated: true }
}
