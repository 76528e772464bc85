/**
 * The `--report` HTML file: the summary's tables and, per rule and metric, a chart of the
 * top partitions' usage against the cap over time. One self-contained file: inline CSS and
 * SVG, no script, no font or image to fetch.
 */
import { duration, int, money, partitionText, share, time } from '../format.js'
import { escapeXml, PALETTE, svgChart } from './chart.js'
import type { Chart, SimulationSummary } from './types.js'

/** What goes into a report. */
export interface ReportInput {
  summary: SimulationSummary
  charts: Chart[]
  /** Shown in the title, e.g. the policy and traffic file names. */
  title?: string
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{padding:.2rem .7rem;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.legend{list-style:none;padding:0;font-size:.85rem}
.legend li{display:inline-block;margin-right:1rem}.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
.muted{color:#777}`

function htmlTable(header: string[], rows: string[][], numeric: readonly number[] = []): string {
  const cell = (tag: string, text: string, i: number) =>
    `<${tag}${numeric.includes(i) ? ' class="n"' : ''}>${escapeXml(text)}</${tag}>`
  return (
    `<table><thead><tr>${header.map((h, i) => cell('th', h, i)).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('') +
    '</tbody></table>'
  )
}

/** The report as one HTML document. */
export function renderReport(input: ReportInput): string {
  const s = input.summary
  const title = input.title ? `Tollgate simulation: ${input.title}` : 'Tollgate simulation'
  const body: string[] = [`<h1>${escapeXml(title)}</h1>`]
  const span =
    s.from === null || s.to === null
      ? 'no requests'
      : `${time(s.from)} → ${time(s.to)} (${duration(s.to - s.from)})`
  body.push(`<p>${int(s.requests)} requests, ${escapeXml(span)}; simulated in ${duration(s.elapsedMs)}.</p>`)
  body.push(
    htmlTable(
      ['outcome', 'requests', 'share'],
      [
        ['allowed', int(s.allowed), share(s.allowed, s.requests)],
        ['downgraded (of allowed)', int(s.downgraded), share(s.downgraded, s.requests)],
        ['refused', int(s.refused), share(s.refused, s.requests)],
        ['shadow-refused', int(s.shadowRefused), share(s.shadowRefused, s.requests)],
        ['failed', int(s.failed), share(s.failed, s.requests)],
      ],
      [1, 2],
    ),
  )
  if (s.refusals.length > 0)
    body.push(
      '<h2>Refusals by rule and reason</h2>',
      htmlTable(
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
    body.push(
      '<h2>Downgrades</h2>',
      htmlTable(
        ['from', 'to', 'reason', 'rule', 'requests'],
        s.downgrades.map((d) => [d.from, d.to, d.reason, d.rule, int(d.count)]),
        [4],
      ),
    )
  if (s.capsHit.length > 0)
    body.push(
      '<h2>Caps first hit</h2>',
      htmlTable(
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
  body.push('<h2>Usage against each cap over time</h2>')
  if (input.charts.length === 0) body.push('<p class="muted">No rule applied to any request.</p>')
  for (const chart of input.charts) {
    const cap = chart.metric === 'cost' ? money(chart.cap, s.currency) : int(chart.cap)
    body.push(
      `<h3>${escapeXml(chart.rule)}${chart.shadow ? ' <span class="muted">(shadow)</span>' : ''}: ` +
        `${escapeXml(chart.metric)} ${escapeXml(chart.window)}, cap ${escapeXml(cap)}</h3>`,
      svgChart(chart),
      `<ul class="legend">${chart.lines
        .map(
          (line, i) =>
            `<li><span class="sw" style="background:${PALETTE[i % PALETTE.length]}"></span>` +
            `${escapeXml(partitionText(line.partition))}</li>`,
        )
        .join('')}</ul>`,
    )
  }
  const spend = s.spend.filter((row) => row.top.length > 0)
  if (spend.length > 0)
    body.push(
      '<h2>Spend per scope</h2>',
      htmlTable(
        ['rule', 'partition', 'requests', 'tokens', 'cost'],
        spend.flatMap((row) =>
          row.top.map((p, i) => [
            i === 0 ? `${row.rule} (${int(row.partitions)} partitions)` : '',
            partitionText(p.partition),
            int(p.requests),
            int(p.inputTokens + p.outputTokens),
            money(p.cost, s.currency),
          ]),
        ),
        [2, 3, 4],
      ),
    )
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>` +
    `<body>${body.join('\n')}</body></html>\n`
  )
}
