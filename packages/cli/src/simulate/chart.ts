/** Inline SVG line charts of usage against a cap over time: no script, no external resource. */
import type { Chart } from './types.js'

/** Colours for the partitions' lines (colour-blind friendly, Okabe–Ito). */
export const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#F0E442',
  '#000000',
]

const W = 720
const H = 260
const LEFT = 72
const RIGHT = 16
const TOP = 16
const BOTTOM = 36

/** Text safe inside HTML and SVG elements and attributes. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function compact(value: number): string {
  const abs = Math.abs(value)
  if (abs >= 1e9) return `${+(value / 1e9).toFixed(1)}G`
  if (abs >= 1e6) return `${+(value / 1e6).toFixed(1)}M`
  if (abs >= 1e4) return `${+(value / 1e3).toFixed(1)}k`
  return abs > 0 && abs < 10 ? `${+value.toFixed(2)}` : `${Math.round(value)}`
}

/** A chart's value for display: currency units for `cost`, the count otherwise. */
const scaled = (chart: Chart, value: number) => (chart.metric === 'cost' ? value / 1e6 : value)

function timeLabel(ms: number, span: number): string {
  const iso = new Date(ms).toISOString()
  return span <= 2 * 86_400_000 ? iso.slice(11, 16) : iso.slice(5, 10)
}

/** One chart as an `<svg>` element: a line per partition, the cap as a dashed line. */
export function svgChart(chart: Chart): string {
  const points = chart.lines.flatMap((l) => l.points)
  if (points.length === 0) return ''
  const t0 = Math.min(...chart.lines.map((l) => l.points[0]![0]))
  const t1 = Math.max(...chart.lines.map((l) => l.points.at(-1)![0]))
  const span = Math.max(1, t1 - t0)
  const peak = Math.max(chart.cap, ...points.map((p) => p[1]))
  const top = peak === 0 ? 1 : peak * 1.08
  const x = (t: number) => LEFT + ((t - t0) / span) * (W - LEFT - RIGHT)
  const y = (v: number) => TOP + (1 - v / top) * (H - TOP - BOTTOM)
  const parts: string[] = []
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4
    parts.push(
      `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
      `<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${compact(scaled(chart, v))}</text>`,
    )
  }
  for (let i = 0; i <= 6; i++) {
    const t = t0 + (span * i) / 6
    parts.push(
      `<text x="${x(t).toFixed(1)}" y="${H - BOTTOM + 16}" text-anchor="middle">${timeLabel(t, span)}</text>`,
    )
  }
  chart.lines.forEach((line, i) => {
    const d = line.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    parts.push(
      `<polyline fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.5" points="${d}"/>`,
    )
  })
  const capY = y(chart.cap).toFixed(1)
  parts.push(
    `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${capY}" y2="${capY}" stroke="#c00" stroke-dasharray="6 4"/>`,
    `<text x="${W - RIGHT}" y="${(Number(capY) - 4).toFixed(1)}" text-anchor="end" fill="#c00">cap ${compact(scaled(chart, chart.cap))}</text>`,
    `<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${H - BOTTOM}" stroke="#999"/>`,
    `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${H - BOTTOM}" y2="${H - BOTTOM}" stroke="#999"/>`,
  )
  const title = `${chart.rule}: ${chart.metric} ${chart.window}`
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="${escapeXml(title)}" font-family="system-ui, sans-serif" font-size="11" fill="#333">` +
    `<title>${escapeXml(title)}</title>${parts.join('')}</svg>`
  )
}
