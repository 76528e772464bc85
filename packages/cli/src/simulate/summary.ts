/** `tollgate simulate` output: the summary as readable tables. */
import { duration, int, money, partitionText, share, table, time } from '../format.js'
import type { SimulationSummary } from './types.js'

/** The summary as text: outcomes, refusals per rule and reason, downgrades, cap hits, alerts, spend. */
export function formatSummary(summary: SimulationSummary): string {
  const s = summary
  const { currency } = s
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

  out.push(
    '',
    table(
      ['outcome', 'requests', 'share'],
      [
        ['allowed', int(s.allowed), share(s.allowed, s.requests)],
        ['  downgraded', int(s.downgraded), share(s.downgraded, s.requests)],
        ['refused', int(s.refused), share(s.refused, s.requests)],
        ['shadow-refused', int(s.shadowRefused), share(s.shadowRefused, s.requests)],
        ...(s.failed > 0 ? [['failed', int(s.failed), share(s.failed, s.requests)]] : []),
      ],
      [1, 2],
    ),
  )

  const section = (title: string, body: string) => out.push('', title, body)
  if (s.refusals.length > 0)
    section(
      'Refusals by rule and reason (shadow-refused: would have been refused had the rule been enforced)',
      table(
        ['rule', 'code', 'status', 'refused', 'shadow-refused'],
        s.refusals.map((r) => [
          r.rule ?? '(identity)',
          r.code,
          String(r.status),
          int(r.refused),
          int(r.shadowRefused),
        ]),
        [2, 3, 4],
      ),
    )
  if (s.downgrades.length > 0)
    section(
      'Downgrades',
      table(
        ['from', 'to', 'reason', 'rule', 'requests'],
        s.downgrades.map((d) => [d.from, d.to, d.reason, d.rule, int(d.count)]),
        [4],
      ),
    )
  if (s.capsHit.length > 0)
    section(
      'Caps first hit',
      table(
        ['rule', 'metric', 'first hit', 'by', 'partitions', 'refusals', 'most refused'],
        s.capsHit.map((h) => [
          h.shadow ? `${h.rule} (shadow)` : h.rule,
          h.metric || '(fallback)',
          time(h.firstAt),
          partitionText(h.partition),
          int(h.partitions),
          int(h.hits),
          h.top[0] ? `${partitionText(h.top[0].partition)} (${int(h.top[0].hits)})` : '',
        ]),
        [4, 5],
      ),
    )
  if (s.alerts.length > 0)
    section(
      'Alerts',
      table(
        ['rule', 'metric', 'at', 'alerts', 'first'],
        s.alerts.map((a) => [
          a.rule,
          a.metric,
          a.type === 'circuit' ? 'breaker tripped' : `${Math.round((a.threshold ?? 0) * 100)}%`,
          int(a.count),
          time(a.firstAt),
        ]),
        [3],
      ),
    )
  const spend = s.spend.filter((row) => row.top.length > 0)
  if (spend.length > 0) {
    const top = Math.max(...spend.map((row) => row.top.length))
    section(
      `Spend per scope (actual usage over the run; top ${top} partitions per rule)`,
      table(
        ['rule', 'partition', 'requests', 'tokens', 'cost'],
        spend.flatMap((row) =>
          row.top.map((p, i) => [
            i === 0 ? `${row.rule} (${int(row.partitions)}, by ${row.metric})` : '',
            partitionText(p.partition),
            int(p.requests),
            int(p.inputTokens + p.outputTokens),
            money(p.cost, currency),
          ]),
        ),
        [2, 3, 4],
      ),
    )
  }
  if (s.errors.length > 0)
    section(
      'Failed requests (the engine refused to evaluate them)',
      table(
        ['code', 'requests', 'first'],
        s.errors.map((e) => [e.code, int(e.count), e.example]),
        [1],
      ),
    )
  return out.join('\n')
}
