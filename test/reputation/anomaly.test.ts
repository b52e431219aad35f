/**
 * The anomaly detector (src/reputation/anomaly.ts): a spike and a slow drift
 * open an incident, stationary noise with heavy tails does not, the return
 * to the baseline resolves it, and the state stays the same size however
 * long the series.
 */
import test from 'ava'
import { AnomalyDetector, DEFAULT_DETECTOR, incidentId, type IncidentEvent } from '../../src/reputation/anomaly.js'

const MIN = 60_000

/** mulberry32: a seeded stream, so the noise is the same on every run */
function stream (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Log-normal noise, σ 0.25, with a σ 0.8 blip 3 % of the time. */
function noisy (seed: number): () => number {
  const u = stream(seed)
  return () => {
    const sigma = u() < 0.03 ? 0.8 : 0.25
    return Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()))
  }
}

function feed (d: AnomalyDetector, values: number[], from = 0, series: 'latency' | 'throughput' = 'latency'): IncidentEvent[] {
  const out: IncidentEvent[] = []
  values.forEach((v, i) => {
    const e = d.observe('p', series, (from + i) * MIN, v)
    if (e !== undefined) out.push(e)
  })
  return out
}

const steady = (n: number, seed: number, level = 200): number[] => {
  const x = noisy(seed)
  return Array.from({ length: n }, () => level * x())
}

test('stationary noise with heavy tails raises nothing, in 20 000 latencies and 20 000 audits', (t) => {
  const d = new AnomalyDetector()
  t.deepEqual(feed(d, steady(20_000, 1)), [])
  const u = stream(2)
  for (let i = 0; i < 20_000; i++) {
    const outcome = u() < 0.002 ? 'miss' : 'pass'
    t.deepEqual(d.observeAudit('q', i * MIN, outcome, outcome === 'pass' ? 150 : undefined), [])
  }
  t.deepEqual(d.open(), [])
})

test('a spike: two samples in a row far above the baseline open an incident; one alone is a blip', (t) => {
  const d = new AnomalyDetector()
  feed(d, steady(200, 3))
  t.deepEqual(feed(d, [2000], 200), [], 'one sample at 10× is a blip')
  feed(d, steady(20, 4), 201)
  const events = feed(d, [2000, 2200, 2100], 221)
  t.is(events.length, 1)
  const [e] = events
  t.is(e.type, 'opened')
  t.is(e.incident.kind, 'spike')
  t.is(e.incident.startedAt, 222 * MIN)
  t.is(e.incident.onsetAt, 221 * MIN)
  t.true(e.incident.evidence.baseline > 150 && e.incident.evidence.baseline < 260, `baseline ${e.incident.evidence.baseline}`)
  t.is(e.incident.evidence.value, 2200)
  t.regex(e.incident.summary, /^proof latency up \d+\.\d× against its baseline of \d+(\.\d+)? ms \(spike, robust z \d+\.\d\)$/)
  t.is(e.incident.id, incidentId('p', 'latency', 222 * MIN))
  t.deepEqual(d.open().map(i => i.id), [e.incident.id])
})

test('a slow drift no single sample gives away is found by the CUSUM', (t) => {
  const d = new AnomalyDetector()
  feed(d, steady(300, 5))
  const x = noisy(6)
  // +0.4 % a sample: after 100 samples 1.5×, each sample well inside the noise
  const ramp = Array.from({ length: 400 }, (_, i) => 200 * Math.pow(1.004, i) * x())
  const events = feed(d, ramp, 300)
  const opened = events.filter(e => e.type === 'opened')
  t.true(opened.length >= 1)
  t.is(opened[0].incident.kind, 'drift')
  const at = (opened[0].incident.startedAt / MIN) - 300
  t.true(at > 20 && at < 250, `found after ${at} samples`)
  t.true(opened[0].incident.onsetAt <= opened[0].incident.startedAt)
})

test('recovery ends the incident, once; the next anomaly is a new incident with a new id', (t) => {
  const d = new AnomalyDetector()
  feed(d, steady(200, 7))
  const slow = feed(d, steady(30, 8, 800), 200)
  const opened = slow.filter(e => e.type === 'opened')
  t.is(opened.length, 1)
  t.deepEqual(slow.filter(e => e.type === 'resolved'), [])
  const back = feed(d, steady(30, 9), 230)
  t.is(back.length, 1)
  t.is(back[0].type, 'resolved')
  t.is(back[0].incident.id, opened[0].incident.id)
  // resolved after `recover` samples in a row near the baseline
  t.true((back[0].incident.endedAt ?? 0) >= (230 + DEFAULT_DETECTOR.recover - 1) * MIN && (back[0].incident.endedAt ?? 0) < 260 * MIN)
  t.true(back[0].incident.evidence.samples >= 30)
  t.true(back[0].incident.evidence.worst > 800)
  t.deepEqual(d.open(), [])
  // the baseline did not learn the slowdown: it is still about 200 ms
  const again = feed(d, steady(10, 10, 800), 260).filter(e => e.type === 'opened')
  t.is(again.length, 1)
  t.not(again[0].incident.id, opened[0].incident.id)
  t.true(again[0].incident.evidence.baseline < 260)
})

test('throughput: a drop is an anomaly, a rise is not', (t) => {
  const d = new AnomalyDetector()
  feed(d, steady(100, 11, 50e6), 0, 'throughput')
  t.deepEqual(feed(d, steady(20, 12, 250e6), 100, 'throughput'), [])
  const drop = feed(d, steady(20, 13, 10e6), 120, 'throughput')
  t.is(drop[0]?.type, 'opened')
  t.is(drop[0]?.incident.series, 'throughput')
  t.regex(drop[0]?.incident.summary ?? '', /^retrieval throughput down \d+\.\d× against its baseline of/)
})

test('misses: an intermittent outage opens a rate incident with counts, and its end resolves it', (t) => {
  const d = new AnomalyDetector()
  const u = stream(14)
  let minute = 0
  const run = (n: number, miss: number): IncidentEvent[] => {
    const out: IncidentEvent[] = []
    for (let i = 0; i < n; i++) out.push(...d.observeAudit('p', minute++ * MIN, u() < miss ? 'miss' : 'pass', 150))
    return out
  }
  t.deepEqual(run(500, 0.002), [])
  const outage = run(100, 0.4)
  t.is(outage.length, 1)
  t.is(outage[0].type, 'opened')
  t.is(outage[0].incident.series, 'misses')
  t.is(outage[0].incident.kind, 'rate')
  t.true((outage[0].incident.evidence.bad ?? 0) >= 3)
  t.regex(outage[0].incident.summary, /^missed audits: \d+ of \d+ audits since the onset, against a baseline rate of \d+\.\d %/)
  const after = run(200, 0.002)
  t.is(after.length, 1)
  t.is(after[0].type, 'resolved')
  t.is(after[0].incident.id, outage[0].incident.id)
})

test('state is O(1): the same shape after 1 000 and 100 000 observations; a snapshot continues identically', (t) => {
  const shape = (d: AnomalyDetector): string => JSON.stringify(d.snapshot(), (_k, v: unknown) => typeof v === 'number' ? 0 : v)
  const a = new AnomalyDetector()
  feed(a, steady(1_000, 15))
  const small = shape(a)
  feed(a, steady(99_000, 16), 1_000)
  t.is(shape(a), small)
  const b = AnomalyDetector.restore(JSON.parse(JSON.stringify(a.snapshot())))
  const tail = steady(50, 17, 900)
  t.deepEqual(feed(b, tail, 100_000), feed(a, tail, 100_000))
})

test('the same observations give the same incidents, ids included', (t) => {
  const values = [...steady(100, 18), ...steady(10, 19, 1000), ...steady(20, 20)]
  t.deepEqual(feed(new AnomalyDetector(), values), feed(new AnomalyDetector(), values))
})

test('bad observations and options are refused', (t) => {
  const d = new AnomalyDetector()
  t.throws(() => d.observe('p', 'latency', 0, Number.NaN), { instanceOf: RangeError })
  t.throws(() => d.observe('p', 'latency', 0, -1), { instanceOf: RangeError })
  t.throws(() => d.observe('p', 'latency', Number.POSITIVE_INFINITY, 1), { instanceOf: RangeError })
  t.throws(() => d.observe('p', 'misses', 0, 3, 2), { instanceOf: RangeError })
  t.throws(() => d.observe('p', 'misses', 0, 0.5, 2), { instanceOf: RangeError })
  t.throws(() => d.observe('', 'latency', 0, 1), { instanceOf: TypeError })
  t.throws(() => d.observe('p', 'bandwidth' as 'latency', 0, 1), { instanceOf: TypeError })
  t.throws(() => new AnomalyDetector({ alpha: 0 }), { instanceOf: RangeError })
  t.throws(() => new AnomalyDetector({ spikeRun: 0 }), { instanceOf: RangeError })
  t.throws(() => AnomalyDetector.restore({ version: 2 } as never), { instanceOf: TypeError })
  t.is(DEFAULT_DETECTOR.spikeRun, 2)
})
