/**
 * The summary's tables, once, for both outputs: `formatSummary` prints them as text and
 * `renderReport` as HTML, so a column or a section added here shows in both.
 */
import { int, money, partitionText, share, time } from '../format.js'
import type { SimulationSummary } from './types.js'

/** A table: column names, rows of cell texts, and the columns to align right (numbers). */
export interface Table {
  head: string[]
  rows: string[][]
  numeric: number[]
}

/** A titled table of the summary; `note` says how to read it. */
export interface Section {
  title: string
  note?: string
  table: Table
}

/** Allowed (of which downgraded), refused, shadow-refused and failed requests, with their shares. */
export function outcomes(s: SimulationSummary): Table {
  const row = (name: string, count: number) => [name, int(count), share(count, s.requests)]
  return {
    head: ['outcome', 'requests', 'share'],
    rows: [
      row('allowed', s.allowed),
      row('  downgraded (of allowed)', s.downgraded),
      row('refused', s.refused),
      row('shadow-refused', s.shadowRefused),
      ...(s.failed > 0 ? [row('failed', s.failed)] : []),
    ],
    numeric: [1, 2],
  }
}

/** Every section with at least one row, in the order the docs list them (docs/cli.md). */
export function sections(s: SimulationSummary): Section[] {
  const out: Section[] = []
  const add = (title: string, table: Table, note?: string) => {
    if (table.rows.length > 0) out.push(note === undefined ? { title, table } : { title, note, table })
  }
  add(
    'Refusals by rule and reason',
    {
      head: ['rule', 'code', 'status', 'refused', 'shadow-refused'],
      rows: s.refusals.map((r) => [
        r.rule ?? '(identity)',
        r.code,
        String(r.status),
        int(r.refused),
        int(r.shadowRefused),
      ]),
      numeric: [2, 3, 4],
    },
    'shadow-refused: would have been refused had the rule been enforced',
  )
  add('Downgrades', {
    head: ['from', 'to', 'reason', 'rule', 'requests'],
    rows: s.downgrades.map((d) => [d.from, d.to, d.reason, d.rule, int(d.count)]),
    numeric: [4],
  })
  add('Caps first hit', {
    head: ['rule', 'metric', 'first hit', 'by', 'partitions', 'refusals', 'most refused'],
    rows: s.capsHit.map((h) => [
      h.shadow ? `${h.rule} (shadow)` : h.rule,
      h.metric || '(fallback)',
      time(h.firstAt),
      partitionText(h.partition),
      int(h.partitions),
      int(h.hits),
      h.top[0] ? `${partitionText(h.top[0].partition)} (${int(h.top[0].hits)})` : '',
    ]),
    numeric: [4, 5],
  })
  add('Alerts', {
    head: ['rule', 'metric', 'at', 'alerts', 'first'],
    rows: s.alerts.map((a) => [
      a.rule,
      a.metric,
      a.type === 'circuit' ? 'breaker tripped' : `${Math.round((a.threshold ?? 0) * 100)}%`,
      int(a.count),
      time(a.firstAt),
    ]),
    numeric: [3],
  })
  const spend = s.spend.filter((row) => row.top.length > 0)
  add(
    'Spend per scope',
    {
      head: ['rule', 'partition', 'requests', 'tokens', 'cost'],
      rows: spend.flatMap((row) =>
        row.top.map((p, i) => [
          i === 0
            ? `${row.rule} (${int(row.partitions)} ${row.partitions === 1 ? 'partition' : 'partitions'}, by ${row.metric})`
            : '',
          partitionText(p.partition),
          int(p.requests),
          int(p.inputTokens + p.outputTokens),
          money(p.cost, s.currency),
        ]),
      ),
      numeric: [2, 3, 4],
    },
    `actual usage over the run; top ${Math.max(0, ...spend.map((row) => row.top.length))} partitions per rule, ranked by the metric named`,
  )
  add(
    'Failed requests',
    {
      head: ['code', 'requests', 'first'],
      rows: s.errors.map((e) => [e.code, int(e.count), e.example]),
      numeric: [1],
    },
    'the engine refused to evaluate them',
  )
  return out
}
