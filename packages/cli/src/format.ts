/** Plain-text helpers shared by the commands' readable output. */
import type { Subject } from '@tollgate/core'

/**
 * Control characters (C0 but the newline, DEL, C1) and the Unicode marks that reorder a line
 * (bidirectional embeddings, overrides and isolates).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g
const escaped = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`

/**
 * Text for a terminal: control characters shown as `\uXXXX`, so ids from a traffic file or a policy
 * cannot move the cursor, colour the screen or reorder a line. Newlines are kept.
 */
export const printable = (text: string): string => text.replace(CONTROL, escaped)

/** One field of a line (a table cell, an id): {@link printable}, with newlines shown as `\n` too. */
export const oneLine = (text: string): string => printable(text).replaceAll('\n', '\\n')

/** Columns aligned with two spaces; columns listed in `right` are right-aligned. */
export function table(header: string[], cells: string[][], right: readonly number[] = []): string {
  const rows = cells.map((row) => row.map(oneLine))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** A whole number with thousands separators. */
export const int = (n: number): string => Math.round(n).toLocaleString('en-US')

/** A share of a total, e.g. `12.5%`. */
export const share = (part: number, total: number): string =>
  total === 0 ? '0.0%' : `${((100 * part) / total).toFixed(1)}%`

/** Micro-units as money, e.g. `12.50 USD` (more digits below one cent). */
export function money(micros: number, currency: string): string {
  const units = micros / 1e6
  const abs = Math.abs(units)
  const digits = abs >= 1 || abs === 0 ? 2 : abs >= 0.0001 ? 4 : 6
  return `${units.toFixed(digits)} ${currency}`
}

/** An amount of a metric for people: money for `cost`, a number otherwise. */
export const amount = (metric: string, value: number, currency: string): string =>
  metric === 'cost' ? money(value, currency) : int(value)

/** A partition as `org=acme user=u1`, or `(all)` for a rule without `per`. */
export function partitionText(partition: Subject): string {
  const entries = Object.entries(partition)
  return entries.length === 0 ? '(all)' : entries.map(([d, id]) => oneLine(`${d}=${id}`)).join(' ')
}

/** An instant as an ISO time without milliseconds, in UTC. */
export const time = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z')

/** A span of time for people, e.g. `1d 2h`, `3m 4s`, `250ms`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const parts: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ]
  const out: string[] = []
  let rest = ms
  for (const [size, unit] of parts) {
    if (rest >= size) {
      out.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
    if (out.length === 2) break
  }
  return out.join(' ')
}
