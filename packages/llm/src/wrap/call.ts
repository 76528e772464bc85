/**
 * One gated call: estimate the request, reserve, refuse or call (with the model rewritten on
 * a downgrade), then settle from the provider's usage — or release when the call failed before
 * anything was billed. Shared by every wrapped method of every provider.
 */
import { type AllowedDecision, type Tollgate, TollgateError, type Usage } from '@tollgate/core'
import type { CallEstimate, EstimateOptions } from '../estimate/types.js'
import type { Meter, MeteredUsage } from '../usage/meter.js'
import type { Api, CallEnd, CallInfo, PerCall, WrapOptions } from './options.js'
import { GatedPromise, type WithResponse } from './promise.js'
import { settleFromResponse } from './raw.js'
import { meterStream } from './stream.js'

type Body = Record<string, unknown>

/** What a provider adapter knows about one API. */
export interface Adapter<O extends WrapOptions = WrapOptions> {
  api: Api
  estimate(body: Body, options: EstimateOptions, wrap: O): CallEstimate
  /** The body to send (model rewritten on a downgrade, caps and stream options added) and its meter. */
  prepare(
    body: Body,
    decision: AllowedDecision,
    estimate: CallEstimate,
    wrap: O,
  ): { body: Body; meter: Meter }
  /** Exact cost in micro-units when the price table cannot express it (Anthropic cache writes). */
  cost?(metered: MeteredUsage, decision: AllowedDecision, gate: Tollgate): number | undefined
}

/** The SDK method's return value: an `APIPromise`, or any promise. */
interface SdkPromise extends PromiseLike<unknown> {
  withResponse?: () => Promise<WithResponse<unknown>>
  asResponse?: () => Promise<Response>
}

export type SdkMethod = (body: Body, requestOptions?: unknown) => SdkPromise

async function resolve<T>(value: PerCall<T>, call: CallInfo): Promise<T> {
  return typeof value === 'function' ? await (value as (call: CallInfo) => T | Promise<T>)(call) : value
}

interface Opened {
  decision: AllowedDecision
  call: SdkPromise
  meter: Meter
  streaming: boolean
  finish(end: CallEnd, error?: unknown): Promise<void>
}

/**
 * The wrapped method: same arguments and result as `original`.
 *
 * @example
 * const create = gatedMethod(gate, options, chatAdapter, original.bind(resource))
 */
export function gatedMethod<O extends WrapOptions>(
  gate: Tollgate,
  options: O,
  adapter: Adapter<O>,
  original: SdkMethod,
): SdkMethod {
  return (body, requestOptions) => {
    const opened = open(gate, options, adapter, original, body ?? {}, requestOptions)
    opened.catch(() => {}) // rejections reach the caller through the promise below
    return new GatedPromise(
      () => parsed(opened),
      () => raw(opened),
    )
  }
}

async function open<O extends WrapOptions>(
  gate: Tollgate,
  options: O,
  adapter: Adapter<O>,
  original: SdkMethod,
  body: Body,
  requestOptions: unknown,
): Promise<Opened> {
  const info: CallInfo = { api: adapter.api, body }
  const [subject, feature, attributes] = await Promise.all([
    resolve(options.subject, info),
    resolve(options.feature, info),
    resolve(options.attributes, info),
  ])
  const estimate = adapter.estimate(
    body,
    {
      maxExactChars: options.maxExactChars,
      maxPieceChars: options.maxPieceChars,
      timeBudgetMs: options.timeBudgetMs,
      opaquePartTokens: options.opaquePartTokens,
      defaultMaxOutputTokens: options.maxOutputTokens ?? gate.policy.maxOutputTokens,
    },
    options,
  )
  const decision = await gate.reserve({
    subject,
    attributes: attributes ?? {},
    feature,
    model: typeof body.model === 'string' ? body.model : undefined,
    estimate: { inputTokens: estimate.inputTokens, maxOutputTokens: estimate.maxOutputTokens },
  })
  if (!decision.allowed) throw TollgateError.fromDecision(decision)
  const prepared = adapter.prepare(body, decision, estimate, options)
  let finished = false
  const finish = async (end: CallEnd, error?: unknown) => {
    if (finished) return
    finished = true
    await close(gate, options, adapter, decision, prepared.meter, end, error)
  }
  let call: SdkPromise
  try {
    call = original(prepared.body, requestOptions)
  } catch (error) {
    await finish('failed', error)
    throw error
  }
  return { decision, call, meter: prepared.meter, streaming: prepared.body.stream === true, finish }
}

async function parsed(opening: Promise<Opened>): Promise<WithResponse<unknown>> {
  const opened = await opening
  let result: WithResponse<unknown>
  try {
    result = opened.call.withResponse
      ? await opened.call.withResponse()
      : { data: await opened.call, response: undefined as unknown as Response }
  } catch (error) {
    await opened.finish('failed', error)
    throw error
  }
  if (opened.streaming) return { ...result, data: meterStream(result.data, opened.meter, opened.finish) }
  opened.meter.result(result.data)
  await opened.finish('completed')
  return result
}

async function raw(opening: Promise<Opened>): Promise<Response> {
  const opened = await opening
  if (!opened.call.asResponse) throw new TypeError('This client method does not support asResponse().')
  let response: Response
  try {
    response = await opened.call.asResponse()
  } catch (error) {
    await opened.finish('failed', error)
    throw error
  }
  void settleFromResponse(response.clone(), opened.meter, opened.finish)
  return response
}

async function close<O extends WrapOptions>(
  gate: Tollgate,
  options: O,
  adapter: Adapter<O>,
  decision: AllowedDecision,
  meter: Meter,
  end: CallEnd,
  error: unknown,
): Promise<void> {
  const id = decision.reservation.id
  let metered: MeteredUsage | null = null
  let result = null
  let failure = error
  try {
    if (end === 'failed') result = await gate.release(id)
    else {
      metered = meter.finish()
      if (metered.estimated && end !== 'completed' && options.unfinishedStreams === 'reserved')
        metered = { ...metered, usage: {} }
      const usage: Usage = { ...metered.usage }
      const cost = adapter.cost?.(metered, decision, gate)
      if (cost !== undefined) usage.cost = cost
      result = await gate.settle(id, usage)
    }
  } catch (settleError) {
    failure ??= settleError
  }
  if (!options.onSettle) return
  try {
    options.onSettle({
      api: adapter.api,
      decision,
      end,
      outcome: end === 'failed' ? 'released' : 'settled',
      metered,
      result,
      ...(failure === undefined ? {} : { error: failure }),
    })
  } catch {
    // a hook's failure never reaches the caller
  }
}
