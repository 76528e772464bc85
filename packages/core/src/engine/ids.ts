/**
 * Reservation ids: a random prefix drawn once per gate (80 bits from Web Crypto, as hex)
 * followed by a counter in base 36. Unique across processes and restarts without a random
 * draw per call; not secret (they are never an authorisation), so a caller that hands
 * ids to untrusted parties should not treat them as capabilities.
 */
export function idMaker(): () => string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(10)) // Node 20+, browsers, Edge
  let prefix = ''
  for (const byte of bytes) prefix += byte.toString(16).padStart(2, '0')
  let next = 0
  return () => prefix + (next++).toString(36)
}
