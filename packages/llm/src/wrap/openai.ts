/**
 * `wrapOpenAI`: an OpenAI client whose `chat.completions.create`, `responses.create` and
 * `embeddings.create` reserve before the call and settle from the usage after it.
 */
import type { Tollgate } from '@tollgate/core'
import { estimateChatCompletion, estimateEmbedding, estimateResponse } from '../estimate/openai.js'
import { isFields } from '../estimate/types.js'
import { encodingForModel } from '../tokens/encoding.js'
import { chatCompletionMeter, embeddingMeter, responseMeter } from '../usage/openai.js'
import { type Adapter, gatedMethod, type SdkMethod } from './call.js'
import { checkWrapOptions } from './check.js'
import type { WrapOptions } from './options.js'
import { proxyClient } from './proxy.js'

const modelOf = (body: Record<string, unknown>) => (typeof body.model === 'string' ? body.model : undefined)

/** The body with the model of a downgrade and, when asked, the default output cap (the same body when neither). */
function rewrite(
  body: Record<string, unknown>,
  decision: { downgrade: unknown; model: string },
  capField: string | null,
  cap: number,
  inject: boolean | undefined,
): Record<string, unknown> {
  if (!decision.downgrade && !(inject && capField)) return body
  const next = { ...body }
  if (decision.downgrade) next.model = decision.model
  if (inject && capField) next[capField] = cap
  return next
}

/** Streamed OpenAI output is counted with the model's own encoding, exactly. */
const counting = (body: Record<string, unknown>) => ({ encoding: encodingForModel(modelOf(body)), margin: 0 })

const chat: Adapter = {
  api: 'chat.completions',
  estimate: (body, options) => estimateChatCompletion(body, options),
  counting,
  /** `max_tokens` when that is what the caller used (older models and compatible APIs), else `max_completion_tokens`. */
  outputCap: (body) => ({
    field:
      'max_tokens' in body && !('max_completion_tokens' in body) ? 'max_tokens' : 'max_completion_tokens',
    choices: Math.max(1, typeof body.n === 'number' ? body.n : 1),
    min: 1,
  }),
  prepare(body, decision, estimate, wrap) {
    const perChoice = estimate.maxOutputTokens / Math.max(1, typeof body.n === 'number' ? body.n : 1)
    const inject = wrap.injectMaxOutputTokens && estimate.outputCap === 'default'
    const next = rewrite(body, decision, 'max_completion_tokens', perChoice, inject)
    const streamOptions = isFields(body.stream_options) ? body.stream_options : {}
    const hide = body.stream === true && streamOptions.include_usage !== true
    const sent = hide ? { ...next, stream_options: { ...streamOptions, include_usage: true } } : next
    return { body: sent, meter: chatCompletionMeter(encodingForModel(modelOf(body)), hide) }
  },
}

const responses: Adapter = {
  api: 'responses',
  estimate: (body, options) => estimateResponse(body, options),
  counting,
  outputCap: () => ({ field: 'max_output_tokens', choices: 1, min: 16 }), // the API's smallest cap
  prepare(body, decision, estimate, wrap) {
    const inject = wrap.injectMaxOutputTokens && estimate.outputCap === 'default'
    const next = rewrite(body, decision, 'max_output_tokens', estimate.maxOutputTokens, inject)
    return { body: next, meter: responseMeter(encodingForModel(modelOf(body))) }
  },
}

const embeddings: Adapter = {
  api: 'embeddings',
  estimate: (body, options) => estimateEmbedding(body, options),
  counting,
  prepare: (body, decision) => ({ body: rewrite(body, decision, null, 0, false), meter: embeddingMeter() }),
}

/**
 * Wrap an `openai` client: `chat.completions.create`, `responses.create` and
 * `embeddings.create` (and the SDK helpers built on them: `chat.completions.stream`,
 * `.parse`, `.runTools`, `responses.stream`) reserve the estimate, call with the model after
 * any downgrade, and settle from the usage the API reports — streamed or not. A refusal throws
 * a `TollgateError` carrying the decision, before any request is sent. `withOptions()` returns a
 * client wrapped with the same gate and options.
 *
 * @example
 * const openai = wrapOpenAI(new OpenAI(), gate, { subject: () => currentSubject(), feature: 'chat' })
 * const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
 */
export function wrapOpenAI<C extends object>(client: C, gate: Tollgate, options: WrapOptions): C {
  checkWrapOptions('wrapOpenAI', options)
  return gated(client, gate, options)
}

/** The wrapped client; a client it makes with `withOptions()` is wrapped the same way. */
function gated<C extends object>(client: C, gate: Tollgate, options: WrapOptions): C {
  const wrap = (adapter: Adapter) => (original: (...args: never[]) => unknown) =>
    gatedMethod(gate, options, adapter, original as unknown as SdkMethod, client)
  const replacements = {
    'chat.completions': { create: wrap(chat) },
    responses: { create: wrap(responses) },
    embeddings: { create: wrap(embeddings) },
  }
  return proxyClient(client, replacements, (copy) => gated(copy, gate, options))
}
