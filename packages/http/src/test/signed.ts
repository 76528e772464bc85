/** Test helper: hand-made signed requests, to send what `httpStore` never would. */
import { hmacKey, nonce as randomNonce, requestMessage, SIGNATURE_HEADER, sign } from '../protocol.js'
import { SECRET } from './server.js'

export interface Signing {
  secret?: string
  timestamp?: number
  nonce?: string
  /** Sign this path instead of the one posted to. */
  path?: string
  /** Sign these bytes instead of the body sent. */
  signedBody?: Uint8Array
}

/** The signature header for a body posted to `url`. */
export async function signatureFor(url: string, body: Uint8Array, signing: Signing = {}): Promise<string> {
  const timestamp = signing.timestamp ?? Date.now()
  const n = signing.nonce ?? randomNonce()
  const key = await hmacKey(signing.secret ?? SECRET, 'test')
  const path = signing.path ?? new URL(url).pathname
  const mac = await sign(key, requestMessage(path, timestamp, n, signing.signedBody ?? body))
  return `t=${timestamp},n=${n},v1=${mac}`
}

/** POSTs `body` (text or bytes) to `url`, signed as `signing` says. */
export async function post(url: string, body: string | Uint8Array, signing: Signing = {}): Promise<Response> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [SIGNATURE_HEADER]: await signatureFor(url, bytes, signing),
    },
    body: bytes,
  })
}
