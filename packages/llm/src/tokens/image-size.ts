/**
 * Reads the pixel size of a PNG, GIF, WebP or JPEG image from the first bytes of its base64
 * data, without decoding the image. Anything else answers `null` (size unknown).
 */
import type { ImageSize } from './images.js'

/** Base64 characters decoded at most: enough for JPEG headers with a large EXIF block. */
const MAX_BASE64 = 96 * 1024

/**
 * The size of an image given as a `data:` URL or as bare base64, or `null`.
 *
 * @example
 * imageSizeOf('data:image/png;base64,iVBORw0KGgo…') // { width: 1, height: 1 }
 */
export function imageSizeOf(source: string): ImageSize | null {
  if (typeof source !== 'string') return null
  let base64 = source
  if (source.startsWith('data:')) {
    const comma = source.indexOf(',')
    if (comma < 0 || !source.slice(0, comma).endsWith(';base64')) return null
    base64 = source.slice(comma + 1)
  }
  const take = Math.min(base64.length, MAX_BASE64) & ~3
  let bytes: Uint8Array
  try {
    bytes = decodeBase64(base64.slice(0, take))
  } catch {
    return null
  }
  return png(bytes) ?? gif(bytes) ?? webp(bytes) ?? jpeg(bytes)
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

const u16be = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!
const u16le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8)
const u24le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)
const u32be = (b: Uint8Array, i: number) =>
  ((b[i]! << 24) >>> 0) + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!)
const ascii = (b: Uint8Array, i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n))
const sized = (width: number, height: number): ImageSize | null =>
  width > 0 && height > 0 ? { width, height } : null

function png(b: Uint8Array): ImageSize | null {
  if (b.length < 24 || b[0] !== 0x89 || ascii(b, 1, 3) !== 'PNG' || ascii(b, 12, 4) !== 'IHDR') return null
  return sized(u32be(b, 16), u32be(b, 20))
}

function gif(b: Uint8Array): ImageSize | null {
  if (b.length < 10 || ascii(b, 0, 3) !== 'GIF') return null
  return sized(u16le(b, 6), u16le(b, 8))
}

function webp(b: Uint8Array): ImageSize | null {
  if (b.length < 30 || ascii(b, 0, 4) !== 'RIFF' || ascii(b, 8, 4) !== 'WEBP') return null
  const chunk = ascii(b, 12, 4)
  if (chunk === 'VP8X') return sized(u24le(b, 24) + 1, u24le(b, 27) + 1)
  if (chunk === 'VP8 ') return sized(u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff)
  if (chunk === 'VP8L') {
    const bits = b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24)
    return sized((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1)
  }
  return null
}

function jpeg(b: Uint8Array): ImageSize | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null
  let i = 2
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null
    const marker = b[i + 1]!
    if (marker === 0xff) {
      i++
      continue
    }
    const length = u16be(b, i + 2)
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc
    if (sof) return sized(u16be(b, i + 7), u16be(b, i + 5))
    i += 2 + length
  }
  return null
}
