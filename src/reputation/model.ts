/**
 * The reputation model (README "Reputation, placement and repair"): per provider, Beta-Bernoulli counters with
 * forgetting, after Storj's audit reputation (α ← λα + w·pass,
 * β ← λβ + w·fail, λ ≈ 0.98), kept separately for proof integrity (pass vs
 * fail), availability (answered vs missed or unknown) and overall outcome
 * (pass vs any fault), plus an EWMA of latency and the signals the fault
 * predictor reads (last pass, last fault, latency means).
 *
 * Pure functions over a sequence of events, so a score can be recomputed from
 * the ledger by anyone and audited (src/reputation/ledger.ts reads them).
 *
 * Forgetting is applied per unit of time rather than per event: a client with
 * many deals at one provider audits it many times per period, and per-event
 * forgetting would then forget within hours. With one audit per period the
 * two are the same.
 *
 * The score is the 5th percentile of Beta(prior + evidence), so a provider
 * with few audits ranks below one with a long clean record (FilOzone dealbot
 * practice). The prediction of the next audit is the fault predictor's
 * (src/reputation/predictor.ts), which reads these counters, the miss run and
 * the latency trend kept here.
 */
import { betaQuantile } from './beta.js'
import { predictAudit } from './predictor.js'
import type { Evidence, ModelParams, Reputation, ReputationEvent, ReputationSummary, WeightedMean } from './interface.js'

export const DEFAULT_PARAMS: Readonly<ModelParams> = Object.freeze({
  lambda: 0.98,
  weight: 1,
  periodMs: 86_400_000,
  fastLambda: 0.5,
  prior: Object.freeze({ alpha: 1, beta: 1 }),
  quantile: 0.05,
  latencyAlpha: 0.2,
  trendShrink: 2
})

export function params (overrides: Partial<ModelParams> = {}): ModelParams {
  const p = { ...DEFAULT_PARAMS, ...overrides }
  if (!(p.lambda > 0 && p.lambda <= 1)) throw new RangeError(`lambda must be in (0, 1], got ${p.lambda}`)
  if (!(p.fastLambda > 0 && p.fastLambda <= 1)) throw new RangeError(`fastLambda must be in (0, 1], got ${p.fastLambda}`)
  if (!(p.weight > 0)) throw new RangeError(`weight must be positive, got ${p.weight}`)
  if (!(p.periodMs >= 0)) throw new RangeError(`periodMs must be ≥ 0, got ${p.periodMs}`)
  if (!(p.quantile > 0 && p.quantile < 1)) throw new RangeError(`quantile must be in (0, 1), got ${p.quantile}`)
  if (!(p.prior.alpha > 0 && p.prior.beta > 0)) throw new RangeError('the prior must have positive alpha and beta')
  return p
}

const ZERO: Evidence = Object.freeze({ alpha: 0, beta: 0 })

/**
 * Forgetting of the latency means, per period: the short one follows the
 * last few periods, the long one about the last month; their ratio is the
 * latency trend the predictor reads (src/reputation/predictor.ts).
 */
export const LATENCY_FAST_LAMBDA = 0.7
export const LATENCY_SLOW_LAMBDA = 0.97

function addMean (m: WeightedMean | undefined, decay: number, count: number, total: number): WeightedMean {
  if (m === undefined) return { sum: total, weight: count }
  return { sum: m.sum * decay + total, weight: m.weight * decay + count }
}

export function emptyReputation (provider: string): Reputation {
  return { provider, proofs: ZERO, integrity: ZERO, availability: ZERO, recent: ZERO, passes: 0, failures: 0, misses: 0, unknowns: 0, consecutiveFaults: 0 }
}

function decayOf (lambda: number, p: ModelParams, from: number | undefined, to: number): number {
  if (from === undefined) return 1
  if (p.periodMs === 0) return lambda
  const dt = Math.max(0, to - from)
  return dt === 0 ? 1 : Math.pow(lambda, dt / p.periodMs)
}

function observe (e: Evidence, decay: number, w: number, good: boolean | undefined): Evidence {
  if (good === undefined) return decay === 1 ? e : { alpha: e.alpha * decay, beta: e.beta * decay }
  return { alpha: e.alpha * decay + (good ? w : 0), beta: e.beta * decay + (good ? 0 : w) }
}

/** The reputation after one more event (events of a provider must come in time order). */
export function update (rep: Reputation, event: ReputationEvent, p: ModelParams = DEFAULT_PARAMS): Reputation {
  if (event.provider !== rep.provider) throw new TypeError(`an event of ${event.provider} applied to the reputation of ${rep.provider}`)
  const slow = decayOf(p.lambda, p, rep.lastAt, event.at)
  const fast = decayOf(p.fastLambda, p, rep.lastAt, event.at)
  const w = p.weight
  const o = event.outcome
  const answered = o === 'pass' || o === 'fail'
  // an unknown is not yet a result: the audit retries and records a pass or a miss (docs/protocol.md "Proofs")
  const result = o === 'unknown' ? undefined : o === 'pass'
  let latencyMs = rep.latencyMs
  if (answered && event.latencyMs !== undefined && Number.isFinite(event.latencyMs) && event.latencyMs >= 0) {
    latencyMs = latencyMs === undefined ? event.latencyMs : latencyMs + p.latencyAlpha * (event.latencyMs - latencyMs)
  }
  // built field by field (not spread): the simulator applies millions of these
  const next: Reputation = {
    provider: rep.provider,
    proofs: observe(rep.proofs, slow, w, result),
    integrity: observe(rep.integrity, slow, w, answered ? o === 'pass' : undefined),
    availability: observe(rep.availability, slow, w, answered),
    recent: observe(rep.recent, fast, w, result),
    passes: rep.passes + (o === 'pass' ? 1 : 0),
    failures: rep.failures + (o === 'fail' ? 1 : 0),
    misses: rep.misses + (o === 'miss' ? 1 : 0),
    unknowns: rep.unknowns + (o === 'unknown' ? 1 : 0),
    consecutiveFaults: o === 'pass' ? 0 : o === 'unknown' ? rep.consecutiveFaults : rep.consecutiveFaults + 1,
    firstAt: rep.firstAt ?? event.at,
    lastAt: rep.lastAt === undefined || event.at > rep.lastAt ? event.at : rep.lastAt
  }
  if (latencyMs !== undefined) next.latencyMs = latencyMs
  const lastSeen = answered ? event.at : rep.lastSeen
  if (lastSeen !== undefined) next.lastSeen = lastSeen
  const sample = answered && event.latencyMs !== undefined && Number.isFinite(event.latencyMs) && event.latencyMs >= 0
  signals(next, rep, p, event.at, o === 'pass' ? 1 : 0, o === 'fail' || o === 'miss' ? 1 : 0, sample ? 1 : 0, sample ? event.latencyMs as number : 0)
  return next
}

/** The predictor's signals (last pass, last fault, latency means) carried from `rep` to `next`. */
function signals (next: Reputation, rep: Reputation, p: ModelParams, at: number, passes: number, faults: number, samples: number, latencyTotal: number): void {
  const lastPassAt = passes > 0 ? Math.max(at, rep.lastPassAt ?? at) : rep.lastPassAt
  if (lastPassAt !== undefined) next.lastPassAt = lastPassAt
  const lastFaultAt = faults > 0 ? Math.max(at, rep.lastFaultAt ?? at) : rep.lastFaultAt
  if (lastFaultAt !== undefined) next.lastFaultAt = lastFaultAt
  if (samples > 0) {
    next.latencyFast = addMean(rep.latencyFast, decayOf(LATENCY_FAST_LAMBDA, p, rep.lastAt, at), samples, latencyTotal)
    next.latencySlow = addMean(rep.latencySlow, decayOf(LATENCY_SLOW_LAMBDA, p, rep.lastAt, at), samples, latencyTotal)
  } else {
    if (rep.latencyFast !== undefined) next.latencyFast = addMean(rep.latencyFast, decayOf(LATENCY_FAST_LAMBDA, p, rep.lastAt, at), 0, 0)
    if (rep.latencySlow !== undefined) next.latencySlow = addMean(rep.latencySlow, decayOf(LATENCY_SLOW_LAMBDA, p, rep.lastAt, at), 0, 0)
  }
}

/** Audit results of one provider at one instant, counted: a proving period's audits of all its deals. */
export interface Tally {
  at: number
  pass: number
  fail: number
  miss: number
  unknown?: number
  /** mean latency of the answered audits, ms */
  latencyMs?: number
}

/**
 * The same counters as applying the tally's events one by one at `at` (no
 * forgetting between events of one instant), in one step. Two things depend on
 * order and are defined here: latency enters the EWMA once, as the tally's
 * mean, and consecutive faults count as if the passes came last.
 */
export function updateTally (rep: Reputation, t: Tally, p: ModelParams = DEFAULT_PARAMS): Reputation {
  const slow = decayOf(p.lambda, p, rep.lastAt, t.at)
  const fast = decayOf(p.fastLambda, p, rep.lastAt, t.at)
  const w = p.weight
  const faults = t.fail + t.miss
  const answered = t.pass + t.fail
  const add = (e: Evidence, decay: number, good: number, bad: number): Evidence => ({ alpha: e.alpha * decay + w * good, beta: e.beta * decay + w * bad })
  let latencyMs = rep.latencyMs
  if (answered > 0 && t.latencyMs !== undefined && Number.isFinite(t.latencyMs) && t.latencyMs >= 0) {
    latencyMs = latencyMs === undefined ? t.latencyMs : latencyMs + p.latencyAlpha * (t.latencyMs - latencyMs)
  }
  const next: Reputation = {
    provider: rep.provider,
    proofs: add(rep.proofs, slow, t.pass, faults),
    integrity: add(rep.integrity, slow, t.pass, t.fail),
    availability: add(rep.availability, slow, answered, t.miss + (t.unknown ?? 0)),
    recent: add(rep.recent, fast, t.pass, faults),
    passes: rep.passes + t.pass,
    failures: rep.failures + t.fail,
    misses: rep.misses + t.miss,
    unknowns: rep.unknowns + (t.unknown ?? 0),
    consecutiveFaults: t.pass > 0 ? 0 : rep.consecutiveFaults + faults,
    firstAt: rep.firstAt ?? t.at,
    lastAt: rep.lastAt === undefined || t.at > rep.lastAt ? t.at : rep.lastAt
  }
  if (latencyMs !== undefined) next.latencyMs = latencyMs
  const lastSeen = answered > 0 ? t.at : rep.lastSeen
  if (lastSeen !== undefined) next.lastSeen = lastSeen
  const sample = answered > 0 && t.latencyMs !== undefined && Number.isFinite(t.latencyMs) && t.latencyMs >= 0
  signals(next, rep, p, t.at, t.pass, faults, sample ? answered : 0, sample ? answered * (t.latencyMs as number) : 0)
  return next
}

/** Reputations of every provider in `events`, which must be in time order. */
export function reputations (events: Iterable<ReputationEvent>, p: ModelParams = DEFAULT_PARAMS, start: Map<string, Reputation> = new Map()): Map<string, Reputation> {
  const out = new Map(start)
  for (const e of events) out.set(e.provider, update(out.get(e.provider) ?? emptyReputation(e.provider), e, p))
  return out
}

/** Evidence as it stands at time `at` (forgetting applied up to then). */
function decayedTo (e: Evidence, lambda: number, p: ModelParams, lastAt: number | undefined, at: number | undefined): Evidence {
  if (at === undefined) return e
  return observe(e, decayOf(lambda, p, lastAt, at), 0, undefined)
}

function mean (e: Evidence, prior: Evidence): number {
  return (prior.alpha + e.alpha) / (prior.alpha + prior.beta + e.alpha + e.beta)
}

/** The ranking score: the lower `quantile` of the pass rate's posterior. */
export function score (rep: Reputation, p: ModelParams = DEFAULT_PARAMS, at?: number): number {
  const e = decayedTo(rep.proofs, p.lambda, p, rep.lastAt, at)
  return betaQuantile(p.quantile, p.prior.alpha + e.alpha, p.prior.beta + e.beta)
}

/**
 * Predicted probability that the provider's next audit passes: the fault
 * predictor of src/reputation/predictor.ts, for a deal with no failed proof.
 */
export function predictPass (rep: Reputation, p: ModelParams = DEFAULT_PARAMS, at?: number): number {
  return predictAudit(rep, p, at).pass
}

export function summarize (rep: Reputation, p: ModelParams = DEFAULT_PARAMS, at?: number): ReputationSummary {
  const audits = rep.passes + rep.failures + rep.misses
  const s: ReputationSummary = {
    provider: rep.provider,
    score: score(rep, p, at),
    predicted: predictPass(rep, p, at),
    mean: mean(decayedTo(rep.proofs, p.lambda, p, rep.lastAt, at), p.prior),
    passes: rep.passes,
    failures: rep.failures,
    misses: rep.misses,
    unknowns: rep.unknowns,
    consecutiveFaults: rep.consecutiveFaults
  }
  if (audits > 0) s.passRate = rep.passes / audits
  if (rep.latencyMs !== undefined) s.latencyMs = rep.latencyMs
  if (rep.lastSeen !== undefined) s.lastSeen = rep.lastSeen
  return s
}

/** The raw pass-rate baseline the predictor is compared with: passes / audits, ½ before any. */
export function rawPassRate (rep: Reputation): number {
  const audits = rep.passes + rep.failures + rep.misses
  return audits === 0 ? 0.5 : rep.passes / audits
}
