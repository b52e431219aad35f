/**
 * The reputation model (README "Reputation, placement and repair"): Storj-style forgetting, the lower-bound
 * score that keeps new providers from being over-trusted, the prediction that
 * falls as a provider degrades, and reading events back from a ledger.
 */
import test from 'ava'
import { betaQuantile } from '../../src/reputation/beta.js'
import type { ReputationEvent } from '../../src/reputation/interface.js'
import type { LedgerEntry } from '../../src/ledger/interface.js'
import { eventOf } from '../../src/reputation/ledger.js'
import { DEFAULT_POLICY } from '../../src/reputation/repair.js'
import { emptyReputation, params, predictPass, rawPassRate, reputations, score, summarize, update, updateTally } from '../../src/reputation/model.js'

const DAY = 86_400_000
const ev = (provider: string, day: number, outcome: ReputationEvent['outcome'], latencyMs?: number): ReputationEvent => ({ provider, at: day * DAY, outcome, latencyMs })

test('forgetting: α ← λα + w·pass, β ← λβ + w·fail, once per period (Storj)', (t) => {
  let r = emptyReputation('p')
  r = update(r, ev('p', 0, 'pass'))
  t.deepEqual(r.proofs, { alpha: 1, beta: 0 })
  r = update(r, ev('p', 1, 'fail'))
  t.true(Math.abs(r.proofs.alpha - 0.98) < 1e-12)
  t.is(r.proofs.beta, 1)
  r = update(r, ev('p', 3, 'pass'))
  t.true(Math.abs(r.proofs.alpha - (0.98 * 0.98 * 0.98 + 1)) < 1e-12)
  t.true(Math.abs(r.proofs.beta - 0.98 * 0.98) < 1e-12)
  // two audits in the same instant are not forgotten against each other
  const same = update(update(emptyReputation('q'), ev('q', 5, 'pass')), ev('q', 5, 'pass'))
  t.deepEqual(same.proofs, { alpha: 2, beta: 0 })
  // periodMs 0: literally once per event
  const p0 = params({ periodMs: 0 })
  const lit = update(update(emptyReputation('s'), ev('s', 0, 'fail'), p0), ev('s', 0, 'pass'), p0)
  t.deepEqual(lit.proofs, { alpha: 1, beta: 0.98 })
})

test('old evidence fades: a fault a year ago weighs λ^365', (t) => {
  const r = reputations([ev('p', 0, 'fail'), ...Array.from({ length: 10 }, (_, i) => ev('p', 365 + i, 'pass'))]).get('p')!
  t.true(r.proofs.beta < Math.pow(0.98, 365) + 1e-12)
  t.true(r.proofs.beta > 0)
})

test('misses and unknowns are kept apart from failed proofs', (t) => {
  const r = reputations([ev('p', 0, 'pass', 100), ev('p', 1, 'miss'), ev('p', 2, 'unknown'), ev('p', 2, 'pass', 200), ev('p', 3, 'fail', 50)]).get('p')!
  t.is(r.passes, 2); t.is(r.failures, 1); t.is(r.misses, 1); t.is(r.unknowns, 1)
  t.true(r.integrity.beta > 0.9 && r.integrity.beta <= 1) // only the failed proof
  t.true(r.availability.beta > 1.9) // the miss and the unknown
  t.is(r.consecutiveFaults, 1)
  t.is(r.lastSeen, 3 * DAY)
  // EWMA 0.2: 100 → 120 → 106
  t.true(Math.abs((r.latencyMs ?? 0) - 106) < 1e-9)
})

test('score is the 5th percentile of Beta(prior + evidence); a new provider is not over-trusted', (t) => {
  const fresh = emptyReputation('new')
  t.true(Math.abs(score(fresh) - 0.05) < 1e-12) // Beta(1, 1)
  const lucky = reputations([ev('lucky', 0, 'pass'), ev('lucky', 1, 'pass')]).get('lucky')!
  const veteran = reputations(Array.from({ length: 200 }, (_, i) => ev('vet', i, i % 50 === 7 ? 'miss' : 'pass'))).get('vet')!
  const vs = summarize(veteran)
  const ls = summarize(lucky)
  // the lucky newcomer has a perfect record, the veteran a few misses: the veteran still ranks first
  t.is(ls.passRate, 1)
  t.true(vs.passRate! < 1)
  t.true(vs.score > ls.score, `veteran ${vs.score} vs newcomer ${ls.score}`)
  t.true(Math.abs(vs.score - betaQuantile(0.05, 1 + veteran.proofs.alpha, 1 + veteran.proofs.beta)) < 1e-12)
})

test('a provider that stops answering: the prediction falls below the repair threshold after a period of misses, while the raw pass rate still believes it', (t) => {
  const events: ReputationEvent[] = []
  for (let d = 0; d < 100; d++) events.push(ev('p', d, 'pass', 150))
  let r = reputations(events).get('p')!
  const before = predictPass(r)
  t.true(before > 0.95, `before: ${before}`)
  r = update(r, ev('p', 100, 'miss'))
  t.true(predictPass(r) < DEFAULT_POLICY.threshold, `after a period of misses: ${predictPass(r)}`)
  t.true(rawPassRate(r) > 0.95) // the baseline still believes it
  // it answers again: the prediction is back
  r = update(r, ev('p', 101, 'pass', 150))
  t.true(predictPass(r) > 0.9, `after answering again: ${predictPass(r)}`)
})

test('events from ledger entries: proof kinds with provider and latency', (t) => {
  t.deepEqual(eventOf({ kind: 'proof-passed', at: 5, fields: { provider: 'did:key:z1', ms: 12 } } as LedgerEntry), { provider: 'did:key:z1', at: 5, outcome: 'pass', latencyMs: 12 })
  t.deepEqual(eventOf({ kind: 'proof-failed', at: 6, fields: { provider: 'did:key:z1', ms: 3 } } as LedgerEntry), { provider: 'did:key:z1', at: 6, outcome: 'fail', latencyMs: 3 })
  t.deepEqual(eventOf({ kind: 'proof-missed', at: 7, fields: { provider: 'did:key:z1', ms: 30000 } } as LedgerEntry), { provider: 'did:key:z1', at: 7, outcome: 'miss' })
  t.is(eventOf({ kind: 'challenge-issued', at: 7, fields: { provider: 'did:key:z1' } } as LedgerEntry), undefined)
})

test('bad parameters are RangeErrors; events of another provider are TypeErrors', (t) => {
  t.throws(() => params({ lambda: 1.2 }), { instanceOf: RangeError })
  t.throws(() => params({ quantile: 0 }), { instanceOf: RangeError })
  t.throws(() => update(emptyReputation('a'), ev('b', 0, 'pass')), { instanceOf: TypeError })
})

test('a tally of one instant gives the same counters as its events one by one (what the simulator relies on)', (t) => {
  const start = reputations([ev('p', 0, 'pass', 100), ev('p', 1, 'fail', 100), ev('p', 2, 'miss')]).get('p')!
  const outcomes: Array<ReputationEvent['outcome']> = ['pass', 'pass', 'miss', 'fail', 'pass', 'miss', 'pass']
  let seq = start
  for (const o of outcomes) seq = update(seq, ev('p', 5, o))
  const tally = updateTally(start, { at: 5 * DAY, pass: 4, fail: 1, miss: 2 })
  for (const key of ['proofs', 'integrity', 'availability', 'recent'] as const) {
    t.true(Math.abs(seq[key].alpha - tally[key].alpha) < 1e-12, key)
    t.true(Math.abs(seq[key].beta - tally[key].beta) < 1e-12, key)
  }
  t.is(tally.passes, seq.passes)
  t.is(tally.failures, seq.failures)
  t.is(tally.misses, seq.misses)
  t.is(summarize(tally).score, summarize(seq).score)
  t.is(tally.lastPassAt, seq.lastPassAt)
  t.is(tally.lastFaultAt, seq.lastFaultAt)
})

test('latency means by time: a tally of one instant weighs its audits as the same audits one by one', (t) => {
  const start = reputations([ev('p', 0, 'pass', 100), ev('p', 1, 'pass', 140), ev('p', 2, 'miss')]).get('p')!
  const latencies = [200, 260, 230]
  let seq = start
  for (const ms of latencies) seq = update(seq, ev('p', 4, 'pass', ms))
  seq = update(seq, ev('p', 4, 'miss'))
  const tally = updateTally(start, { at: 4 * DAY, pass: 3, fail: 0, miss: 1, latencyMs: 230 })
  for (const key of ['latencyFast', 'latencySlow'] as const) {
    t.true(Math.abs(seq[key]!.sum - tally[key]!.sum) < 1e-9, key)
    t.true(Math.abs(seq[key]!.weight - tally[key]!.weight) < 1e-12, key)
  }
  // forgotten by time at λ = 0.7 per day, misses included: days 0 and 1 sampled, a day to day 2's miss, two more to day 4
  const fast = start.latencyFast!
  t.true(Math.abs(fast.weight - (0.7 + 1) * 0.7) < 1e-12)
  t.true(Math.abs(seq.latencyFast!.weight - (fast.weight * 0.7 * 0.7 + 3)) < 1e-12)
  t.is(seq.lastPassAt, 4 * DAY)
  t.is(seq.lastFaultAt, 4 * DAY)
})
