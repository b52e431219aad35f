/**
 * The anomaly detector (src/reputation/anomaly.ts) on a seeded year of
 * providers whose anomalies are injected, so the truth is known: slowdowns,
 * intermittent outages and gradual corruption, over stationary noise with
 * heavy tails. Each provider is audited `auditsPerDay` times a day and
 * retrieved from once a day; the detector sees every audit result (outcome
 * and latency) and every retrieval's throughput, as `cairn watch` would.
 *
 * Parameters (fixed here, written into docs/simulation.md):
 *   - per provider: typical latency U[80, 400] ms, throughput U[20, 200] MB/s;
 *   - noise on every latency and throughput sample: log-normal, σ = 0.25 with
 *     probability 0.97 and σ = 0.8 with probability 0.03 (blips that are not
 *     anomalies); misses at 0.2 % per audit;
 *   - episodes: a first one after an exponential wait of mean
 *     365 / `episodesPerYear` days from day 14, then the same after each
 *     ends plus a 14-day gap; kind uniform among
 *       slowdown: 1–10 days, latency × f and throughput ÷ f, f log-uniform
 *         in [1.2, 5];
 *       outage: 2–10 days, each audit and retrieval missed with
 *         probability q ~ U[0.05, 0.6];
 *       corruption: 14–60 days, each answered audit fails with a
 *         probability rising linearly from 0 to r ~ U[0.01, 0.3], then
 *         repaired (back to 0).
 *   Each range's lower half holds the mild cases a detector may miss;
 *   recall is reported for both halves.
 *
 * Matching, incident by incident: an incident matches an episode of the same
 * provider when it opens on a day from the episode's first day to `window`
 * days after its last. Precision = incidents matching an episode / incidents;
 * recall = episodes matched by at least one incident / episodes.
 */
import { AnomalyDetector, type DetectorOptions, type Incident, type Series } from '../src/reputation/anomaly.js'
import { hashUnit } from './random.js'

const DAY_MS = 86_400_000

export type AnomalyKind = 'slowdown' | 'outage' | 'corruption'
export const ANOMALY_KINDS: readonly AnomalyKind[] = ['slowdown', 'outage', 'corruption']

/** The severity ranges; the midpoint (geometric for slowdowns) splits mild from strong. */
export const SEVERITY: Record<AnomalyKind, { lo: number, hi: number, mid: number }> = {
  slowdown: { lo: 1.2, hi: 5, mid: Math.sqrt(1.2 * 5) },
  outage: { lo: 0.05, hi: 0.6, mid: 0.325 },
  corruption: { lo: 0.01, hi: 0.3, mid: 0.155 }
}

export interface Episode {
  provider: number
  kind: AnomalyKind
  /** first day */
  start: number
  /** the day after the last */
  end: number
  /** slowdown: factor f; outage: miss probability q; corruption: final fail probability r */
  severity: number
}

export interface AnomalyConfig {
  seed: number
  providers: number
  days: number
  auditsPerDay: number
  episodesPerYear: number
  /** days after an episode's last day in which an incident still matches it */
  window: number
}

export const DEFAULT_ANOMALY_CONFIG: Omit<AnomalyConfig, 'seed'> = {
  providers: 60,
  days: 365,
  auditsPerDay: 20,
  episodesPerYear: 2,
  window: 3
}

export interface AnomalyResult {
  seed: number
  episodes: Episode[]
  incidents: Array<Incident & { day: number, endDay?: number, providerIndex: number }>
  /** per incident: the index of the episode it matches, or -1 */
  matchOf: number[]
  /** per episode: days from its start to the first matching incident, or -1 */
  delay: number[]
  /** per episode: the last day a matching incident was open minus the episode's last day (−1 if none resolved) */
  overrun: number[]
}

/** Standard normal from two uniforms (Box–Muller). */
function normal (u1: number, u2: number): number {
  return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2)
}

/** Multiplicative noise with heavy tails: log-normal σ 0.25, or σ 0.8 for 3 % of samples. */
function noise (seed: number, ...keys: number[]): number {
  const sigma = hashUnit(seed, 40, ...keys) < 0.03 ? 0.8 : 0.25
  return Math.exp(sigma * normal(hashUnit(seed, 41, ...keys), hashUnit(seed, 42, ...keys)))
}

export function makeEpisodes (config: AnomalyConfig): Episode[] {
  const { seed, days } = config
  const out: Episode[] = []
  const meanGap = 365 / config.episodesPerYear
  for (let p = 0; p < config.providers; p++) {
    let k = 0
    let day = 14 + Math.floor(-meanGap * Math.log(1 - hashUnit(seed, 20, p, k)))
    while (day < days - 7) {
      const kind = ANOMALY_KINDS[Math.floor(3 * hashUnit(seed, 21, p, k))]
      const u = hashUnit(seed, 22, p, k)
      const length = kind === 'slowdown' ? 1 + Math.floor(10 * u) : kind === 'outage' ? 2 + Math.floor(9 * u) : 14 + Math.floor(47 * u)
      const v = hashUnit(seed, 23, p, k)
      const { lo, hi } = SEVERITY[kind]
      const severity = kind === 'slowdown' ? lo * Math.pow(hi / lo, v) : lo + (hi - lo) * v
      const end = Math.min(days, day + length)
      out.push({ provider: p, kind, start: day, end, severity })
      k++
      day = end + 14 + Math.floor(-meanGap * Math.log(1 - hashUnit(seed, 20, p, k)))
    }
  }
  return out
}

export function runAnomalies (config: AnomalyConfig, options: Partial<DetectorOptions> = {}): AnomalyResult {
  const { seed, days, auditsPerDay } = config
  const episodes = makeEpisodes(config)
  const byProvider = Array.from({ length: config.providers }, (_, p) => episodes.filter(e => e.provider === p))
  const detector = new AnomalyDetector(options)
  const incidents: AnomalyResult['incidents'] = []
  const opened = new Map<string, number>()
  const id = (p: number): string => `p${String(p).padStart(3, '0')}`
  const record = (p: number, day: number, e: ReturnType<AnomalyDetector['observe']>): void => {
    if (e === undefined) return
    if (e.type === 'opened') {
      opened.set(e.incident.id, incidents.length)
      incidents.push({ ...e.incident, day, providerIndex: p })
    } else {
      const i = opened.get(e.incident.id) as number
      incidents[i] = { ...incidents[i], ...e.incident, day: incidents[i].day, endDay: day, providerIndex: p }
    }
  }
  const latencyBase = Array.from({ length: config.providers }, (_, p) => 80 + 320 * hashUnit(seed, 24, p))
  const throughputBase = Array.from({ length: config.providers }, (_, p) => 20e6 + 180e6 * hashUnit(seed, 25, p))
  for (let day = 0; day < days; day++) {
    const at = day * DAY_MS
    for (let p = 0; p < config.providers; p++) {
      const ep = byProvider[p].find(e => e.start <= day && day < e.end)
      const slow = ep?.kind === 'slowdown' ? ep.severity : 1
      const missP = ep?.kind === 'outage' ? ep.severity : 0.002
      const failP = ep?.kind === 'corruption' ? ep.severity * (day - ep.start + 1) / (ep.end - ep.start) : 0
      // audits spread over the day, each fed as `cairn watch` would feed its result
      for (let i = 0; i < auditsPerDay; i++) {
        const when = at + Math.floor(i * DAY_MS / auditsPerDay)
        const outcome = hashUnit(seed, 30, p, day, i) < missP ? 'miss' : hashUnit(seed, 31, p, day, i) < failP ? 'fail' : 'pass'
        for (const e of detector.observeAudit(id(p), when, outcome, latencyBase[p] * slow * noise(seed, 1, p, day, i))) record(p, day, e)
      }
      if (hashUnit(seed, 32, p, day) >= missP) record(p, day, detector.observe(id(p), 'throughput', at + DAY_MS / 2, throughputBase[p] / slow * noise(seed, 2, p, day)))
    }
  }
  const matchOf = incidents.map(inc => episodes.findIndex(e => e.provider === inc.providerIndex && inc.day >= e.start && inc.day <= e.end - 1 + config.window))
  const delay = episodes.map((e, j) => {
    const days = incidents.filter((_, i) => matchOf[i] === j).map(inc => inc.day - e.start)
    return days.length === 0 ? -1 : Math.min(...days)
  })
  const overrun = episodes.map((e, j) => {
    const ends = incidents.filter((_, i) => matchOf[i] === j).map(inc => inc.endDay ?? days)
    return ends.length === 0 ? -1 : Math.max(...ends) - (e.end - 1)
  })
  return { seed, episodes, incidents, matchOf, delay, overrun }
}

export interface AnomalySummary {
  seeds: number
  episodes: number
  incidents: number
  precision: number
  recall: number
  /** per kind and severity half: episodes, detected, median days to detection */
  recallByKind: Record<AnomalyKind, Record<'mild' | 'strong', { episodes: number, detected: number, medianDelayDays: number }>>
  incidentsBySeries: Record<Series, { incidents: number, matched: number }>
  falseAlarmsPerProviderYear: number
  medianDelayDays: number
  p90DelayDays: number
  /** median days an incident stayed open past its episode's last day */
  medianOverrunDays: number
  /** matching incidents per detected episode (several series, or an incident resolved and opened again) */
  incidentsPerDetected: number
}

/** The q-quantile by the nearest-rank method. */
function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export function summarizeAnomalies (results: AnomalyResult[], config: Omit<AnomalyConfig, 'seed'>): AnomalySummary {
  const recallByKind = Object.fromEntries(ANOMALY_KINDS.map(k => [k, { mild: { episodes: 0, detected: 0, medianDelayDays: NaN }, strong: { episodes: 0, detected: 0, medianDelayDays: NaN } }])) as AnomalySummary['recallByKind']
  const kindDelays = new Map<string, number[]>()
  const incidentsBySeries = Object.fromEntries((['latency', 'throughput', 'misses', 'failures'] as const).map(s => [s, { incidents: 0, matched: 0 }])) as AnomalySummary['incidentsBySeries']
  let episodes = 0
  let detected = 0
  let incidents = 0
  let matched = 0
  const delays: number[] = []
  const overruns: number[] = []
  for (const r of results) {
    for (const [j, e] of r.episodes.entries()) {
      episodes++
      const half = e.severity < SEVERITY[e.kind].mid ? 'mild' : 'strong'
      const cell = recallByKind[e.kind][half]
      cell.episodes++
      if (r.delay[j] >= 0) {
        detected++
        cell.detected++
        delays.push(r.delay[j])
        overruns.push(r.overrun[j])
        const key = `${e.kind}/${half}`
        kindDelays.set(key, [...(kindDelays.get(key) ?? []), r.delay[j]])
      }
    }
    for (const [i, inc] of r.incidents.entries()) {
      incidents++
      incidentsBySeries[inc.series].incidents++
      if (r.matchOf[i] >= 0) { matched++; incidentsBySeries[inc.series].matched++ }
    }
  }
  for (const k of ANOMALY_KINDS) for (const half of ['mild', 'strong'] as const) recallByKind[k][half].medianDelayDays = quantile(kindDelays.get(`${k}/${half}`) ?? [], 0.5)
  return {
    seeds: results.length,
    episodes,
    incidents,
    precision: incidents === 0 ? 1 : matched / incidents,
    recall: episodes === 0 ? 1 : detected / episodes,
    recallByKind,
    incidentsBySeries,
    falseAlarmsPerProviderYear: (incidents - matched) / (results.length * config.providers * config.days / 365),
    medianDelayDays: quantile(delays, 0.5),
    p90DelayDays: quantile(delays, 0.9),
    medianOverrunDays: quantile(overruns, 0.5),
    incidentsPerDetected: detected === 0 ? 0 : matched / detected
  }
}
