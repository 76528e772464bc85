/**
 * Which BPE encoding a model uses, and the two encoders Tollgate counts with.
 */
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base'
import * as o200k from 'gpt-tokenizer/encoding/o200k_base'

/** The encodings Tollgate counts with. */
export type EncodingName = 'o200k_base' | 'cl100k_base'

/** Counts the tokens of a piece of text exactly; special-token text counts as ordinary text. */
export type ExactCounter = (text: string) => number

const asText = { disallowedSpecial: new Set<string>() }

/**
 * gpt-tokenizer's default options are the fastest path, but refuse text that looks like a
 * special token (`<|endoftext|>`): such text (rare) is counted again as ordinary text.
 */
function counter(encoding: typeof o200k): ExactCounter {
  return (text) => {
    try {
      return encoding.countTokens(text)
    } catch {
      return encoding.countTokens(text, asText)
    }
  }
}

const counters: Record<EncodingName, ExactCounter> = {
  o200k_base: counter(o200k),
  cl100k_base: counter(cl100k as typeof o200k),
}

/** The exact counter of an encoding. */
export function exactCounter(encoding: EncodingName): ExactCounter {
  return counters[encoding]
}

const CL100K = /^(gpt-4(?![o.])|gpt-3\.5|text-embedding-|davinci-002|babbage-002)/

/**
 * The encoding of a model: `cl100k_base` for GPT-4, GPT-3.5 and the embedding models,
 * `o200k_base` for everything else (GPT-4o, GPT-4.1, GPT-4.5, GPT-5, the o-series) and for
 * models Tollgate does not know, including other providers' (counted with a margin).
 *
 * @example
 * encodingForModel('gpt-4o-mini') // 'o200k_base'
 * encodingForModel('gpt-4-turbo') // 'cl100k_base'
 */
export function encodingForModel(model: string | undefined): EncodingName {
  if (model === undefined) return 'o200k_base'
  const name = model.startsWith('ft:') ? (model.split(':')[1] ?? '') : model
  return CL100K.test(name) ? 'cl100k_base' : 'o200k_base'
}
