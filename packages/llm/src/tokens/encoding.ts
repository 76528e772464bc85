/**
 * Which BPE encoding a model uses, and the exact counters Tollgate counts with.
 *
 * A byte-level BPE encodes each piece of its pre-tokenizer (a word with its leading space, a
 * run of digits, of punctuation, of spaces) on its own, so the count of a text is the sum of
 * the counts of its pieces. The counters split the text with gpt-tokenizer's own regular
 * expressions and look each piece up in a small memo of recent pieces, calling the encoder
 * only for pieces not seen lately: the encoder's rank table (200,000 entries) is slow to reach
 * from a cold CPU cache, which is what it is between two requests of a busy server.
 */
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base'
import * as o200k from 'gpt-tokenizer/encoding/o200k_base'
import { CL100K_TOKEN_SPLIT_REGEX, O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants'

/** The encodings Tollgate counts with. */
export type EncodingName = 'o200k_base' | 'cl100k_base'

/** Counts the tokens of a piece of text exactly; special-token text counts as ordinary text. */
export type ExactCounter = (text: string) => number

const asText = { disallowedSpecial: new Set<string>() }

/** Pieces remembered per generation, and the longest piece remembered. */
const MEMO_PIECES = 8192
const MEMO_PIECE_CHARS = 32

function counter(encoding: typeof o200k, split: RegExp): ExactCounter {
  // gpt-tokenizer's default options are its fastest path, but refuse text that looks like a
  // special token (`<|endoftext|>`): such text (rare) is counted again as ordinary text
  const encode = (piece: string) => {
    try {
      return encoding.countTokens(piece)
    } catch {
      return encoding.countTokens(piece, asText)
    }
  }
  const pieces = new RegExp(split.source, split.flags) // an own copy: `lastIndex` is state
  let young = new Map<string, number>()
  let old = new Map<string, number>()
  const countPiece = (piece: string): number => {
    if (piece.length > MEMO_PIECE_CHARS) return encode(piece)
    let tokens = young.get(piece)
    if (tokens !== undefined) return tokens
    tokens = old.get(piece) ?? encode(piece)
    if (young.size >= MEMO_PIECES) {
      old = young
      young = new Map()
    }
    young.set(piece, tokens)
    return tokens
  }
  return (text) => {
    let total = 0
    pieces.lastIndex = 0
    for (let match = pieces.exec(text); match !== null; match = pieces.exec(text))
      total += countPiece(match[0])
    return total
  }
}

const counters: Record<EncodingName, ExactCounter> = {
  o200k_base: counter(o200k, O200K_TOKEN_SPLIT_REGEX),
  cl100k_base: counter(cl100k as typeof o200k, CL100K_TOKEN_SPLIT_REGEX),
}

/** The exact counter of an encoding. */
export function exactCounter(encoding: EncodingName): ExactCounter {
  if (typeof encoding !== 'string' || !Object.hasOwn(counters, encoding))
    throw new TypeError(
      `Unknown encoding ${typeof encoding === 'string' ? JSON.stringify(encoding) : `(${typeof encoding})`}: Tollgate counts with o200k_base or cl100k_base`,
    )
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
  if (typeof model !== 'string') return 'o200k_base' // no model name: the default, as for an unknown one
  const name = model.startsWith('ft:') ? (model.split(':')[1] ?? '') : model
  return CL100K.test(name) ? 'cl100k_base' : 'o200k_base'
}
