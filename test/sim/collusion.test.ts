/**
 * Colluding providers: with identical replicas a coalition keeps one real
 * copy of a piece and answers the other replicas' audits from it; with
 * distinct replicas it can do nothing of the kind.
 */
import test from 'ava'
import { makeProviders } from '../../sim/behaviours.js'
import { Coalition, coalitionOf, type Held } from '../../sim/collusion.js'
import { collusionRuns } from '../../sim/main.js'
import { simulate, STRATEGIES } from '../../sim/simulate.js'

const tiny = { providers: 12, pieces: 60, days: 90, arrivalDays: 20, replicas: 3, capacityFactor: 2 }
const held = (provider: number, lostFraction = 0): Held => ({ provider, lostFraction, hollow: false })

test('the coalition is chosen by the seed, not by behaviour, and has the size asked', (t) => {
  const a = coalitionOf(4, 60, 12)
  t.is(a.size, 12)
  t.deepEqual(coalitionOf(4, 60, 12), a)
  t.notDeepEqual(coalitionOf(5, 60, 12), a)
  for (const p of coalitionOf(4, 60, 6)) t.true(a.has(p), 'a smaller coalition is part of a larger one')
  t.is(coalitionOf(4, 60, 0).size, 0)
  const kinds = new Set([...a].map(i => makeProviders(4, 60, 10, 10)[i].behaviour))
  t.true(kinds.size > 1)
})

test('identical replicas: a member beside a partner\'s real copy stores nothing and answers from it; leaving, the keeper hands the copy on', (t) => {
  const c = new Coalition(new Set([1, 2, 3]), true)
  const replicas = [held(0), held(1, 0.1)]
  for (const r of replicas) c.placed(replicas, r)
  t.false(replicas[1].hollow, 'the first member replica is the real copy')
  const second = held(2)
  replicas.push(second)
  c.placed(replicas, second)
  t.true(second.hollow)
  t.is(c.keeperOf(replicas, second), replicas[1])
  // an outsider is never hollow
  const outsider = held(7)
  c.placed([...replicas, outsider], outsider)
  t.false(outsider.hollow)
  // the keeper leaves while readable: the partner now holds the copy, damage and all
  c.leaving(replicas, replicas[1], true)
  t.false(second.hollow)
  t.is(second.lostFraction, 0.1)
  // an unreadable keeper hands nothing on
  const third = held(3)
  const r2 = [held(1), third]
  third.hollow = true
  c.leaving(r2, r2[0], false)
  t.true(third.hollow)
})

test('distinct replicas: nobody is ever hollow', (t) => {
  const c = new Coalition(new Set([1, 2]), false)
  const replicas = [held(1), held(2)]
  for (const r of replicas) c.placed(replicas, r)
  t.deepEqual(replicas.map(r => r.hollow), [false, false])
})

test('in the simulation: no coalition changes nothing, distinct replicas give a coalition nothing, identical ones hollow out replicas and hide loss', (t) => {
  const s = STRATEGIES[0]
  const base = simulate({ ...tiny, seed: 3 }, s)
  t.deepEqual(simulate({ ...tiny, seed: 3, coalition: 0 }, s), base)
  t.is(base.hollowDays, 0)
  t.deepEqual(simulate({ ...tiny, seed: 3, coalition: 6, distinct: true }, s), base)
  const colluding = simulate({ ...tiny, seed: 3, coalition: 6 }, s)
  t.true(colluding.hollowDays > 0)
  t.true(colluding.hiddenLoss > base.hiddenLoss, `hidden loss ${colluding.hiddenLoss} against ${base.hiddenLoss}`)
  t.true(colluding.atRisk.reduce((a, b) => a + b, 0) > base.atRisk.reduce((a, b) => a + b, 0))
})

test('collusion runs: one row per size, distinct the same at every size', (t) => {
  const rows = collusionRuns([2], tiny, [0, 4])
  t.deepEqual(rows.map(r => r.size), [0, 4])
  t.deepEqual(rows[1].distinct, rows[0].distinct)
  t.deepEqual(rows[0].identical, rows[0].distinct)
  t.true(rows[1].identical.hollowDays > 0)
})
