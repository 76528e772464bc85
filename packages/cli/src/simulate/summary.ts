/** `tollgate simulate` output: the summary as readable tables. */
import { duration, int, table, time } from '../format.js'
import { outcomes, sections } from './tables.js'
import type { SimulationSummary } from './types.js'

/** The summary as text: outcomes, refusals per rule and reason, downgrades, cap hits, alerts, spend. */
export function formatSummary(summary: SimulationSummary): string {
  const s = summary
  const out: string[] = []
  const span =
    s.from === null || s.to === null
      ? 'no requests'
      : `${time(s.from)} → ${time(s.to)} (${duration(s.to - s.from)} of traffic)`
  const rate = s.elapsedMs > 0 ? ` (${int((s.requests * 1000) / s.elapsedMs)} requests/s)` : ''
  const threads = s.workers > 1 ? ` on ${s.workers} threads` : ''
  out.push(`Simulated ${int(s.requests)} requests, ${span}, in ${duration(s.elapsedMs)}${threads}${rate}.`)
  if (s.outOfOrder > 0)
    out.push(`${int(s.outOfOrder)} lines were out of time order and ran at the previous line's time.`)

  const { head, rows, numeric } = outcomes(s)
  out.push('', table(head, rows, numeric))
  for (const { title, note, table: t } of sections(s))
    out.push('', note === undefined ? title : `${title} (${note})`, table(t.head, t.rows, t.numeric))
  return out.join('\n')
}
