/**
 * Online anomaly detection per provider, over what a client measures of it:
 * proof latency, retrieval throughput, missed audits and failed proofs. It
 * opens an incident when a series leaves its own baseline and resolves it
 * when the series is back, so that `cairn watch` can raise one alert per
 * incident and announce its end.
 *
 * Latency and throughput (positive, noise roughly multiplicative) are read on
 * a log scale against a baseline that is an EWMA of the level and an EWMA of
 * the absolute deviation (a running MAD; σ ≈ 1.2533 × mean absolute deviation
 * for normal noise). The robust score is z = (y − level) / σ, signed so that
 * worse is positive. Two tests share it:
 *   - a spike: `spikeRun` samples in a row with z above `spikeZ` (one
 *     sample alone is a blip: heavy-tailed noise makes single outliers common);
 *   - a drift: Page's one-sided CUSUM of z (allowance `cusumK`, threshold
 *     `cusumH`, E. S. Page, "Continuous inspection schemes", Biometrika 1954),
 *     which finds a sustained shift too small for any one sample to stand out.
 * The baseline learns only outside incidents, not while the CUSUM is past
 * half its threshold, and from residuals clipped at `clipZ` σ (Huber), so
 * neither an outlier nor the anomaly itself drags it.
 * An incident resolves after `recover` samples in a row with z below
 * `resolveZ`.
 *
 * Misses and failures are counts (k bad of n audits) and get a Bernoulli
 * CUSUM on the log-likelihood ratio of a raised rate p1 against the baseline
 * rate p0 (forgotten per audit); the incident resolves when the reverse CUSUM
 * (evidence for p0 over the rate seen since the onset, at least p1) reaches
 * `resolveH`.
 *
 * Why this method: a plain EWMA with a standard deviation is pulled by the
 * very outliers it should flag (one 10× latency inflates σ and masks the
 * next); a sliding-window median and MAD is robust but keeps a window per
 * series, not O(1); seasonal models (Holt–Winters) have no season to fit in
 * audit latency; batch methods (ESD tests, isolation forests) do not run
 * online; Bayesian online change-point detection keeps a distribution over
 * run lengths that must be pruned. EWMA with clipped updates and an
 * EWMA-of-deviations scale is O(1) per series, robust to single outliers,
 * and CUSUM is the classic minimum-delay detector of a mean shift at a given
 * false-alarm rate (Lorden 1971).
 *
 * Everything here is arithmetic on the observations in the order given: no
 * clock, no randomness, so a replay of the ledger gives the same incidents
 * with the same ids.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

export type Series = 'latency' | 'throughput' | 'misses' | 'failures'
export const SERIES: readonly Series[] = ['latency', 'throughput', 'misses', 'failures']

export type IncidentKind = 'spike' | 'drift' | 'rate'

export interface IncidentEvidence {
  /** the baseline when the incident opened: the typical value (ms, bytes/s) or fault rate */
  baseline: number
  /** the value that opened it */
  value: number
  /** robust z (spike, drift) or log-likelihood ratio (rate) when it opened */
  score: number
  /** the worst value seen while open */
  worst: number
  /** samples (or audits) seen while open, and bad ones among them (rate series) */
  samples: number
  bad?: number
}

export interface Incident {
  /** stable: a hash of provider, series and the time it opened */
  id: string
  provider: string
  series: Series
  kind: IncidentKind
  /** unix ms of the observation that opened it */
  startedAt: number
  /** estimated onset: when the CUSUM last left zero, or the spike's first sample */
  onsetAt: number
  endedAt?: number
  summary: string
  evidence: IncidentEvidence
}

export interface IncidentEvent {
  type: 'opened' | 'resolved'
  incident: Incident
}

export interface DetectorOptions {
  /** EWMA weight of a new sample in the level and in the deviation */
  alpha: number
  /** samples before any alarm (the baseline is their plain mean) */
  warmup: number
  spikeZ: number
  /** samples in a row above spikeZ that make a spike */
  spikeRun: number
  cusumK: number
  cusumH: number
  /** residuals beyond this many σ are clipped when the baseline learns, and in the CUSUM */
  clipZ: number
  resolveZ: number
  recover: number
  /** the least σ on the log scale (1 %), so a constant series does not alarm on rounding */
  minScale: number
  /** rate series: forgetting per audit of the baseline counts */
  rateLambda: number
  /** rate series: least baseline rate, raised rate p1 = min(0.95, max(ratio · p0, p0 + delta)) */
  rateFloor: number
  rateRatio: number
  rateDelta: number
  rateH: number
  resolveH: number
  /** rate series: audits before any alarm */
  rateWarmup: number
}

export const DEFAULT_DETECTOR: Readonly<DetectorOptions> = Object.freeze({
  alpha: 0.005,
  warmup: 30,
  spikeZ: 6,
  spikeRun: 2,
  cusumK: 1,
  cusumH: 10,
  clipZ: 3,
  resolveZ: 1,
  recover: 5,
  minScale: 0.01,
  rateLambda: 0.999,
  rateFloor: 0.005,
  rateRatio: 4,
  rateDelta: 0.05,
  rateH: 10,
  resolveH: 5,
  rateWarmup: 50
})

/** Which direction is worse: latency up, throughput down. */
const DIRECTION: Record<'latency' | 'throughput', 1 | -1> = { latency: 1, throughput: -1 }
const SIGMA_PER_MEAN_ABS_DEV = Math.sqrt(Math.PI / 2)

interface LevelState {
  n: number
  level: number
  dev: number
  cusum: number
  cusumFrom: number
  /** samples in a row above spikeZ, and when the run began */
  high: number
  highFrom: number
  calm: number
  open?: Incident
}

interface RateState {
  /** decayed bad and good audits */
  bad: number
  good: number
  audits: number
  cusum: number
  cusumFrom: number
  /** bad and all audits since the CUSUM last left zero */
  runBad: number
  runAudits: number
  back: number
  open?: Incident
}

type State = LevelState | RateState

/** The whole state of a detector as plain JSON, to keep it across restarts. */
export interface DetectorSnapshot {
  version: 1
  states: Array<[string, State]>
}

function checkOptions (o: DetectorOptions): DetectorOptions {
  const positive = ['spikeZ', 'cusumH', 'clipZ', 'minScale', 'rateFloor', 'rateH', 'resolveH'] as const
  for (const k of positive) if (!(o[k] > 0) || !Number.isFinite(o[k])) throw new RangeError(`${k} must be a positive number, got ${o[k]}`)
  if (!(o.alpha > 0 && o.alpha <= 1)) throw new RangeError(`alpha must be in (0, 1], got ${o.alpha}`)
  if (!(o.rateLambda > 0 && o.rateLambda <= 1)) throw new RangeError(`rateLambda must be in (0, 1], got ${o.rateLambda}`)
  for (const k of ['warmup', 'spikeRun', 'recover', 'rateWarmup'] as const) if (!Number.isSafeInteger(o[k]) || o[k] < 1) throw new RangeError(`${k} must be a positive whole number, got ${o[k]}`)
  if (!(o.cusumK >= 0) || !(o.resolveZ >= 0) || !(o.rateRatio >= 1) || !(o.rateDelta > 0 && o.rateDelta < 1)) throw new RangeError('cusumK and resolveZ must be ≥ 0, rateRatio ≥ 1, rateDelta in (0, 1)')
  return o
}

export function incidentId (provider: string, series: Series, startedAt: number): string {
  return bytesToHex(sha256(new TextEncoder().encode(`${provider}\n${series}\n${startedAt}`))).slice(0, 16)
}

/** A copy for the caller: the open incident's evidence keeps changing. */
function event (type: IncidentEvent['type'], inc: Incident): IncidentEvent {
  return { type, incident: { ...inc, evidence: { ...inc.evidence } } }
}

function resolve (s: State, at: number): IncidentEvent {
  const inc = s.open as Incident
  inc.endedAt = at
  s.open = undefined
  s.cusum = 0
  return event('resolved', inc)
}

function round (x: number): number {
  return Number(x.toPrecision(4))
}

/**
 * One detector for all providers of a client: O(1) state per provider and
 * series. Feed it observations in time order per provider and series.
 */
export class AnomalyDetector {
  readonly options: DetectorOptions
  private readonly states = new Map<string, State>()

  constructor (options: Partial<DetectorOptions> = {}) {
    this.options = checkOptions({ ...DEFAULT_DETECTOR, ...options })
  }

  /**
   * One observation: for latency (ms) and throughput (bytes/s) a value; for
   * misses and failures `value` bad audits out of `count`. Returns the
   * incident opened or resolved by it, if any.
   */
  observe (provider: string, series: Series, at: number, value: number, count = 1): IncidentEvent | undefined {
    if (typeof provider !== 'string' || provider === '') throw new TypeError('provider must be a non-empty string')
    if (!SERIES.includes(series)) throw new TypeError(`unknown series ${String(series)}`)
    if (!Number.isFinite(at)) throw new RangeError(`at must be a finite time in ms, got ${at}`)
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${series} must be a finite number ≥ 0, got ${value}`)
    const key = `${series}\n${provider}`
    if (series === 'latency' || series === 'throughput') {
      let s = this.states.get(key) as LevelState | undefined
      if (s === undefined) { s = { n: 0, level: 0, dev: 0, cusum: 0, cusumFrom: at, high: 0, highFrom: at, calm: 0 }; this.states.set(key, s) }
      return this.level(s, provider, series, at, value)
    }
    if (!Number.isSafeInteger(count) || count < 1 || !Number.isInteger(value) || value > count) throw new RangeError(`${series}: expected whole bad ≤ count ≥ 1, got ${value} of ${count}`)
    let s = this.states.get(key) as RateState | undefined
    if (s === undefined) { s = { bad: 0, good: 0, audits: 0, cusum: 0, cusumFrom: at, runBad: 0, runAudits: 0, back: 0 }; this.states.set(key, s) }
    return this.rate(s, provider, series, at, value, count)
  }

  /** One audit result: its latency (when answered), and a miss or a failure. */
  observeAudit (provider: string, at: number, outcome: 'pass' | 'fail' | 'miss', latencyMs?: number): IncidentEvent[] {
    const events: IncidentEvent[] = []
    const push = (e: IncidentEvent | undefined): void => { if (e !== undefined) events.push(e) }
    push(this.observe(provider, 'misses', at, outcome === 'miss' ? 1 : 0))
    if (outcome !== 'miss') {
      push(this.observe(provider, 'failures', at, outcome === 'fail' ? 1 : 0))
      if (latencyMs !== undefined) push(this.observe(provider, 'latency', at, latencyMs))
    }
    return events
  }

  snapshot (): DetectorSnapshot {
    return { version: 1, states: [...this.states].map(([k, v]) => [k, structuredClone(v)]) }
  }

  static restore (snapshot: DetectorSnapshot, options: Partial<DetectorOptions> = {}): AnomalyDetector {
    if (snapshot?.version !== 1 || !Array.isArray(snapshot.states)) throw new TypeError('not a detector snapshot (version 1)')
    const d = new AnomalyDetector(options)
    for (const [k, v] of snapshot.states) d.states.set(k, structuredClone(v))
    return d
  }

  /** Incidents open now. */
  open (): Incident[] {
    const out: Incident[] = []
    for (const s of this.states.values()) if (s.open !== undefined) out.push(event('opened', s.open).incident)
    return out.sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id))
  }

  private level (s: LevelState, provider: string, series: 'latency' | 'throughput', at: number, value: number): IncidentEvent | undefined {
    const o = this.options
    const y = Math.log1p(value)
    if (s.n < o.warmup) {
      s.n++
      const delta = y - s.level
      s.level = s.n === 1 ? y : s.level + delta / s.n
      s.dev = s.n === 1 ? 0 : s.dev + (Math.abs(y - s.level) - s.dev) / s.n
      return undefined
    }
    s.n++
    const sigma = Math.max(o.minScale, SIGMA_PER_MEAN_ABS_DEV * s.dev)
    const r = y - s.level
    const z = DIRECTION[series] * r / sigma
    if (s.open !== undefined) {
      const inc = s.open
      inc.evidence.samples++
      if (DIRECTION[series] * (value - inc.evidence.worst) > 0) inc.evidence.worst = round(value)
      s.calm = z < o.resolveZ ? s.calm + 1 : 0
      if (s.calm < o.recover) return undefined
      s.calm = 0
      return resolve(s, at)
    }
    if (s.cusum === 0) s.cusumFrom = at
    s.cusum = Math.max(0, s.cusum + Math.min(z, o.clipZ) - o.cusumK)
    if (z > o.spikeZ) {
      if (s.high === 0) s.highFrom = at
      s.high++
    } else s.high = 0
    const kind: IncidentKind | undefined = s.high >= o.spikeRun ? 'spike' : s.cusum > o.cusumH ? 'drift' : undefined
    if (kind === undefined) {
      // a series on its way out of its baseline does not teach it
      if (s.cusum <= o.cusumH / 2 && s.high === 0) {
        const clipped = Math.max(-o.clipZ * sigma, Math.min(o.clipZ * sigma, r))
        s.level += o.alpha * clipped
        s.dev += o.alpha * (Math.abs(clipped) - s.dev)
      }
      return undefined
    }
    const baseline = Math.expm1(s.level)
    const what = series === 'latency' ? 'proof latency' : 'retrieval throughput'
    const ratio = series === 'latency' ? value / Math.max(1e-9, baseline) : baseline / Math.max(1e-9, value)
    const inc: Incident = {
      id: incidentId(provider, series, at),
      provider,
      series,
      kind,
      startedAt: at,
      onsetAt: kind === 'spike' ? s.highFrom : s.cusumFrom,
      summary: `${what} ${series === 'latency' ? 'up' : 'down'} ${ratio.toFixed(1)}× against its baseline of ${round(baseline)} ${series === 'latency' ? 'ms' : 'bytes/s'} (${kind}, robust z ${z.toFixed(1)})`,
      evidence: { baseline: round(baseline), value: round(value), score: round(z), worst: round(value), samples: 1 }
    }
    s.open = inc
    s.calm = 0
    s.high = 0
    return event('opened', inc)
  }

  private rate (s: RateState, provider: string, series: 'misses' | 'failures', at: number, bad: number, count: number): IncidentEvent | undefined {
    const o = this.options
    const total = s.bad + s.good
    const p0 = Math.min(0.5, Math.max(o.rateFloor, total > 0 ? s.bad / total : o.rateFloor))
    const p1 = Math.min(0.95, Math.max(o.rateRatio * p0, p0 + o.rateDelta))
    const llr = (q: number): number => bad * Math.log(q / p0) + (count - bad) * Math.log((1 - q) / (1 - p0))
    s.audits += count
    if (s.open !== undefined) {
      const inc = s.open
      inc.evidence.samples += count
      inc.evidence.bad = (inc.evidence.bad ?? 0) + bad
      inc.evidence.worst = round(Math.max(inc.evidence.worst, bad / count))
      // back to p0, against the rate seen since the onset (at least p1)
      const seen = Math.min(0.95, Math.max(p1, inc.evidence.bad / inc.evidence.samples))
      s.back = Math.max(0, s.back - llr(seen))
      if (s.back < o.resolveH) return undefined
      s.back = 0
      return resolve(s, at)
    }
    if (s.cusum === 0) { s.cusumFrom = at; s.runBad = 0; s.runAudits = 0 }
    s.cusum = Math.max(0, s.cusum + llr(p1))
    s.runBad += bad
    s.runAudits += count
    if (s.audits <= o.rateWarmup || s.cusum <= o.rateH) {
      if (s.audits <= o.rateWarmup || s.cusum <= o.rateH / 2) {
        const decay = Math.pow(o.rateLambda, count)
        s.bad = s.bad * decay + bad
        s.good = s.good * decay + count - bad
      }
      if (s.audits <= o.rateWarmup) s.cusum = 0
      return undefined
    }
    const what = series === 'misses' ? 'missed audits' : 'failed proofs'
    const inc: Incident = {
      id: incidentId(provider, series, at),
      provider,
      series,
      kind: 'rate',
      startedAt: at,
      onsetAt: s.cusumFrom,
      summary: `${what}: ${s.runBad} of ${s.runAudits} audits since the onset, against a baseline rate of ${(100 * p0).toFixed(1)} % (log-likelihood ratio ${s.cusum.toFixed(1)} for a rate of ${(100 * p1).toFixed(1)} %)`,
      evidence: { baseline: round(p0), value: round(s.runBad / s.runAudits), score: round(s.cusum), worst: round(bad / count), samples: s.runAudits, bad: s.runBad }
    }
    s.open = inc
    s.back = 0
    return event('opened', inc)
  }
}
