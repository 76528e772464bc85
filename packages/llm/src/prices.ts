/**
 * Default prices per model, in currency units (USD) per million tokens, as published by
 * OpenAI and Anthropic (checked November 2025). They are defaults: a policy's own `models`
 * entries always win, and a model without a price follows the policy's `unpriced` action.
 *
 * gpt-tokenizer ships a model catalog with prices, but its 4.0 data is not fit for billing
 * (GPT-4o and GPT-5 at $10/$30, no prices for GPT-4o-mini, GPT-4.1-mini, o4-mini or the
 * embedding models), so the table is kept here.
 */
import type { PolicyInput } from '@tollgate/core'

/** A price as a policy writes it: currency units per million tokens. */
export interface ModelPrice {
  input: number
  output: number
  /** @default input */
  cachedInput?: number
}

/** A policy's `models` table. */
export type PolicyModels = NonNullable<PolicyInput['models']>

/** One model of the default table. */
export interface DefaultModel {
  price: ModelPrice
  /** Dated snapshots and other names of the same model, at the same price. */
  aliases: string[]
}

type Row = [model: string, input: number, cachedInput: number | null, output: number, aliases?: string[]]

const ROWS: Row[] = [
  // OpenAI
  ['gpt-5', 1.25, 0.125, 10, ['gpt-5-2025-08-07', 'gpt-5-chat-latest', 'gpt-5-codex']],
  ['gpt-5-mini', 0.25, 0.025, 2, ['gpt-5-mini-2025-08-07']],
  ['gpt-5-nano', 0.05, 0.005, 0.4, ['gpt-5-nano-2025-08-07']],
  ['gpt-5-pro', 15, null, 120, ['gpt-5-pro-2025-10-06']],
  ['gpt-5.1', 1.25, 0.125, 10, ['gpt-5.1-2025-11-13', 'gpt-5.1-chat-latest', 'gpt-5.1-codex']],
  ['gpt-4.1', 2, 0.5, 8, ['gpt-4.1-2025-04-14']],
  ['gpt-4.1-mini', 0.4, 0.1, 1.6, ['gpt-4.1-mini-2025-04-14']],
  ['gpt-4.1-nano', 0.1, 0.025, 0.4, ['gpt-4.1-nano-2025-04-14']],
  ['gpt-4o', 2.5, 1.25, 10, ['gpt-4o-2024-08-06', 'gpt-4o-2024-11-20']],
  ['gpt-4o-2024-05-13', 5, null, 15],
  ['gpt-4o-mini', 0.15, 0.075, 0.6, ['gpt-4o-mini-2024-07-18']],
  ['o1', 15, 7.5, 60, ['o1-2024-12-17']],
  ['o1-pro', 150, null, 600, ['o1-pro-2025-03-19']],
  ['o1-mini', 1.1, 0.55, 4.4, ['o1-mini-2024-09-12']],
  ['o3', 2, 0.5, 8, ['o3-2025-04-16']],
  ['o3-pro', 20, null, 80, ['o3-pro-2025-06-10']],
  ['o3-mini', 1.1, 0.55, 4.4, ['o3-mini-2025-01-31']],
  ['o4-mini', 1.1, 0.275, 4.4, ['o4-mini-2025-04-16']],
  ['gpt-4-turbo', 10, null, 30, ['gpt-4-turbo-2024-04-09']],
  ['gpt-4', 30, null, 60, ['gpt-4-0613']],
  ['gpt-3.5-turbo', 0.5, null, 1.5, ['gpt-3.5-turbo-0125']],
  ['text-embedding-3-small', 0.02, null, 0],
  ['text-embedding-3-large', 0.13, null, 0],
  ['text-embedding-ada-002', 0.1, null, 0],
  // Anthropic (cached input = cache reads; cache writes cost 1.25× input for 5 minutes, 2× for 1 hour)
  ['claude-opus-4-5', 5, 0.5, 25, ['claude-opus-4-5-20251101']],
  ['claude-opus-4-1', 15, 1.5, 75, ['claude-opus-4-1-20250805']],
  ['claude-opus-4-0', 15, 1.5, 75, ['claude-opus-4-20250514']],
  ['claude-sonnet-4-5', 3, 0.3, 15, ['claude-sonnet-4-5-20250929']],
  ['claude-sonnet-4-0', 3, 0.3, 15, ['claude-sonnet-4-20250514']],
  ['claude-3-7-sonnet-latest', 3, 0.3, 15, ['claude-3-7-sonnet-20250219']],
  ['claude-haiku-4-5', 1, 0.1, 5, ['claude-haiku-4-5-20251001']],
  ['claude-3-5-haiku-latest', 0.8, 0.08, 4, ['claude-3-5-haiku-20241022']],
  ['claude-3-haiku-20240307', 0.25, 0.03, 1.25],
]

/** Multipliers of the input price for Anthropic cache writes, by cache lifetime. */
export const ANTHROPIC_CACHE_WRITE = { '5m': 1.25, '1h': 2 } as const

/**
 * The default price table: model → `{ price, aliases }`, in the shape of a policy's `models`.
 * A fresh copy on every call.
 *
 * @example
 * const policy = { models: { ...defaultModels(), 'my-finetune': { price: { input: 3, output: 12 } } }, rules }
 */
export function defaultModels(): Record<string, DefaultModel> {
  const models: Record<string, DefaultModel> = {}
  for (const [model, input, cachedInput, output, aliases = []] of ROWS) {
    const price: ModelPrice = cachedInput === null ? { input, output } : { input, output, cachedInput }
    models[model] = { price, aliases: [...aliases] }
  }
  return models
}

/**
 * A copy of `policy` with the default prices merged into its `models`. What the policy sets
 * always wins: a model it lists keeps its entry (it only gains a price when it has none), and
 * an alias it already uses (as a model or an alias) is not added.
 *
 * @example
 * const gate = createTollgate({ policy: withDefaultPrices({ rules: [{ id: 'monthly', per: 'org', limits: { cost: 500 }, window: 'month' }] }) })
 */
export function withDefaultPrices<P extends PolicyInput>(policy: P): P & { models: PolicyModels } {
  if (typeof policy !== 'object' || policy === null)
    throw new TypeError('withDefaultPrices: the policy must be a policy object')
  // a malformed part is passed on as it is, for the policy's own check to name it
  const models: PolicyModels = { ...policy.models }
  const taken = new Set<string>([...Object.keys(models), ...Object.keys(policy.aliases ?? {})])
  for (const entry of Object.values(models))
    if (Array.isArray(entry?.aliases))
      for (const alias of entry.aliases) if (typeof alias === 'string') taken.add(alias)
  for (const [model, entry] of Object.entries(defaultModels())) {
    const own = models[model]
    if (own) {
      if (!own.price) models[model] = { ...own, price: entry.price }
      continue
    }
    if (taken.has(model)) continue
    const aliases = entry.aliases.filter((alias) => !taken.has(alias))
    models[model] = aliases.length > 0 ? { price: entry.price, aliases } : { price: entry.price }
    for (const alias of aliases) taken.add(alias)
  }
  return { ...policy, models }
}
