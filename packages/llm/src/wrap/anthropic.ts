/**
 * `wrapAnthropic`: an Anthropic client whose `messages.create` (streamed or not) and
 * `messages.stream` reserve before the call and settle from the usage after it.
 */
import { costOf, type Tollgate } from '@tollgate/core'
import { estimateAnthropicMessage } from '../estimate/anthropic.js'
import { isFields, tokensField } from '../estimate/types.js'
import { ANTHROPIC_CACHE_WRITE } from '../prices.js'
import { anthropicMeter } from '../usage/anthropic.js'
import { type Adapter, gatedMethod, type SdkMethod } from './call.js'
import { checkWrapOptions } from './check.js'
import type { AnthropicWrapOptions } from './options.js'
import { proxyClient } from './proxy.js'

const messages: Adapter<AnthropicWrapOptions> = {
  api: 'messages',
  estimate: (body, options, wrap) => estimateAnthropicMessage(body, { ...options, margin: wrap.margin }),
  counting: (_body, wrap) => ({ encoding: 'o200k_base', margin: wrap.margin ?? 0.2 }),
  /** With extended thinking, `max_tokens` must stay above `thinking.budget_tokens`. */
  outputCap(body) {
    const thinking = isFields(body.thinking) ? body.thinking : undefined
    const budget = thinking?.type === 'enabled' ? tokensField(thinking.budget_tokens) : undefined
    return { field: 'max_tokens', choices: 1, min: budget === undefined ? 1 : budget + 1 }
  },
  prepare(body, decision, estimate, wrap) {
    const inject = wrap.injectMaxOutputTokens && estimate.outputCap === 'default'
    const next = decision.downgrade || inject ? { ...body } : body
    if (decision.downgrade) next.model = decision.model
    if (inject) next.max_tokens = estimate.maxOutputTokens
    return { body: next, meter: anthropicMeter(wrap.margin ?? 0.2) }
  },
  /**
   * Cache writes cost more than input (1.25× for 5 minutes, 2× for 1 hour): priced here, when the
   * usage settled has both counts. A usage that leaves one out keeps its estimate: the settle
   * prices that, not this. (With `unfinishedStreams: 'reserved'` an unfinished stream settles both,
   * each at least the hold's, and never a cost below the hold's.)
   */
  cost(metered, decision, gate) {
    const writes = metered.cacheWriteTokens
    const price = gate.policy.models.get(decision.model)?.price
    const { inputTokens, cachedInputTokens = 0, outputTokens } = metered.usage
    if (!writes || !price || inputTokens === undefined || outputTokens === undefined) return undefined
    const plain = inputTokens - cachedInputTokens - writes['5m'] - writes['1h']
    return (
      costOf(plain, price.input) +
      costOf(cachedInputTokens, price.cachedInput) +
      costOf(writes['5m'], Math.ceil(price.input * ANTHROPIC_CACHE_WRITE['5m'])) +
      costOf(writes['1h'], Math.ceil(price.input * ANTHROPIC_CACHE_WRITE['1h'])) +
      costOf(outputTokens, price.output)
    )
  },
}

/**
 * Wrap an `@anthropic-ai/sdk` client: `messages.create` (streamed or not), `messages.stream`
 * and `messages.parse` reserve the estimate, call with the model after any downgrade, and settle
 * from the usage Anthropic reports. A refusal throws a `TollgateError` carrying the decision
 * before any request is sent (`messages.stream` returns at once, so its stream fails instead, with
 * the SDK's `AnthropicError` whose `cause` is the `TollgateError`). `withOptions()` returns a
 * client wrapped with the same gate and options.
 *
 * @example
 * const anthropic = wrapAnthropic(new Anthropic(), gate, { subject: { org: 'acme', user: 'u1' } })
 * const message = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages })
 */
export function wrapAnthropic<C extends object>(client: C, gate: Tollgate, options: AnthropicWrapOptions): C {
  checkWrapOptions('wrapAnthropic', options)
  return gated(client, gate, options)
}

/** The wrapped client; a client it makes with `withOptions()` is wrapped the same way. */
function gated<C extends object>(client: C, gate: Tollgate, options: AnthropicWrapOptions): C {
  const create = (original: (...args: never[]) => unknown) =>
    gatedMethod(gate, options, messages, original as unknown as SdkMethod, client)
  return proxyClient(client, { messages: { create } }, (copy) => gated(copy, gate, options))
}
