/**
 * `npm run simulate`: every strategy over several seeded worlds; prints the
 * table and writes docs/simulation.md and docs/simulation.svg.
 *
 *   node dist/sim/main.js [--seeds 5] [--pieces 1200] [--providers 60] [--days 365] [--no-write]
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { DEFAULT_ANOMALY_CONFIG, runAnomalies, summarizeAnomalies } from './anomalies.js'
import { BEHAVIOURS } from './behaviours.js'
import { COALITION_SIZES, type CollusionCell, type CollusionRow } from './collusion.js'
import { fitPredictor, TRAINING_SEEDS } from './fit-predictor.js'
import { anomalyTable, collusionChart, collusionTable, incidentTable, markdownTable, predictorTable, repairTable, summarizeRuns, svgChart, table, textTable, type StrategySummary } from './report.js'
import type { AnomalySummary } from './anomalies.js'
import { DEFAULT_CONFIG, simulate, STRATEGIES, type SimConfig, type SimResult, type Strategy } from './simulate.js'
import { DEFAULT_PARAMS } from '../src/reputation/model.js'
import { DEFAULT_POLICY } from '../src/reputation/repair.js'

/**
 * The strategies the predictor is also measured on in world B: random
 * placement with repair after failure, whose audits no prediction chooses
 * (the primary measure, docs/simulation.md), and cairn's own strategy.
 */
export const PREDICTOR_STRATEGIES: readonly Strategy[] = [STRATEGIES[1], STRATEGIES[0]]

export function anomalyRuns (seeds: number[], config: Partial<typeof DEFAULT_ANOMALY_CONFIG> = {}): ReturnType<typeof summarizeAnomalies> {
  const c = { ...DEFAULT_ANOMALY_CONFIG, ...config }
  return summarizeAnomalies(seeds.map(seed => runAnomalies({ ...c, seed })), c)
}

/** The strategy the collusion runs use: cairn's own. */
export const COLLUSION_STRATEGY: Strategy = STRATEGIES[0]

/** Each coalition size with identical and with distinct replicas, over the seeds. */
export function collusionRuns (seeds: number[], config: Partial<Omit<SimConfig, 'seed'>> = {}, sizes = COALITION_SIZES): CollusionRow[] {
  const cell = (size: number, distinct: boolean): CollusionCell => {
    const rs = seeds.map(seed => simulate({ ...DEFAULT_CONFIG, ...config, seed, coalition: size, distinct }, COLLUSION_STRATEGY))
    const mean = (f: (r: SimResult) => number): number => rs.reduce((a, r) => a + f(r), 0) / rs.length
    return { lost: rs.map(r => r.piecesLost), hiddenLoss: mean(r => r.hiddenLoss), hollowDays: mean(r => r.hollowDays), atRisk: mean(r => r.atRisk.reduce((a, b) => a + b, 0)) }
  }
  return sizes.map(size => ({ size, identical: cell(size, false), distinct: cell(size, true) }))
}

export function runAll (seeds: number[], config: Partial<Omit<SimConfig, 'seed'>> = {}, strategies = STRATEGIES): SimResult[] {
  const out: SimResult[] = []
  for (const seed of seeds) for (const s of strategies) out.push(simulate({ ...DEFAULT_CONFIG, ...config, seed }, s))
  return out
}

function flag (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  if (i < 0) return fallback
  const v = Number(process.argv[i + 1])
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive whole number`)
  return v
}

async function main (): Promise<void> {
  if (process.argv.includes('--fit')) {
    const seeds = Array.from({ length: flag('--seeds', TRAINING_SEEDS.length) }, (_, i) => TRAINING_SEEDS[0] + i)
    process.stdout.write(JSON.stringify(fitPredictor(seeds), null, 2) + '\n')
    return
  }
  const seedCount = flag('--seeds', 5)
  const config = { ...DEFAULT_CONFIG, pieces: flag('--pieces', DEFAULT_CONFIG.pieces), providers: flag('--providers', DEFAULT_CONFIG.providers), days: flag('--days', DEFAULT_CONFIG.days) }
  const seeds = Array.from({ length: seedCount }, (_, i) => i + 1)
  const started = Date.now()
  const results: SimResult[] = []
  for (const seed of seeds) {
    results.push(...runAll([seed], config))
    process.stderr.write(`seed ${seed} done (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
  }
  const summaries = summarizeRuns(results)
  const rows = table(summaries)
  const repairs = repairTable(summaries)
  process.stdout.write(textTable(rows) + '\n\n' + textTable(repairs) + '\n')
  const worldB = summarizeRuns(runAll(seeds, { ...config, world: 'B' }, PREDICTOR_STRATEGIES))
  process.stderr.write(`world B done (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
  const predictor = predictorTable([{ world: 'A', summaries }, { world: 'B', summaries: worldB }])
  process.stdout.write('\n' + textTable(predictor) + '\n')
  const anomalies = anomalyRuns(seeds)
  process.stderr.write(`anomalies done (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
  process.stdout.write('\n' + textTable(anomalyTable(anomalies)) + '\n\n' + textTable(incidentTable(anomalies)) + '\n')
  const collusion = collusionRuns(seeds, config)
  process.stderr.write(`collusion done (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
  const collusionRows = collusionTable(collusion, config.providers)
  process.stdout.write('\n' + textTable(collusionRows) + '\n')
  if (process.argv.includes('--no-write')) return
  await writeFile(new URL('../../docs/simulation.svg', import.meta.url), svgChart(summaries, `Pieces with fewer than 2 intact replicas, ${config.providers} providers, ${config.pieces} pieces × ${config.replicas}, ${seedCount} seeds`))
  await writeFile(new URL('../../docs/simulation-collusion.svg', import.meta.url), collusionChart(collusion, `Pieces lost with a colluding coalition, ${config.providers} providers, ${config.pieces} pieces × ${config.replicas}, ${seedCount} seeds`))
  const doc = new URL('../../docs/simulation.md', import.meta.url)
  let text = ''
  try { text = await readFile(doc, 'utf8') } catch {}
  await writeFile(doc, withResults(text, resultsSection(summaries, config, seeds, Date.now() - started, rows, repairs, predictor, anomalies, collusionRows)))
}

const START = '<!-- results:start -->'
const END = '<!-- results:end -->'

/** The document with the generated section between its markers replaced (appended when there are none). */
export function withResults (doc: string, section: string): string {
  const block = `${START}\n${section}${END}`
  const i = doc.indexOf(START)
  const j = doc.indexOf(END)
  if (i < 0 || j < i) return (doc === '' ? '# Simulation\n\n' : doc.trimEnd() + '\n\n') + block + '\n'
  return doc.slice(0, i) + block + doc.slice(j + END.length)
}

export function resultsSection (summaries: StrategySummary[], config: Omit<SimConfig, 'seed'>, seeds: number[], ms: number, rows: string[][], repairs: string[][], predictor: string[][], anomalies: AnomalySummary, collusion: string[][]): string {
  const a = DEFAULT_ANOMALY_CONFIG
  return [
    '<!-- written by `npm run simulate`; edits between the markers are overwritten -->',
    `Run: ${config.providers} providers, ${config.pieces} pieces × ${config.replicas} replicas arriving over days 0–${config.arrivalDays - 1}, ${config.days} days, seeds ${seeds.join(', ')}; ${(ms / 1000).toFixed(1)} s.`,
    '',
    markdownTable(rows),
    '',
    'Repairs by the behaviour of the provider replaced and by the rule that fired (mean over seeds):',
    '',
    markdownTable(repairs),
    '',
    'Behaviours: ' + BEHAVIOURS.map(b => `${b.name} ${Math.round(b.share * 100)} %`).join(', ') + '.',
    `Model: λ ${DEFAULT_PARAMS.lambda} per day, fast λ ${DEFAULT_PARAMS.fastLambda}, prior Beta(${DEFAULT_PARAMS.prior.alpha}, ${DEFAULT_PARAMS.prior.beta}), score = ${DEFAULT_PARAMS.quantile} quantile; repair at ${DEFAULT_POLICY.consecutiveFaults} faults in a row or predicted pass < ${DEFAULT_POLICY.threshold} (after ${DEFAULT_POLICY.minAudits} audits of the provider).`,
    '',
    `Fault predictor: Brier scores (mean squared error of the predicted pass probability, pooled over every audit of seeds ${seeds.join(', ')}) in world A and in world B, and Brier skill over the raw pass rate:`,
    '',
    markdownTable(predictor),
    '',
    `Anomaly detector: ${a.providers} providers × ${a.days} days, ${a.auditsPerDay} audits and one retrieval per provider per day, about ${a.episodesPerYear} injected anomalies per provider-year, seeds ${seeds.join(', ')}; an incident matches an anomaly of its provider when it opens from the anomaly's first day to ${a.window} days after its last.`,
    '',
    markdownTable(anomalyTable(anomalies)),
    '',
    markdownTable(incidentTable(anomalies)),
    '',
    `False alarms: ${anomalies.falseAlarmsPerProviderYear.toFixed(3)} per provider-year. Incidents per detected anomaly: ${anomalies.incidentsPerDetected.toFixed(2)}. Days from an anomaly's first day to its detection: median ${anomalies.medianDelayDays}, 90th percentile ${anomalies.p90DelayDays}; an incident stayed open a median ${anomalies.medianOverrunDays} days past its anomaly's last day.`,
    '',
    `Collusion: "${COLLUSION_STRATEGY.name}", a coalition of colluding providers chosen by the seed, identical replicas (same bytes, same piece CID) against distinct ones (own encryption, own piece CID); means over seeds ${seeds.join(', ')}:`,
    '',
    markdownTable(collusion),
    ''
  ].join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => { process.stderr.write(`${(err as Error).stack ?? String(err)}\n`); process.exitCode = 1 })
}
