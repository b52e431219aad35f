/**
 * Provider behaviours of the simulation, with every parameter fixed here and
 * written into docs/simulation.md. These were set from the description of
 * each behaviour before any result was looked at, and are not tuned to them.
 *
 * Time is in days; one audit of each deal per day (a 24 h proving period,
 * SPEC §4), k = 16 challenges per audit.
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
}

/** The providers of one seeded world: the same under every strategy. */
export function makeProviders (seed: number, count: number, days: number, capacity: number, mix?: Partial<Record<BehaviourName, number>>): Provider[] {
  const rng = new Rng(seed * 7919 + 1)
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
    return { index, id: `p${String(index).padStart(3, '0')}`, behaviour, pricePerGiBDay: BigInt(20 + rng.int(41)), capacity, startDay, down }
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
  if (p.behaviour === 'degrading' && day >= p.startDay) return Math.min(0.3, BASE_MISS + 0.001 * (day - p.startDay))
  return BASE_MISS
}

/** Daily hazard that a held piece gets corrupted, and the fraction it loses. */
export function corruption (seed: number, p: Provider, piece: number, day: number): number | undefined {
  let hazard = 0
  let lo = 0
  let hi = 0
  if (p.behaviour === 'degrading' && day >= p.startDay) { hazard = Math.min(0.02, 0.0002 * (day - p.startDay)); lo = 0.01; hi = 0.2 }
  if (p.behaviour === 'dropping') { hazard = 0.003; lo = 0.005; hi = 0.05 }
  if (hazard === 0 || hashUnit(seed, 1, p.index, piece, day) >= hazard) return undefined
  return lo + (hi - lo) * hashUnit(seed, 2, p.index, piece, day)
}

export function latencyMs (seed: number, p: Provider, piece: number, day: number): number {
  const base = 100 + 200 * hashUnit(seed, 3, p.index, piece, day)
  return p.behaviour === 'degrading' && day >= p.startDay ? base + 5 * (day - p.startDay) : base
}

export type Outcome = 'pass' | 'fail' | 'miss'

/** One audit of a replica: misses when unreachable, fails with probability 1 − (1 − f)^k when a fraction f is lost. */
export function audit (seed: number, p: Provider, piece: number, day: number, lostFraction: number): Outcome {
  if (!isReachable(p, day)) return 'miss'
  if (hashUnit(seed, 4, p.index, piece, day) < missProbability(p, day)) return 'miss'
  if (lostFraction > 0 && hashUnit(seed, 5, p.index, piece, day) < 1 - Math.pow(1 - lostFraction, CHALLENGES)) return 'fail'
  return 'pass'
}
