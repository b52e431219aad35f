/**
 * Results of the simulation as a table for the terminal, a Markdown section
 * and an SVG chart (hand-written, no dependencies).
 */
import { ANOMALY_KINDS, SEVERITY, type AnomalySummary } from './anomalies.js'
import type { CollusionRow } from './collusion.js'
import type { Brier, SimResult } from './simulate.js'

export interface StrategySummary {
  strategy: string
  seeds: number
  lost: number[]
  repairs: number[]
  gibMoved: number[]
  postponed: number[]
  /** pooled over the seeds' audits */
  brier: Brier
  /** mean over seeds, per day */
  atRisk: number[]
  /** mean over seeds: repairs by the behaviour of the provider replaced, and by the rule that fired */
  repairsFrom: Record<string, number>
  repairsBy: { faults: number, prediction: number }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

export function summarizeRuns (results: SimResult[]): StrategySummary[] {
  const names = [...new Set(results.map(r => r.strategy))]
  return names.map(strategy => {
    const rs = results.filter(r => r.strategy === strategy)
    const days = rs[0].atRisk.length
    return {
      strategy,
      seeds: rs.length,
      lost: rs.map(r => r.piecesLost),
      repairs: rs.map(r => r.repairs),
      gibMoved: rs.map(r => r.gibMoved),
      postponed: rs.map(r => r.postponed),
      brier: pooledBrier(rs.map(r => r.brier)),
      atRisk: Array.from({ length: days }, (_, d) => mean(rs.map(r => r.atRisk[d]))),
      repairsFrom: Object.fromEntries(Object.keys(rs[0].repairsFrom).map(k => [k, mean(rs.map(r => r.repairsFrom[k as keyof SimResult['repairsFrom']]))])),
      repairsBy: { faults: mean(rs.map(r => r.repairsBy.faults)), prediction: mean(rs.map(r => r.repairsBy.prediction)) }
    }
  })
}

const PREDICTORS = ['model', 'provider', 'previous', 'posteriorMean', 'rawPassRate'] as const

/** Mean squared errors over all the audits of several runs. */
export function pooledBrier (runs: Brier[]): Brier {
  const out: Brier = { audits: 0, model: 0, provider: 0, previous: 0, posteriorMean: 0, rawPassRate: 0 }
  for (const b of runs) {
    out.audits += b.audits
    for (const k of PREDICTORS) out[k] += b[k] * b.audits
  }
  for (const k of PREDICTORS) out[k] /= Math.max(1, out.audits)
  return out
}

/** Brier skill over the raw pass rate: 1 − Brier / Brier of the raw pass rate. */
export function skill (b: Brier, predictor: typeof PREDICTORS[number] = 'model'): number {
  return b.rawPassRate === 0 ? 0 : 1 - b[predictor] / b.rawPassRate
}

const f1 = (x: number): string => x.toFixed(1)
const f4 = (x: number): string => x.toFixed(4)

export function table (summaries: StrategySummary[]): string[][] {
  const header = ['strategy', 'pieces lost (mean; per seed)', 'piece-days at risk (mean)', 'repairs (mean)', 'GiB moved (mean)', 'postponed']
  const rows = summaries.map(s => [
    s.strategy,
    `${mean(s.lost).toFixed(2)}; ${s.lost.join(', ')}`,
    f1(s.atRisk.reduce((a, b) => a + b, 0)),
    f1(mean(s.repairs)),
    f1(mean(s.gibMoved)),
    f1(mean(s.postponed))
  ])
  return [header, ...rows]
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`

/** Calibration of each predictor, per world and strategy: Brier scores pooled over the seeds, and skill over the raw pass rate. */
export function predictorTable (worlds: Array<{ world: string, summaries: StrategySummary[] }>): string[][] {
  const header = ['world', 'strategy', 'audits', 'Brier: predictor / provider only / previous / posterior mean / raw pass rate', 'skill: predictor', 'skill: provider only', 'skill: previous']
  const rows = worlds.flatMap(({ world, summaries }) => summaries.map(s => [
    world,
    s.strategy,
    String(s.brier.audits),
    PREDICTORS.map(k => f4(s.brier[k])).join(' / '),
    pct(skill(s.brier)),
    pct(skill(s.brier, 'provider')),
    pct(skill(s.brier, 'previous'))
  ]))
  return [header, ...rows]
}

/** Where the repairs came from: the behaviour of the provider replaced, and the rule that fired. */
export function repairTable (summaries: StrategySummary[]): string[][] {
  const kinds = Object.keys(summaries[0].repairsFrom)
  return [
    ['strategy', ...kinds.map(k => `from ${k}`), 'by faults in a row', 'by prediction'],
    ...summaries.map(s => [s.strategy, ...kinds.map(k => f1(s.repairsFrom[k])), f1(s.repairsBy.faults), f1(s.repairsBy.prediction)])
  ]
}

export function textTable (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n')
}

export function markdownTable (rows: string[][]): string {
  const [header, ...body] = rows
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...body.map(r => `| ${r.join(' | ')} |`)].join('\n')
}

const COLOURS = ['#1b7837', '#b2182b', '#5aae61', '#ef8a62', '#2166ac']
const DASHES = ['', '', '6 4', '6 4', '2 3']

function escapeXml (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export interface ChartSeries {
  name: string
  values: number[]
}

/** A line chart: one line per series over the same x values, with a legend below. */
export function lineChart (o: { title: string, xs: number[], xLabel: string, yLabel: string, series: ChartSeries[], xTicks: number[] }): string {
  const W = 800
  const H = 440 + 16 * o.series.length
  const L = 60
  const R = 20
  const T = 40
  const B = 90 + 16 * o.series.length
  const xMin = Math.min(...o.xs)
  const xMax = Math.max(...o.xs)
  const yMax = niceCeil(Math.max(1, ...o.series.flatMap(s => s.values)))
  const x = (v: number): number => L + (W - L - R) * (v - xMin) / Math.max(1e-9, xMax - xMin)
  const y = (v: number): number => T + (H - T - B) * (1 - v / yMax)
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`)
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(o.title)}</text>`)
  for (let i = 0; i <= 5; i++) {
    const v = yMax * i / 5
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#dddddd"/>`)
    parts.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${formatTick(v)}</text>`)
  }
  for (const t of o.xTicks) parts.push(`<text x="${x(t).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${formatTick(t)}</text>`)
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - B + 36}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`)
  parts.push(`<text x="16" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">${escapeXml(o.yLabel)}</text>`)
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333333"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333333"/>`)
  o.series.forEach((s, i) => {
    const points = s.values.map((v, k) => `${x(o.xs[k]).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    const dash = DASHES[i % DASHES.length] === '' ? '' : ` stroke-dasharray="${DASHES[i % DASHES.length]}"`
    parts.push(`<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5"${dash} points="${points}"/>`)
    const ly = H - B + 56 + 16 * i
    parts.push(`<line x1="${L}" x2="${L + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"${dash}/>`)
    parts.push(`<text x="${L + 38}" y="${ly}">${escapeXml(s.name)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

/** Pieces at risk (fewer than 2 intact replicas) per day, one line per strategy. */
export function svgChart (summaries: StrategySummary[], title: string): string {
  const days = summaries[0].atRisk.length
  return lineChart({
    title,
    xs: Array.from({ length: days }, (_, d) => d),
    xTicks: Array.from({ length: Math.ceil(days / 30) }, (_, i) => 30 * i),
    xLabel: 'day',
    yLabel: 'pieces at risk (mean over seeds)',
    series: summaries.map(s => ({ name: s.strategy, values: s.atRisk }))
  })
}

function niceCeil (v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function formatTick (v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1)
}

/** Recall of injected anomalies by kind and severity, then the totals. */
export function anomalyTable (a: AnomalySummary): string[][] {
  const range = (k: typeof ANOMALY_KINDS[number], half: 'mild' | 'strong'): string => {
    const { lo, hi, mid } = SEVERITY[k]
    const unit = k === 'slowdown' ? '×' : ''
    const f = (x: number): string => k === 'slowdown' ? x.toFixed(2) : x.toFixed(3)
    return half === 'mild' ? `${f(lo)}–${f(mid)}${unit}` : `${f(mid)}–${f(hi)}${unit}`
  }
  const rows = ANOMALY_KINDS.flatMap(k => (['mild', 'strong'] as const).map(half => {
    const c = a.recallByKind[k][half]
    return [k, range(k, half), String(c.episodes), String(c.detected), pct(c.episodes === 0 ? 1 : c.detected / c.episodes), Number.isNaN(c.medianDelayDays) ? '–' : String(c.medianDelayDays)]
  }))
  return [['anomaly', 'severity', 'episodes', 'detected', 'recall', 'median days to detection'], ...rows, ['all', '', String(a.episodes), String(Math.round(a.recall * a.episodes)), pct(a.recall), String(a.medianDelayDays)]]
}

/** Incidents by series: how many, and how many matched an injected anomaly. */
export function incidentTable (a: AnomalySummary): string[][] {
  const series = Object.entries(a.incidentsBySeries)
  return [
    ['series', 'incidents', 'matching an anomaly', 'precision'],
    ...series.map(([s, c]) => [s, String(c.incidents), String(c.matched), pct(c.incidents === 0 ? 1 : c.matched / c.incidents)]),
    ['all', String(a.incidents), String(Math.round(a.precision * a.incidents)), pct(a.precision)]
  ]
}

const lostCell = (lost: number[]): string => `${mean(lost).toFixed(2)}; ${lost.join(', ')}`

/** Pieces lost, hidden loss and hollow replicas by coalition size, identical against distinct replicas. */
export function collusionTable (rows: CollusionRow[], providers: number): string[][] {
  return [
    ['coalition', 'pieces lost, identical (mean; per seed)', 'pieces lost, distinct', 'hidden-loss piece-days, identical', 'hidden-loss piece-days, distinct', 'hollow replica-days, identical', 'piece-days at risk, identical', 'piece-days at risk, distinct'],
    ...rows.map(r => [
      `${r.size} of ${providers} (${Math.round(100 * r.size / providers)} %)`,
      lostCell(r.identical.lost),
      lostCell(r.distinct.lost),
      f1(r.identical.hiddenLoss),
      f1(r.distinct.hiddenLoss),
      f1(r.identical.hollowDays),
      f1(r.identical.atRisk),
      f1(r.distinct.atRisk)
    ])
  ]
}

export function collusionChart (rows: CollusionRow[], title: string): string {
  return lineChart({
    title,
    xs: rows.map(r => r.size),
    xTicks: rows.map(r => r.size),
    xLabel: 'colluding providers',
    yLabel: 'pieces lost (mean over seeds)',
    series: [
      { name: 'identical replicas (same bytes, same piece CID)', values: rows.map(r => mean(r.identical.lost)) },
      { name: 'distinct replicas (own encryption, own piece CID)', values: rows.map(r => mean(r.distinct.lost)) }
    ]
  })
}
