/**
 * The wire protocol shared by `storeHandler` and `httpStore`: one `POST <base>/<operation>` per
 * store call, JSON bodies, and HMAC-SHA256 signatures (Web Crypto only) on requests and answers.
 *
 * Request header `x-tollgate-store-signature: t=<ms>,n=<nonce>,v1=<hex>` signs
 * `"tollgate-store-v1\nPOST\n<path>\n<t>\n<n>\n" + body bytes`.
 * Answer header `x-tollgate-store-signature: t=<store time>,v1=<hex>` signs
 * `"tollgate-store-v1 answer\n<request nonce>\n<status>\n<t>\n" + body bytes`, so an answer cannot
 * be forged nor replayed to another request. `<t>` is the store time as JavaScript writes a number
 * (`String(time)`: `1767571200000`, `0.30000000000000004`, `1e+21`, `5e-324`); the client verifies
 * the signature over the exact text of the header.
 */
import { STORE_OPERATIONS } from '@tollgate/core'

/** The store operations, one path segment each. */
export const OPERATIONS = STORE_OPERATIONS

/** One store operation. */
export type Operation = (typeof OPERATIONS)[number]

export const isOperation = (name: string): name is Operation =>
  (OPERATIONS as readonly string[]).includes(name)

/** The header carrying the signature, on requests and on answers. */
export const SIGNATURE_HEADER = 'x-tollgate-store-signature'

/** A shared secret: UTF-8 text or raw bytes, at least {@link MIN_SECRET_BYTES} long. */
export type Secret = string | Uint8Array

export const MIN_SECRET_BYTES = 32

const encoder = new TextEncoder()
const VERSION = 'tollgate-store-v1'

type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>

/** An HMAC-SHA256 key for signing and verifying; refuses secrets shorter than 32 bytes. */
export function hmacKey(secret: Secret, who: string): Promise<HmacKey> {
  const raw = typeof secret === 'string' ? encoder.encode(secret) : secret
  if (!(raw instanceof Uint8Array) || raw.length < MIN_SECRET_BYTES)
    throw new TypeError(`${who}: the secret must be at least ${MIN_SECRET_BYTES} bytes`)
  return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
}

function concat(head: string, body: Uint8Array): Uint8Array {
  const prefix = encoder.encode(head)
  const out = new Uint8Array(prefix.length + body.length)
  out.set(prefix)
  out.set(body, prefix.length)
  return out
}

/** The bytes a request signature covers. */
export const requestMessage = (path: string, timestamp: number, nonce: string, body: Uint8Array) =>
  concat(`${VERSION}\nPOST\n${path}\n${timestamp}\n${nonce}\n`, body)

/**
 * The bytes an answer signature covers. `time` is the store time, or the exact `t=` text of an
 * answer's header (a number is written as `String(time)`, the form the server puts in the header).
 */
export const answerMessage = (nonce: string, status: number, time: number | string, body: Uint8Array) =>
  concat(`${VERSION} answer\n${nonce}\n${status}\n${time}\n`, body)

const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** Hex HMAC-SHA256 of `message`. */
export async function sign(key: HmacKey, message: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.sign('HMAC', key, message)))
}

/** Whether `mac` (64 hex digits) is the HMAC of `message`; Web Crypto compares in constant time. */
export function verify(key: HmacKey, mac: string, message: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify('HMAC', key, fromHex(mac), message)
}

/** A random 128-bit nonce, 32 hex digits. */
export function nonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)))
}

const REQUEST_SIGNATURE = /^t=(\d{1,16}),n=([0-9A-Za-z_-]{16,128}),v1=([0-9a-f]{64})$/
/**
 * `t=` is any finite number as `String(number)` writes it: an optional minus, digits, an optional
 * fraction and an optional exponent (`-1.5e-7`, `0.30000000000000004`, `1.7976931348623157e+308`).
 * That text is at most 25 characters; the bounds only keep the pattern cheap.
 */
const ANSWER_SIGNATURE = /^t=(-?\d{1,25}(?:\.\d{1,25})?(?:e[+-]\d{1,3})?),v1=([0-9a-f]{64})$/

/** The parts of a request's signature header, or `null` when it is missing or malformed. */
export function parseRequestSignature(
  header: string | null,
): { timestamp: number; nonce: string; mac: string } | null {
  const parts = header === null ? null : REQUEST_SIGNATURE.exec(header.trim())
  return parts ? { timestamp: Number(parts[1]), nonce: parts[2]!, mac: parts[3]! } : null
}

/**
 * The parts of an answer's signature header, or `null` when it is missing, malformed, or its time is
 * not a finite number. `text` is the time exactly as written, which the signature covers.
 */
export function parseAnswerSignature(
  header: string | null,
): { time: number; text: string; mac: string } | null {
  const parts = header === null ? null : ANSWER_SIGNATURE.exec(header.trim())
  if (!parts) return null
  const time = Number(parts[1])
  return Number.isFinite(time) ? { time, text: parts[1]!, mac: parts[2]! } : null
}

/**
 * JSON text of `value`, refusing numbers JSON cannot carry (NaN, ±Infinity would arrive as `null`
 * and change meaning: `setOverride(key, NaN)` must not clear an override).
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v))
      throw new TypeError(`httpStore: ${v} cannot be sent to the store (numbers must be finite)`)
    return v
  })
}
