/**
 * Repair decisions (README "Reputation, placement and repair"): two faults in a row or a predicted pass
 * probability below the threshold re-replicate onto the best provider not
 * already holding the piece; with no healthy replica left, the plan says so.
 */
import test from 'ava'
import type { ReputationEvent } from '../../src/reputation/interface.js'
import { reputations } from '../../src/reputation/model.js'
import type { Candidate } from '../../src/reputation/placement.js'
import { AFTER_FAILURE_POLICY, decide, planRepairs, type Replica } from '../../src/reputation/repair.js'

const DAY = 86_400_000
const events: ReputationEvent[] = []
for (let d = 0; d < 60; d++) {
  for (const p of ['a', 'b', 'd', 'e']) events.push({ provider: p, at: d * DAY, outcome: 'pass' })
  // c stops answering over the last three days (audits of a deal of another piece)
  events.push({ provider: 'c', at: d * DAY, outcome: d >= 57 ? 'miss' : 'pass' })
  events.push({ provider: 'e', at: d * DAY + 1, outcome: d % 3 === 0 ? 'miss' : 'pass' })
}
events.sort((x, y) => x.at - y.at)
const reps = reputations(events)
const candidates: Candidate[] = ['a', 'b', 'c', 'd', 'e'].map(id => ({ id, host: `${id}.example`, pricePerGiBDay: 1n, reputation: reps.get(id) }))
const replica = (provider: string, consecutiveFaults = 0): Replica => ({ deal: `deal-${provider}`, provider, consecutiveFaults })

test('two faults in a row repair; one does not', (t) => {
  t.false(decide(replica('a', 1), reps.get('a')).repair)
  const d = decide(replica('a', 2), reps.get('a'))
  t.true(d.repair)
  t.regex(d.reason, /faulted 2 times in a row/)
  // the reactive baseline waits for the deal to fail
  t.false(decide(replica('a', 2), reps.get('a'), AFTER_FAILURE_POLICY).repair)
  t.true(decide(replica('a', 3), reps.get('a'), AFTER_FAILURE_POLICY).repair)
})

test('a low predicted pass probability repairs before any deal of the piece has faulted twice', (t) => {
  const d = decide(replica('c', 0), reps.get('c'))
  t.true(d.repair, d.reason)
  t.regex(d.reason, /predicted to pass its next audit with probability 0\.\d+, below 0\.7/)
  // a provider never audited is judged by its faults only
  t.false(decide(replica('zz', 0), undefined).repair)
})

test('plan: the best provider not holding the piece, copied from healthy replicas', (t) => {
  const plans = planRepairs([replica('a'), replica('c'), replica('e')], id => reps.get(id), candidates)
  t.is(plans.length, 1)
  const [plan] = plans
  t.is(plan.replica.provider, 'c')
  t.deepEqual(plan.sources.map(s => s.provider), ['a', 'e'])
  // b and d have clean records, a holds the piece; b and d tie and sort by id
  t.is(plan.target?.candidate.id, 'b')
})

test('plan: no healthy source and no target are said plainly', (t) => {
  const plans = planRepairs([replica('a', 2), replica('b', 3)], id => reps.get(id), candidates.filter(c => c.id === 'a' || c.id === 'b'))
  t.is(plans.length, 2)
  t.deepEqual(plans[0].sources, [])
  t.is(plans[0].target, undefined)
  t.regex(plans[0].noTarget!, /no provider qualifies: a holds the piece already; b holds the piece already/)
})

test('a young provider is judged by its faults until it has been audited enough', (t) => {
  const young = reputations([{ provider: 'y', at: 0, outcome: 'pass' }, { provider: 'y', at: DAY, outcome: 'miss' }]).get('y')
  // one missed audit predicts another, below the threshold, yet two audits say little about a provider
  const d = decide(replica('y', 0), young)
  t.false(d.repair, d.reason)
  t.true(d.predicted < 0.7)
})

test('a deal that failed proofs is judged by its own history: repaired on a provider whose average is good', (t) => {
  const at = 59 * DAY
  const healthy = decide(replica('a', 0), reps.get('a'), undefined, undefined, at)
  t.false(healthy.repair, healthy.reason)
  // deal-a failed three proofs in the last three days, passing between them (never two faults in a row)
  const lossy: Replica = { ...replica('a', 0), history: { fails: 3, firstFailAt: at - 3 * DAY } }
  const d = decide(lossy, reps.get('a'), undefined, undefined, at)
  t.true(d.repair, d.reason)
  t.true(d.predicted < healthy.predicted)
  t.regex(d.reason, /^deal deal-a \(3 failed proofs\) of provider a is predicted to pass its next audit with probability 0\.\d+, below 0\.7$/)
  // a provider-level prediction given by the caller does not hide the deal's own failures
  t.true(decide(lossy, reps.get('a'), undefined, undefined, at, 0.99).repair)
  // a deal with no failure is the provider's prediction
  t.is(decide({ ...replica('a', 0), history: { fails: 0 } }, reps.get('a'), undefined, undefined, at).predicted, healthy.predicted)
})

test('plan: a replica whose deal failed proofs is not a source, and is the one replaced', (t) => {
  const lossy: Replica = { ...replica('b', 0), history: { fails: 3, firstFailAt: 57 * DAY } }
  const plans = planRepairs([replica('a'), lossy, replica('d')], id => reps.get(id), candidates, { at: 59 * DAY })
  t.deepEqual(plans.map(p => p.replica.deal), ['deal-b'])
  t.deepEqual(plans[0]?.sources.map(s => s.deal).sort(), ['deal-a', 'deal-d'])
})
