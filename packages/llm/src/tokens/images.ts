/**
 * Image input tokens, by OpenAI's and Anthropic's published formulas. When the size of an
 * image is not known (a URL, or bytes Tollgate cannot read), the largest count the formula
 * can give is used, so the estimate stays an upper bound.
 */

/** Width and height in pixels. */
export interface ImageSize {
  width: number
  height: number
}

/** `low`, `high` or `auto` (counted as `high`, its upper bound). */
export type ImageDetail = 'low' | 'high' | 'auto' | (string & {})

type Formula = { kind: 'tiles'; base: number; tile: number } | { kind: 'patches'; multiplier: number }

/** OpenAI's published image formulas per model family, most specific prefix first. */
const OPENAI_FORMULAS: [prefix: string, formula: Formula][] = [
  ['gpt-4.1-mini', { kind: 'patches', multiplier: 1.62 }],
  ['gpt-4.1-nano', { kind: 'patches', multiplier: 2.46 }],
  ['gpt-5-mini', { kind: 'patches', multiplier: 1.62 }],
  ['gpt-5-nano', { kind: 'patches', multiplier: 2.46 }],
  ['o4-mini', { kind: 'patches', multiplier: 1.72 }],
  ['gpt-4o-mini', { kind: 'tiles', base: 2833, tile: 5667 }],
  ['gpt-5', { kind: 'tiles', base: 70, tile: 140 }],
  ['o1', { kind: 'tiles', base: 75, tile: 150 }],
  ['o3', { kind: 'tiles', base: 75, tile: 150 }],
  ['computer-use-preview', { kind: 'tiles', base: 65, tile: 129 }],
]
const DEFAULT_FORMULA: Formula = { kind: 'tiles', base: 85, tile: 170 }
const MAX_TILES = 8 // 768 × 2048 after scaling: 2 × 4 tiles of 512 px
const MAX_PATCHES = 1536

function formulaOf(model: string | undefined): Formula {
  if (model !== undefined)
    for (const [prefix, formula] of OPENAI_FORMULAS) if (model.startsWith(prefix)) return formula
  return DEFAULT_FORMULA
}

/**
 * Input tokens of one image in an OpenAI request.
 *
 * Tile models (GPT-4o, GPT-4.1, GPT-5, o1, o3): `low` costs the base; `high` scales the image
 * into 2048 × 2048, then its shortest side to 768, and adds a per-tile cost for each 512 px
 * tile. Patch models (GPT-4.1-mini/nano, GPT-5-mini/nano, o4-mini): 32 px patches, at most
 * 1536, times a multiplier. Unknown models use GPT-4o's tiles.
 *
 * @example
 * openAIImageTokens({ width: 1024, height: 1024 }, 'high', 'gpt-4o') // 765
 */
export function openAIImageTokens(
  size: ImageSize | null,
  detail: ImageDetail | undefined,
  model?: string,
): number {
  const formula = formulaOf(typeof model === 'string' ? model : undefined)
  size = usable(size)
  if (formula.kind === 'patches') {
    if (!size) return Math.ceil(MAX_PATCHES * formula.multiplier)
    return Math.ceil(patches(size) * formula.multiplier)
  }
  if (detail === 'low') return formula.base
  if (!size) return formula.base + formula.tile * MAX_TILES
  let { width, height } = size
  const fit = Math.min(1, 2048 / Math.max(width, height))
  width *= fit
  height *= fit
  const shortest = Math.min(width, height)
  if (shortest > 768) {
    width *= 768 / shortest
    height *= 768 / shortest
  }
  return formula.base + formula.tile * Math.ceil(width / 512) * Math.ceil(height / 512)
}

/**
 * A size with positive finite sides, else `null`: the size is unknown, and priced as the largest
 * image (a negative or NaN side gave negative or NaN tokens).
 */
function usable(size: ImageSize | null): ImageSize | null {
  if (typeof size !== 'object' || size === null) return null
  const { width, height } = size
  return typeof width === 'number' &&
    typeof height === 'number' &&
    width > 0 &&
    height > 0 &&
    width < Infinity &&
    height < Infinity
    ? size
    : null
}

function patches({ width, height }: ImageSize): number {
  const raw = Math.ceil(width / 32) * Math.ceil(height / 32)
  if (raw <= MAX_PATCHES) return raw
  let shrink = Math.sqrt((32 * 32 * MAX_PATCHES) / (width * height))
  shrink *= Math.min(
    Math.floor((width * shrink) / 32) / ((width * shrink) / 32),
    Math.floor((height * shrink) / 32) / ((height * shrink) / 32),
  )
  return Math.min(MAX_PATCHES, Math.ceil((width * shrink) / 32) * Math.ceil((height * shrink) / 32))
}

/** Anthropic's ceiling for one image: images are scaled down to at most about 1,600 tokens. */
export const ANTHROPIC_MAX_IMAGE_TOKENS = 1600

/**
 * Input tokens of one image in an Anthropic request: `width × height / 750`, after scaling the
 * long edge to at most 1568 px, and at most {@link ANTHROPIC_MAX_IMAGE_TOKENS}.
 *
 * @example
 * anthropicImageTokens({ width: 1000, height: 1000 }) // 1334
 */
export function anthropicImageTokens(given: ImageSize | null): number {
  const size = usable(given)
  if (!size) return ANTHROPIC_MAX_IMAGE_TOKENS
  const fit = Math.min(1, 1568 / Math.max(size.width, size.height))
  const tokens = Math.ceil((size.width * fit * (size.height * fit)) / 750)
  return Math.min(tokens, ANTHROPIC_MAX_IMAGE_TOKENS)
}
