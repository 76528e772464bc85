/**
 * Alert signatures: `tollgate-signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
 * `<t>.<body>`, with Web Crypto only, so senders and receivers run on Node, Deno, Bun, edge
 * runtimes and browsers alike.
 */

/** The signature header's name. */
export const SIGNATURE_HEADER = 'tollgate-signature'

const encoder = new TextEncoder()

type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>

/** The fewest bytes a webhook secret may have: a shorter one can be guessed offline from one delivery. */
export const MIN_SECRET_BYTES = 32

/** The bytes of a webhook secret; throws a `TypeError` for one that is shorter than {@link MIN_SECRET_BYTES}. */
function secretBytes(secret: string): Uint8Array {
  const raw = typeof secret === 'string' ? encoder.encode(secret) : undefined
  if (!raw || raw.length < MIN_SECRET_BYTES)
    throw new TypeError(`the webhook secret must be a string of at least ${MIN_SECRET_BYTES} bytes`)
  return raw
}

async function key(secret: string): Promise<HmacKey> {
  return crypto.subtle.importKey('raw', secretBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
    'verify',
  ])
}

const hex = (bytes: ArrayBuffer) =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('')

function unhex(text: string): Uint8Array<ArrayBuffer> | null {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(text)) return null
  const bytes = new Uint8Array(text.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(text.slice(i * 2, i * 2 + 2), 16)
  return bytes
}

/**
 * The signature header for a body sent at `timestampMs`.
 * @example const header = await signAlert(secret, body, Date.now())
 */
export async function signAlert(secret: string, body: string, timestampMs: number): Promise<string> {
  // a NaN time signed `t=NaN`, which every receiver refuses
  if (typeof timestampMs !== 'number' || !Number.isFinite(timestampMs) || timestampMs < 0)
    throw new TypeError('signAlert: timestampMs must be ms since the epoch (a finite number, 0 or more)')
  if (typeof body !== 'string') throw new TypeError('signAlert: body must be the string that is sent')
  const t = Math.floor(timestampMs / 1000)
  const mac = await crypto.subtle.sign('HMAC', await key(secret), encoder.encode(`${t}.${body}`))
  return `t=${t},v1=${hex(mac)}`
}

/** Options of {@link verifyAlertSignature}. */
export interface VerifyOptions {
  /**
   * Largest difference between the signature's time and now; older (or future) signatures are
   * refused, so a captured request cannot be replayed later.
   * @default 300_000 (5 minutes)
   * @example verifyAlertSignature(secret, header, body, { toleranceMs: 60_000 })
   */
  toleranceMs?: number
  /**
   * The receiver's time, ms since epoch.
   * @default Date.now()
   * @example verifyAlertSignature(secret, header, body, { now: clock.now() })
   */
  now?: number
}

/**
 * Whether `header` is a valid signature of the raw request `body` (the exact text received, not
 * re-serialised JSON) with `secret`, made within the tolerance. Any `v1` entry may match, so a
 * sender can sign with an old and a new secret while they rotate. Comparison is constant-time.
 * @example
 * const body = await request.text()
 * if (!(await verifyAlertSignature(secret, request.headers.get('tollgate-signature'), body)))
 *   return new Response('bad signature', { status: 401 })
 */
export async function verifyAlertSignature(
  secret: string,
  header: string | null | undefined,
  body: string,
  options: VerifyOptions = {},
): Promise<boolean> {
  secretBytes(secret)
  const now = options.now ?? Date.now()
  const toleranceMs = options.toleranceMs ?? 300_000
  // a NaN here would pass every timestamp (nothing is greater than NaN): a replay would be accepted
  if (typeof now !== 'number' || !Number.isFinite(now))
    throw new TypeError(
      `verifyAlertSignature: now must be ms since the epoch (a finite number), got ${typeof now === 'number' ? now : typeof now}`,
    )
  if (typeof toleranceMs !== 'number' || !(toleranceMs >= 0))
    throw new TypeError(
      `verifyAlertSignature: toleranceMs must be a number of ms, 0 or more, got ${typeof toleranceMs === 'number' ? toleranceMs : typeof toleranceMs}`,
    )
  if (!header) return false
  let t: number | undefined
  const signatures: Uint8Array<ArrayBuffer>[] = []
  for (const part of header.split(',')) {
    const [name, value = ''] = part.trim().split('=', 2)
    if (name === 't' && /^\d{1,15}$/.test(value)) t = Number(value)
    else if (name === 'v1') {
      const bytes = unhex(value)
      if (bytes) signatures.push(bytes)
    }
  }
  if (t === undefined || signatures.length === 0) return false
  if (Math.abs(now - t * 1000) > toleranceMs) return false
  const k = await key(secret)
  const data = encoder.encode(`${t}.${body}`)
  for (const signature of signatures) if (await crypto.subtle.verify('HMAC', k, signature, data)) return true
  return false
}
