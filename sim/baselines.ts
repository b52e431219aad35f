/**
 * The predictors the fault predictor is compared with, kept here and not in
 * src/: the raw pass rate (src/reputation/model.ts' rawPassRate), the
 * long-memory posterior mean, and the previous product predictor — the
 * posterior mean pulled down by the short-memory estimate (λ = 0.5 per day,
 * shrunk toward it by `trendShrink` pseudo-audits) when that is lower.
 */
import type { Evidence, ModelParams, Reputation } from '../src/reputation/interface.js'

function decayed (e: Evidence, lambda: number, p: ModelParams, lastAt: number | undefined, at: number): Evidence {
  const k = lastAt === undefined || p.periodMs === 0 ? 1 : Math.pow(lambda, Math.max(0, at - lastAt) / p.periodMs)
  return { alpha: e.alpha * k, beta: e.beta * k }
}

function mean (e: Evidence, prior: Evidence): number {
  return (prior.alpha + e.alpha) / (prior.alpha + prior.beta + e.alpha + e.beta)
}

export function posteriorMean (rep: Reputation, p: ModelParams, at: number): number {
  return mean(decayed(rep.proofs, p.lambda, p, rep.lastAt, at), p.prior)
}

export function previousPredictor (rep: Reputation, p: ModelParams, at: number): number {
  const slow = posteriorMean(rep, p, at)
  const r = decayed(rep.recent, p.fastLambda, p, rep.lastAt, at)
  const fast = (r.alpha + p.trendShrink * slow) / (r.alpha + r.beta + p.trendShrink)
  return Math.min(slow, fast)
}
