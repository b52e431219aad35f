/**
 * Provider behaviours of the simulation, with every parameter fixed here and
 * written into docs/simulation.md. These were set from the description of
 * each behaviour before any result was looked at, and are not tuned to them.
 *
 * Time is in days; one audit of each deal per day (a 24 h proving period,
 * docs/protocol.md "Proofs"), k = 16 challenges per audit.
 */
import { hashUnit, Rng } from './random.js'

export type BehaviourName = 'honest' | 'flaky' | 'degrading' | 'sudden-death' | 'dropping'

export interface BehaviourSpec {
  name: BehaviourName
  /** share of the providers */
  share: number
  description: string
}

export const BEHAVIOURS: readonly BehaviourSpec[] = [
  { name: 'honest', share: 0.4, description: 'keeps every piece; misses 0.2 % of audits at random (network blips); latency 100–300 ms' },
  { name: 'flaky', share: 0.2, description: 'keeps every piece; each day it is up, an outage starts with probability 0.04 and lasts 1–4 days (uniform), during which every audit is missed; otherwise as honest' },
  { name: 'degrading', share: 0.15, description: 'honest until a start day drawn uniformly in [0, 200); then each held piece is corrupted with a daily hazard of 0.0002 × days since the start (capped at 0.02), losing a fraction f ~ U[0.01, 0.2] of its leaves, and misses rise from 0.2 % by 0.1 % per day (capped at 30 %); latency grows by 5 ms per day' },
  { name: 'sudden-death', share: 0.1, description: 'honest until a death day drawn uniformly in [30, 365); then every piece is gone and every audit is missed' },
  { name: 'dropping', share: 0.15, description: 'answers on time, but silently drops data: each held piece is corrupted with a daily hazard of 0.003, losing a fraction f ~ U[0.005, 0.05] of its leaves (detected by an audit with probability 1 − (1 − f)^16, 8 % to 56 %)' }
]

export const CHALLENGES = 16
const BASE_MISS = 0.002

/**
 * World A is the one described above, on which everything was developed.
 * World B keeps the same behaviours and shares but draws their parameters
 * from other distributions — other onsets, other hazards — to test the fault
 * predictor, fitted on world A, on a world it was not fitted on. Fixed before
 * any run of it (docs/simulation.md, "Fault predictor"):
 *   - honest: base miss rate per provider log-uniform in [0.001, 0.004]
 *     (A: 0.002 for all);
 *   - flaky: outage start probability per provider U[0.01, 0.08] (A: 0.04),
 *     outage length geometric with mean 2.5 days (A: uniform 1–4 days);
 *   - degrading: onset day exponential with mean 120 days (A: uniform in
 *     [0, 200)); then a constant corruption hazard per provider,
 *     log-uniform in [0.002, 0.02] per piece per day (A: rising by 0.0002
 *     per day up to 0.02); misses rising by U[0.0005, 0.002] per day
 *     (A: 0.001), latency by U[2, 10] ms per day (A: 5);
 *   - sudden death: death day Weibull with shape 2 and scale 250 days
 *     (A: uniform in [30, 365)), which may fall after the year;
 *   - dropping: hazard per provider log-uniform in [0.001, 0.01] (A: 0.003).
 */
export type World = 'A' | 'B'

/** The parameters of one provider's behaviour, drawn per world. */
export interface BehaviourParams {
  baseMiss: number
  /** degrading: miss rate and latency rise per day after onset */
  missSlope: number
  latencySlope: number
  /** corruption hazard per piece per day: min(cap, constant + slope × days since onset) */
  hazardConstant: number
  hazardSlope: number
  hazardCap: number
}

/** World A's parameters of a behaviour, the same for every provider. */
function worldA (behaviour: BehaviourName): BehaviourParams {
  const params = { baseMiss: BASE_MISS, missSlope: 0.001, latencySlope: 5, hazardConstant: 0, hazardSlope: 0, hazardCap: 0 }
  if (behaviour === 'degrading') return { ...params, hazardSlope: 0.0002, hazardCap: 0.02 }
  if (behaviour === 'dropping') return { ...params, hazardConstant: 0.003, hazardCap: 1 }
  return params
}

export interface Provider {
  index: number
  id: string
  behaviour: BehaviourName
  pricePerGiBDay: bigint
  /** capacity in pieces */
  capacity: number
  /** degrading: first bad day; sudden-death: death day */
  startDay: number
  /** flaky: outage per day */
  down: boolean[]
  params: BehaviourParams
}

function logUniform (rng: Rng, lo: number, hi: number): number {
  return Math.exp(rng.between(Math.log(lo), Math.log(hi)))
}

/** World B's draws for one provider, from a stream of their own so world A's draws are unchanged. */
function drawWorldB (rng: Rng, behaviour: BehaviourName, days: number): { startDay: number, down: boolean[], params: BehaviourParams } {
  const params: BehaviourParams = { ...worldA(behaviour), baseMiss: logUniform(rng, 0.001, 0.004) }
  const down = new Array<boolean>(days).fill(false)
  let startDay = Infinity
  if (behaviour === 'flaky') {
    const start = rng.between(0.01, 0.08)
    for (let d = 0; d < days;) {
      if (rng.next() < start) {
        do down[d++] = true
        while (d < days && rng.next() >= 0.4)
      } else d++
    }
  } else if (behaviour === 'degrading') {
    startDay = Math.floor(-120 * Math.log(1 - rng.next()))
    params.hazardConstant = logUniform(rng, 0.002, 0.02)
    params.hazardSlope = 0
    params.hazardCap = 1
    params.missSlope = rng.between(0.0005, 0.002)
    params.latencySlope = rng.between(2, 10)
  } else if (behaviour === 'sudden-death') {
    startDay = Math.floor(250 * Math.sqrt(-Math.log(1 - rng.next())))
  } else if (behaviour === 'dropping') {
    params.hazardConstant = logUniform(rng, 0.001, 0.01)
    params.hazardCap = 1
  }
  return { startDay, down, params }
}

/** The providers of one seeded world: the same under every strategy. */
export function makeProviders (seed: number, count: number, days: number, capacity: number, mix?: Partial<Record<BehaviourName, number>>, world: World = 'A'): Provider[] {
  const rng = new Rng(seed * 7919 + 1)
  const rngB = new Rng(seed * 7919 + 2)
  const kinds: BehaviourName[] = []
  for (const b of BEHAVIOURS) for (let i = 0; i < Math.round((mix === undefined ? b.share : mix[b.name] ?? 0) * count); i++) kinds.push(b.name)
  while (kinds.length < count) kinds.push('honest')
  kinds.length = count
  // shuffle so behaviour is not tied to index
  for (let i = kinds.length - 1; i > 0; i--) { const j = rng.int(i + 1); [kinds[i], kinds[j]] = [kinds[j], kinds[i]] }
  return kinds.map((behaviour, index) => {
    const down = new Array<boolean>(days).fill(false)
    let startDay = Infinity
    if (behaviour === 'flaky') {
      for (let d = 0; d < days;) {
        if (rng.next() < 0.04) {
          const length = 1 + rng.int(4)
          for (let k = 0; k < length && d < days; k++) down[d++] = true
        } else d++
      }
    } else if (behaviour === 'degrading') startDay = Math.floor(rng.between(0, 200))
    else if (behaviour === 'sudden-death') startDay = Math.floor(rng.between(30, 365))
    const p: Provider = { index, id: `p${String(index).padStart(3, '0')}`, behaviour, pricePerGiBDay: BigInt(20 + rng.int(41)), capacity, startDay, down, params: worldA(behaviour) }
    if (world === 'B') Object.assign(p, drawWorldB(rngB, behaviour, days))
    return p
  })
}

export function isDead (p: Provider, day: number): boolean {
  return p.behaviour === 'sudden-death' && day >= p.startDay
}

/** Whether the provider answers at all today (dead or in an outage: no). */
export function isReachable (p: Provider, day: number): boolean {
  return !isDead(p, day) && !p.down[day]
}

export function missProbability (p: Provider, day: number): number {
  if (p.behaviour === 'degrading' && day >= p.startDay) return Math.min(0.3, p.params.baseMiss + p.params.missSlope * (day - p.startDay))
  return p.params.baseMiss
}

/** Daily hazard that a held piece gets corrupted, and the fraction it loses. */
export function corruption (seed: number, p: Provider, piece: number, day: number): number | undefined {
  let hazard = 0
  let lo = 0
  let hi = 0
  const w = p.params
  if (p.behaviour === 'degrading' && day >= p.startDay) { hazard = Math.min(w.hazardCap, w.hazardConstant + w.hazardSlope * (day - p.startDay)); lo = 0.01; hi = 0.2 }
  if (p.behaviour === 'dropping') { hazard = Math.min(w.hazardCap, w.hazardConstant); lo = 0.005; hi = 0.05 }
  if (hazard === 0 || hashUnit(seed, 1, p.index, piece, day) >= hazard) return undefined
  return lo + (hi - lo) * hashUnit(seed, 2, p.index, piece, day)
}

export function latencyMs (seed: number, p: Provider, piece: number, day: number): number {
  const base = 100 + 200 * hashUnit(seed, 3, p.index, piece, day)
  return p.behaviour === 'degrading' && day >= p.startDay ? base + p.params.latencySlope * (day - p.startDay) : base
}

export type Outcome = 'pass' | 'fail' | 'miss'

/** One audit of a replica: misses when unreachable, fails with probability 1 − (1 − f)^k when a fraction f is lost. */
export function audit (seed: number, p: Provider, piece: number, day: number, lostFraction: number): Outcome {
  if (!isReachable(p, day)) return 'miss'
  if (hashUnit(seed, 4, p.index, piece, day) < missProbability(p, day)) return 'miss'
  if (lostFraction > 0 && hashUnit(seed, 5, p.index, piece, day) < 1 - Math.pow(1 - lostFraction, CHALLENGES)) return 'fail'
  return 'pass'
}
