/**
 * The simulation in miniature: the same seed gives the same result, an
 * honest-only network loses nothing and repairs nothing, and a world with bad
 * providers records losses, repairs and a Brier score in range.
 */
import test from 'ava'
import { runAll } from '../../sim/main.js'
import { makeProviders } from '../../sim/behaviours.js'
import { simulate, STRATEGIES } from '../../sim/simulate.js'

const tiny = { providers: 12, pieces: 40, days: 60, arrivalDays: 20 }

test('same seed, same result; another seed, another world', (t) => {
  const a = runAll([7], tiny)
  const b = runAll([7], tiny)
  t.deepEqual(a, b)
  t.notDeepEqual(runAll([8], tiny), a)
})

test('sanity: counts in range, at-risk series per day', (t) => {
  for (const r of runAll([3], tiny)) {
    t.is(r.atRisk.length, tiny.days)
    t.true(r.piecesLost >= 0 && r.piecesLost <= tiny.pieces)
    t.true(r.brier.audits > 0)
    for (const b of [r.brier.model, r.brier.provider, r.brier.previous, r.brier.posteriorMean, r.brier.rawPassRate]) t.true(b >= 0 && b <= 1)
    t.is(r.lost.at(-1), r.piecesLost)
  }
})

test('an honest-only network loses nothing under every strategy', (t) => {
  for (const s of STRATEGIES) {
    const r = simulate({ ...tiny, replicas: 3, capacityFactor: 2, seed: 5, mix: { honest: 1 } }, s)
    t.is(r.piecesLost, 0, s.name)
    t.is(Math.max(...r.atRisk), 0, s.name)
  }
})

test('a network of dying and dropping providers makes both strategies repair', (t) => {
  const [predictive, reactive] = STRATEGIES
  const mix = { 'sudden-death': 0.5, dropping: 0.5 }
  const a = simulate({ ...tiny, replicas: 3, capacityFactor: 2, seed: 2, days: 200, mix }, predictive)
  const b = simulate({ ...tiny, replicas: 3, capacityFactor: 2, seed: 2, days: 200, mix }, reactive)
  t.true(a.repairs > 0 && b.repairs > 0)
})

test('world B: the same providers and behaviours as world A for a seed, with their parameters drawn otherwise', (t) => {
  const a = makeProviders(4, 60, 365, 100)
  const b = makeProviders(4, 60, 365, 100, undefined, 'B')
  t.deepEqual(b.map(p => p.behaviour), a.map(p => p.behaviour))
  t.deepEqual(b.map(p => p.pricePerGiBDay), a.map(p => p.pricePerGiBDay))
  t.deepEqual(makeProviders(4, 60, 365, 100, undefined, 'B'), b)
  // world A: one set of constants per behaviour; world B: a draw per provider
  const baseMiss = (ps: typeof a): number => new Set(ps.map(p => p.params.baseMiss)).size
  t.is(baseMiss(a), 1)
  t.is(baseMiss(b), b.length)
  for (const p of b.filter(p => p.behaviour === 'dropping')) t.true(p.params.hazardConstant >= 0.001 && p.params.hazardConstant <= 0.01)
  for (const p of a.filter(p => p.behaviour === 'degrading')) t.true(p.startDay >= 0 && p.startDay < 200)
  t.notDeepEqual(b.filter(p => p.behaviour === 'degrading').map(p => p.startDay), a.filter(p => p.behaviour === 'degrading').map(p => p.startDay))
  const tinyB = { ...tiny, world: 'B' as const }
  t.deepEqual(runAll([6], tinyB), runAll([6], tinyB))
  t.notDeepEqual(runAll([6], tinyB), runAll([6], tiny))
})
