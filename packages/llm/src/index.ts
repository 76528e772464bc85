/**
 * @tollgate/llm — LLM metering for Tollgate: token estimates before the call, usage after it,
 * default prices, and `openai` / `@anthropic-ai/sdk` clients wrapped in one line.
 *
 * @example
 * import { createTollgate } from '@tollgate/core'
 * import { withDefaultPrices, wrapOpenAI } from '@tollgate/llm'
 * const gate = createTollgate({ policy: withDefaultPrices(policy) })
 * const openai = wrapOpenAI(new OpenAI(), gate, { subject: () => currentSubject() })
 */
export {
  ANTHROPIC_TOOLS_OVERHEAD,
  type AnthropicEstimateOptions,
  estimateAnthropicMessage,
} from './estimate/anthropic.js'
export { estimateChatCompletion, estimateEmbedding, estimateResponse } from './estimate/openai.js'
export type { CallEstimate, EstimateOptions } from './estimate/types.js'
export {
  ANTHROPIC_CACHE_WRITE,
  type DefaultModel,
  defaultModels,
  type ModelPrice,
  type PolicyModels,
  withDefaultPrices,
} from './prices.js'
export { type Counter, type CountOptions, countTokens, createCounter, utf8Length } from './tokens/count.js'
export { type EncodingName, encodingForModel } from './tokens/encoding.js'
export { imageSizeOf } from './tokens/image-size.js'
export {
  ANTHROPIC_MAX_IMAGE_TOKENS,
  anthropicImageTokens,
  type ImageDetail,
  type ImageSize,
  openAIImageTokens,
} from './tokens/images.js'
export { anthropicMeter } from './usage/anthropic.js'
export type { Meter, MeteredUsage } from './usage/meter.js'
export { chatCompletionMeter, embeddingMeter, openAIUsage, responseMeter } from './usage/openai.js'
export { wrapAnthropic } from './wrap/anthropic.js'
export { wrapOpenAI } from './wrap/openai.js'
export type {
  AnthropicWrapOptions,
  Api,
  AttemptInfo,
  AttemptOptions,
  CallEnd,
  CallInfo,
  PerCall,
  SettleEvent,
  WrapOptions,
} from './wrap/options.js'
