/**
 * The fault predictor: the probability that a deal's next audit passes, from
 * what the client's own ledger says about the provider and the deal.
 *
 * Two logistic models, one per way an audit goes wrong, because the two have
 * different causes and different signals:
 *
 *   P(miss)                = σ(wMiss · x)   the provider does not answer
 *   P(fail | answered)     = σ(wFail · x)   it answers with a wrong proof (data lost)
 *   P(pass)                = (1 − P(miss)) · (1 − P(fail | answered))
 *
 * Features (all read from `Reputation`, which the ledger recomputes):
 *   - long-memory availability and integrity, short-memory pass rate: logits
 *     of the counters model.ts keeps (λ = 0.98 and 0.5 per period), read
 *     under FEATURE_PRIOR;
 *   - the miss run: whether the provider has answered nothing for at least
 *     half a period, and for how many periods (log);
 *   - the latency trend: log of the short-memory over the long-memory mean
 *     latency (a disk or link getting slower shows here before proofs fail);
 *   - whether the provider has never been audited;
 *   - for one deal, when known: whether the deal has ever failed a proof and
 *     its own fail rate since the first one. A failed proof means leaves are
 *     gone, and lost data does not come back, so that deal keeps failing at
 *     its own rate whatever the provider's average.
 * Provider age and time since the last fault were tried and left out: they
 * added nothing on the training seeds (docs/simulation.md, "Fault predictor").
 * `predictPass` in model.ts, which placement and repair read, is this
 * predictor for a deal with no failed proof.
 *
 * The weights were fitted by `node dist/sim/main.js --fit` (maximum
 * likelihood, IRLS, sim/fit-predictor.ts) on the simulation's training seeds
 * and then fixed before any measurement on the seeds reported;
 * docs/simulation.md names the commit. They are constants, so a prediction
 * is a pure function of the ledger.
 */
import type { Evidence, ModelParams, Reputation, WeightedMean } from './interface.js'

/** What the predictor knows about one deal (from its own proof records). */
export interface DealHistory {
  /** failed proofs of this deal */
  fails: number
  /** unix ms of its first failed proof */
  firstFailAt?: number
}

export interface Prediction {
  pass: number
  /** probability that the provider does not answer */
  miss: number
  /** probability of a wrong proof, given an answer */
  fail: number
}

export const FEATURES = ['bias', 'availability', 'recent', 'integrity', 'down', 'downPeriods', 'latencyTrend', 'unaudited', 'dealFailed', 'dealFailRate'] as const
export type FeatureName = typeof FEATURES[number]
export type Features = Record<FeatureName, number>

/** Which features each model reads (the others weigh 0). */
export const MISS_FEATURES: readonly FeatureName[] = ['bias', 'availability', 'recent', 'down', 'downPeriods', 'latencyTrend', 'unaudited']
export const FAIL_FEATURES: readonly FeatureName[] = ['bias', 'integrity', 'recent', 'dealFailed', 'dealFailRate', 'latencyTrend', 'unaudited']

export interface PredictorWeights {
  miss: Partial<Record<FeatureName, number>>
  fail: Partial<Record<FeatureName, number>>
}

/** Fitted by `node dist/sim/main.js --fit` (sim/fit-predictor.ts); see the module comment. */
export const WEIGHTS: Readonly<PredictorWeights> = Object.freeze({
  miss: Object.freeze({ bias: -0.7807, availability: -0.7086, recent: -0.1407, down: 6.029, downPeriods: -2.532, latencyTrend: 3.587, unaudited: -1.204 }),
  fail: Object.freeze({ bias: -3.53, integrity: -0.7245, recent: 0.2045, dealFailed: 4.834, dealFailRate: 0.6596, latencyTrend: 4.333, unaudited: -4.026 })
})

const CLAMP = 1e-4

function logit (x: number): number {
  const p = Math.min(1 - CLAMP, Math.max(CLAMP, x))
  return Math.log(p / (1 - p))
}

function sigmoid (z: number): number {
  return 1 / (1 + Math.exp(-Math.max(-30, Math.min(30, z))))
}

/** The mean of a time-weighted mean, undefined before any sample. */
export function meanOf (m: WeightedMean | undefined): number | undefined {
  return m === undefined || !(m.weight > 0) ? undefined : m.sum / m.weight
}

/**
 * The prior under the rates the predictor reads: 95 % passes, worth 10
 * audits. Under the uniform prior of the ranking score a provider with one
 * pass reads 2/3, a rate only bad providers reach among those the weights
 * were fitted on (tens of deals each), so a young provider would look like a
 * bad one; near the typical rate, little evidence reads as "typical".
 */
export const FEATURE_PRIOR: Readonly<Evidence> = Object.freeze({ alpha: 9.5, beta: 0.5 })

function posteriorLogit (e: Evidence, lambda: number, p: ModelParams, lastAt: number | undefined, at: number): number {
  const k = lastAt === undefined || p.periodMs === 0 ? 1 : Math.pow(lambda, Math.max(0, at - lastAt) / p.periodMs)
  return logit((FEATURE_PRIOR.alpha + e.alpha * k) / (FEATURE_PRIOR.alpha + FEATURE_PRIOR.beta + (e.alpha + e.beta) * k))
}

/** The features of a provider (and a deal of it) at time `at` (default: its last event). */
export function features (rep: Reputation, p: ModelParams, at?: number, deal?: DealHistory): Features {
  const now = at ?? rep.lastAt ?? 0
  const period = p.periodMs > 0 ? p.periodMs : 86_400_000
  const audits = rep.passes + rep.failures + rep.misses
  // unanswered since the last answer (or since the first audit, if it never answered)
  let downPeriods = 0
  if (audits > 0 && rep.lastAt !== undefined && (rep.lastSeen === undefined || rep.lastAt > rep.lastSeen)) {
    downPeriods = rep.lastSeen === undefined ? (rep.lastAt - (rep.firstAt ?? rep.lastAt)) / period + 1 : (rep.lastAt - rep.lastSeen) / period
  }
  // half a period: one stray miss among a busy provider's audits is not an outage
  const down = downPeriods >= 0.5
  const fast = meanOf(rep.latencyFast)
  const slow = meanOf(rep.latencySlow)
  return {
    bias: 1,
    availability: posteriorLogit(rep.availability, p.lambda, p, rep.lastAt, now),
    recent: posteriorLogit(rep.recent, p.fastLambda, p, rep.lastAt, now),
    integrity: posteriorLogit(rep.integrity, p.lambda, p, rep.lastAt, now),
    down: down ? 1 : 0,
    downPeriods: down ? Math.log1p(Math.min(30, downPeriods)) : 0,
    latencyTrend: fast !== undefined && slow !== undefined && fast > 0 && slow > 0 ? Math.log(fast / slow) : 0,
    unaudited: audits === 0 ? 1 : 0,
    ...dealFeatures(deal, now, p)
  }
}

/** The deal's part of the features: whether it ever failed a proof, and its fail rate (per period) since. */
export function dealFeatures (deal: DealHistory | undefined, at: number, p: ModelParams): Pick<Features, 'dealFailed' | 'dealFailRate'> {
  if (deal === undefined || deal.fails === 0) return { dealFailed: 0, dealFailRate: 0 }
  const period = p.periodMs > 0 ? p.periodMs : 86_400_000
  const since = deal.firstFailAt === undefined ? 1 : Math.max(1, (at - deal.firstFailAt) / period)
  return { dealFailed: 1, dealFailRate: logit((deal.fails + 0.5) / (since + 1)) }
}

function linear (w: Partial<Record<FeatureName, number>>, x: Features): number {
  let z = 0
  for (const name of FEATURES) z += (w[name] ?? 0) * x[name]
  return z
}

export function predictFrom (x: Features, weights: PredictorWeights = WEIGHTS): Prediction {
  const miss = sigmoid(linear(weights.miss, x))
  const fail = sigmoid(linear(weights.fail, x))
  return { pass: (1 - miss) * (1 - fail), miss, fail }
}

/**
 * The probability that the next audit passes: of any deal of the provider,
 * or of `deal` when its history is given.
 */
export function predictAudit (rep: Reputation, p: ModelParams, at?: number, deal?: DealHistory, weights: PredictorWeights = WEIGHTS): Prediction {
  return predictFrom(features(rep, p, at, deal), weights)
}
