/**
 * The fault predictor (src/reputation/predictor.ts): each signal moves the
 * prediction the way its cause says it should — an outage, a deal that has
 * lost data, a latency trend — and a stray miss among a busy provider's
 * answers is not an outage.
 */
import test from 'ava'
import type { ReputationEvent } from '../../src/reputation/interface.js'
import { DEFAULT_PARAMS, emptyReputation, predictPass, reputations, update } from '../../src/reputation/model.js'
import { FEATURE_PRIOR, features, predictAudit, predictFrom, WEIGHTS } from '../../src/reputation/predictor.js'

const DAY = 86_400_000
const ev = (day: number, outcome: ReputationEvent['outcome'], latencyMs?: number, provider = 'p'): ReputationEvent => ({ provider, at: day * DAY, outcome, latencyMs })
const steady = (days: number, ms = 150): ReputationEvent[] => Array.from({ length: days }, (_, d) => ev(d, 'pass', ms))

test('predictPass is the predictor for a deal with no failed proof, a probability', (t) => {
  const r = reputations(steady(30)).get('p')!
  t.is(predictPass(r, DEFAULT_PARAMS, 30 * DAY), predictAudit(r, DEFAULT_PARAMS, 30 * DAY).pass)
  const p = predictAudit(r, DEFAULT_PARAMS, 30 * DAY)
  t.true(Math.abs(p.pass - (1 - p.miss) * (1 - p.fail)) < 1e-15)
  for (const x of [p.pass, p.miss, p.fail]) t.true(x > 0 && x < 1)
})

test('an unaudited provider reads as typical (the feature prior), not as a bad one', (t) => {
  const f = features(emptyReputation('new'), DEFAULT_PARAMS, 0)
  t.is(f.unaudited, 1)
  const typical = Math.log(FEATURE_PRIOR.alpha / FEATURE_PRIOR.beta)
  t.true(Math.abs(f.availability - typical) < 1e-12)
  t.true(predictPass(emptyReputation('new')) > 0.9)
  // one pass under the uniform prior would read 2/3; here it stays high
  t.true(predictPass(reputations([ev(0, 'pass', 100)]).get('p')!) > 0.9)
})

test('an outage: a period with nothing answered counts, and its length is in periods', (t) => {
  let r = reputations(steady(60)).get('p')!
  t.is(features(r, DEFAULT_PARAMS, 60 * DAY).down, 0)
  r = update(r, ev(60, 'miss'))
  const one = features(r, DEFAULT_PARAMS, 61 * DAY)
  t.is(one.down, 1)
  t.true(Math.abs(one.downPeriods - Math.log1p(1)) < 1e-12)
  r = update(r, ev(61, 'miss'))
  t.true(Math.abs(features(r, DEFAULT_PARAMS, 62 * DAY).downPeriods - Math.log1p(2)) < 1e-12)
  t.true(predictPass(r, DEFAULT_PARAMS, 62 * DAY) < 0.5)
})

test('a stray miss right after an answer is not an outage', (t) => {
  let r = reputations(steady(60)).get('p')!
  r = update(r, { provider: 'p', at: 60 * DAY, outcome: 'pass', latencyMs: 150 })
  r = update(r, { provider: 'p', at: 60 * DAY + 60_000, outcome: 'miss' })
  t.is(features(r, DEFAULT_PARAMS).down, 0)
  t.true(predictPass(r) > 0.9)
})

test('a deal that failed a proof is predicted to fail again, more so the more it failed since', (t) => {
  const r = reputations(steady(60)).get('p')!
  const at = 60 * DAY
  const clean = predictAudit(r, DEFAULT_PARAMS, at).pass
  const yesterday = predictAudit(r, DEFAULT_PARAMS, at, { fails: 1, firstFailAt: at - DAY }).pass
  const longAgo = predictAudit(r, DEFAULT_PARAMS, at, { fails: 1, firstFailAt: at - 10 * DAY }).pass
  const often = predictAudit(r, DEFAULT_PARAMS, at, { fails: 6, firstFailAt: at - 10 * DAY }).pass
  t.true(yesterday < clean - 0.3, `clean ${clean}, failed yesterday ${yesterday}`)
  // one fail in ten periods is a lower rate than one in one, and six in ten a higher one
  t.true(longAgo > yesterday && longAgo < clean, `failed once 10 periods ago ${longAgo}`)
  t.true(often < longAgo, `failed 6 times in 10 periods ${often}`)
  t.deepEqual(features(r, DEFAULT_PARAMS, at, { fails: 0 }), features(r, DEFAULT_PARAMS, at))
})

test('latency trend: a provider getting slower is predicted to fault more than one as fast as ever', (t) => {
  const flat = reputations(steady(60, 150)).get('p')!
  const slowing = reputations(Array.from({ length: 60 }, (_, d) => ev(d, 'pass', d < 40 ? 150 : 150 + 15 * (d - 40)))).get('p')!
  const f = features(slowing, DEFAULT_PARAMS, 60 * DAY)
  t.true(f.latencyTrend > 0.2, `trend ${f.latencyTrend}`)
  t.true(Math.abs(features(flat, DEFAULT_PARAMS, 60 * DAY).latencyTrend) < 1e-12)
  t.true(predictPass(slowing, DEFAULT_PARAMS, 60 * DAY) < predictPass(flat, DEFAULT_PARAMS, 60 * DAY) - 0.02)
})

test('the weights are the fitted constants, frozen', (t) => {
  t.true(Object.isFrozen(WEIGHTS) && Object.isFrozen(WEIGHTS.miss) && Object.isFrozen(WEIGHTS.fail))
  // a weight of 0 everywhere gives ½ for each way of faulting
  const p = predictFrom(features(emptyReputation('x'), DEFAULT_PARAMS, 0), { miss: {}, fail: {} })
  t.deepEqual(p, { pass: 0.25, miss: 0.5, fail: 0.5 })
})
