import { describe, expect, it } from 'vitest'
import { imageSizeOf } from './image-size.js'
import { anthropicImageTokens, openAIImageTokens } from './images.js'

/** A 1×1 PNG and a 3×2 GIF, as data URLs. */
const png1x1 =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
const gif = `data:image/gif;base64,${btoa('GIF89a\x03\x00\x02\x00\x00\x00\x00')}`

describe('image tokens', () => {
  it("follows OpenAI's published examples", () => {
    expect(openAIImageTokens({ width: 1024, height: 1024 }, 'high', 'gpt-4o')).toBe(765)
    expect(openAIImageTokens({ width: 2048, height: 4096 }, 'high', 'gpt-4o')).toBe(1105)
    expect(openAIImageTokens({ width: 4096, height: 8192 }, 'low', 'gpt-4o')).toBe(85)
    expect(openAIImageTokens({ width: 1024, height: 1024 }, 'high', 'gpt-4o-mini')).toBe(2833 + 5667 * 4)
    // patches: 1024 × 1024 → 32 × 32 patches → 1024 × 1.62 for gpt-4.1-mini
    expect(openAIImageTokens({ width: 1024, height: 1024 }, 'high', 'gpt-4.1-mini')).toBe(
      Math.ceil(1024 * 1.62),
    )
    // 1800 × 2400 → capped at 1536 patches, scaled
    expect(openAIImageTokens({ width: 1800, height: 2400 }, 'high', 'gpt-4.1-mini')).toBe(
      Math.ceil(1452 * 1.62),
    )
  })

  it('uses the largest count when the size is unknown', () => {
    expect(openAIImageTokens(null, 'auto', 'gpt-4o')).toBe(85 + 170 * 8)
    // a size with a side that is no positive number is unknown (it gave negative and NaN tokens)
    for (const size of [
      { width: -1024, height: 1024 },
      { width: Number.NaN, height: 10 },
      { width: 10, height: Number.POSITIVE_INFINITY },
      { width: '10', height: 10 },
      { width: 0, height: 10 },
    ] as never[]) {
      expect(openAIImageTokens(size, 'high', 'gpt-4o')).toBe(85 + 170 * 8)
      expect(openAIImageTokens(size, 'high', 'gpt-4.1-nano')).toBe(Math.ceil(1536 * 2.46))
      expect(anthropicImageTokens(size)).toBe(1600)
    }
    expect(openAIImageTokens(null, 'auto', 5 as never)).toBe(85 + 170 * 8) // a model that is no name
    expect(imageSizeOf(null as never)).toBeNull()
    expect(openAIImageTokens(null, 'high', 'gpt-4.1-nano')).toBe(Math.ceil(1536 * 2.46))
    expect(anthropicImageTokens(null)).toBe(1600)
  })

  it("follows Anthropic's formula", () => {
    expect(anthropicImageTokens({ width: 1000, height: 1000 })).toBe(1334)
    expect(anthropicImageTokens({ width: 200, height: 200 })).toBe(54)
    expect(anthropicImageTokens({ width: 4000, height: 3000 })).toBe(1600)
  })

  it('reads the size of PNG and GIF data', () => {
    expect(imageSizeOf(png1x1)).toEqual({ width: 1, height: 1 })
    expect(imageSizeOf(gif)).toEqual({ width: 3, height: 2 })
    expect(imageSizeOf('data:text/plain;base64,aGVsbG8=')).toBeNull()
    expect(imageSizeOf('not base64 at all!')).toBeNull()
  })
})
