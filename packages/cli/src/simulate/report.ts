/**
 * The `--report` HTML file: the summary's tables and, per rule and metric, a chart of the
 * top partitions' usage against the cap over time. One self-contained file: inline CSS and
 * SVG, no script, no font or image to fetch.
 */
import { duration, int, money, partitionText, time } from '../format.js'
import { escapeXml, PALETTE, svgChart } from './chart.js'
import { outcomes, sections } from './tables.js'
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
  const o = outcomes(s)
  body.push(htmlTable(o.head, o.rows, o.numeric))
  for (const { title, note, table } of sections(s))
    body.push(
      `<h2>${escapeXml(title)}</h2>`,
      ...(note === undefined ? [] : [`<p class="muted">${escapeXml(note)}</p>`]),
      htmlTable(table.head, table.rows, table.numeric),
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
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>` +
    `<body>${body.join('\n')}</body></html>\n`
  )
}
