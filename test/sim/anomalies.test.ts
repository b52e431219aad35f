/**
 * The anomaly scenario of the simulation: seeded, episodes as specified,
 * matching by the window, and the detector finding the strong anomalies of a
 * small world without false alarms.
 */
import test from 'ava'
import { DEFAULT_ANOMALY_CONFIG, makeEpisodes, runAnomalies, SEVERITY, summarizeAnomalies, type AnomalyConfig } from '../../sim/anomalies.js'

const small: AnomalyConfig = { ...DEFAULT_ANOMALY_CONFIG, seed: 3, providers: 8, days: 200 }

test('episodes: seeded, in range, apart, never overlapping', (t) => {
  const a = makeEpisodes(small)
  t.deepEqual(makeEpisodes(small), a)
  t.notDeepEqual(makeEpisodes({ ...small, seed: 4 }), a)
  t.true(a.length > 0)
  for (const e of a) {
    const { lo, hi } = SEVERITY[e.kind]
    t.true(e.severity >= lo && e.severity <= hi, `${e.kind} ${e.severity}`)
    t.true(e.start >= 14 && e.end <= small.days && e.end > e.start)
    const length = e.end - e.start
    if (e.end < small.days) t.true(e.kind === 'slowdown' ? length <= 10 : e.kind === 'outage' ? length >= 2 && length <= 10 : length >= 14 && length <= 60)
  }
  for (let p = 0; p < small.providers; p++) {
    const mine = a.filter(e => e.provider === p)
    for (let i = 1; i < mine.length; i++) t.true(mine[i].start >= mine[i - 1].end + 14)
  }
})

test('matching: an incident matches an episode of its provider from its first day to `window` days after its last', (t) => {
  const r = runAnomalies(small)
  t.deepEqual(runAnomalies(small), r)
  for (const [i, inc] of r.incidents.entries()) {
    const j = r.matchOf[i]
    if (j < 0) {
      t.false(r.episodes.some(e => e.provider === inc.providerIndex && inc.day >= e.start && inc.day <= e.end - 1 + small.window))
    } else {
      const e = r.episodes[j]
      t.is(e.provider, inc.providerIndex)
      t.true(inc.day >= e.start && inc.day <= e.end - 1 + small.window)
    }
  }
  for (const [j, e] of r.episodes.entries()) {
    const first = r.incidents.filter((_, i) => r.matchOf[i] === j).map(inc => inc.day)
    t.is(r.delay[j], first.length === 0 ? -1 : Math.min(...first) - e.start)
  }
})

test('a small world: the strong anomalies are all found, and nearly nothing else raised', (t) => {
  const results = [1, 2].map(seed => runAnomalies({ ...small, seed }))
  const s = summarizeAnomalies(results, small)
  for (const kind of ['slowdown', 'outage', 'corruption'] as const) {
    const strong = s.recallByKind[kind].strong
    t.is(strong.detected, strong.episodes, kind)
  }
  t.true(s.precision >= 0.9, `precision ${s.precision}`)
  t.true(s.episodes > 10)
})
