/**
 * Hashing and comparison on Web Crypto, so that the entry point bundles for edge runtimes too.
 * Comparison uses Node's `crypto.timingSafeEqual` when the runtime has it, else a constant-time
 * loop: both take the same time for any two digests of the same length.
 */

const encoder = new TextEncoder()

/** SHA-256 of UTF-8 text. */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
}

/** The fewest bytes a shared secret may have: a shorter one can be guessed offline from one signature. */
export const MIN_SECRET_BYTES = 32

/** Throws a `TypeError` naming `who` when `secret` is not a string or bytes of at least {@link MIN_SECRET_BYTES}. */
export function checkSecret(who: string, secret: unknown): void {
  const raw = typeof secret === 'string' ? encoder.encode(secret) : secret
  if (!(raw instanceof Uint8Array) || raw.length < MIN_SECRET_BYTES)
    throw new TypeError(
      `${who}: the secret must be at least ${MIN_SECRET_BYTES} bytes (a string or a Uint8Array)`,
    )
}

/** HMAC-SHA256 of UTF-8 text. */
export async function hmacSha256(secret: string | Uint8Array, text: string): Promise<Uint8Array> {
  const raw = typeof secret === 'string' ? encoder.encode(secret) : secret
  const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(text)))
}

export const toHex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

/** Bytes of a lower- or upper-case hex string, or `null` when it is not one. */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** Base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

type TimingSafeEqual = (a: Uint8Array, b: Uint8Array) => boolean

/** Node's `timingSafeEqual`, looked up at run time so bundlers for edge runtimes never see `node:crypto`. */
function nodeTimingSafeEqual(): TimingSafeEqual | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  const mod = proc?.getBuiltinModule?.('node:crypto') as { timingSafeEqual?: TimingSafeEqual } | undefined
  return mod?.timingSafeEqual
}

/** Constant-time equality of two digests (different lengths are unequal at once: lengths are not secret). */
export function equalDigests(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  const timingSafeEqual = nodeTimingSafeEqual()
  if (timingSafeEqual) return timingSafeEqual(a, b)
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/** UTF-8 text of base64url (padded or not), or `null` when it is not valid base64url UTF-8. */
export function fromBase64UrlText(text: string): string | null {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) return null
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, ''))
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))
  } catch {
    return null
  }
}
