/**
 * Placement (README "Reputation, placement and repair"): N distinct providers on distinct hosts, by score,
 * within the price cap, each choice and each pass-over with its reason.
 */
import test from 'ava'
import type { ReputationEvent } from '../../src/reputation/interface.js'
import { reputations } from '../../src/reputation/model.js'
import { place, type Candidate } from '../../src/reputation/placement.js'

const DAY = 86_400_000
const history = (provider: string, days: number, fault: (d: number) => boolean): ReputationEvent[] =>
  Array.from({ length: days }, (_, d) => ({ provider, at: d * DAY, outcome: fault(d) ? 'miss' : 'pass', latencyMs: 100 }))

const reps = reputations([
  ...history('good', 120, () => false),
  ...history('ok', 120, d => d % 10 === 0),
  ...history('bad', 120, d => d % 2 === 0),
  ...history('twin', 120, () => false)
].sort((a, b) => a.at - b.at))

const candidates: Candidate[] = [
  { id: 'good', url: 'http://a.example:7470', pricePerGiBDay: 40n, reputation: reps.get('good') },
  { id: 'twin', url: 'http://a.example:7470/', host: 'a.example:7470', pricePerGiBDay: 30n, reputation: reps.get('twin') },
  { id: 'ok', url: 'http://b.example:7470', pricePerGiBDay: 20n, reputation: reps.get('ok') },
  { id: 'bad', url: 'http://c.example:7470', pricePerGiBDay: 10n, reputation: reps.get('bad') },
  { id: 'new', url: 'http://d.example:7470', pricePerGiBDay: 10n },
  { id: 'dear', url: 'http://e.example:7470', pricePerGiBDay: 90n, reputation: reps.get('good') }
]

test('chooses by score on distinct hosts and says why', (t) => {
  const p = place(candidates, { replicas: 3, maxPrice: 50n })
  t.deepEqual(p.chosen.map(c => c.candidate.id), ['twin', 'ok', 'bad'])
  t.false(p.short)
  // twin and good tie on score: the cheaper wins, the other shares its host
  t.regex(p.skipped.find(s => s.candidate.id === 'good')!.reason, /same host a\.example:7470/)
  t.regex(p.skipped.find(s => s.candidate.id === 'dear')!.reason, /asks 90 per GiB per day, above --max-price 50/)
  t.regex(p.chosen[0].reason, /^rank 1: score 0\.9\d\d \(5th percentile of the pass rate\), 120 of 120 audits passed/)
  t.regex(p.chosen[0].reason, /asks 30 ≤ 50 per GiB per day/)
  // a provider with a perfect but short record ranks below the reliable ones: 'new' was not needed
  t.regex(p.skipped.find(s => s.candidate.id === 'new')!.reason, /ranked \d; 3 better providers were chosen/)
})

test('a new provider is chosen last, with its reason', (t) => {
  const p = place(candidates, { replicas: 5, maxPrice: 50n })
  t.deepEqual(p.chosen.map(c => c.candidate.id), ['twin', 'ok', 'bad', 'new'])
  t.true(p.short)
  t.regex(p.chosen[3].reason, /no audits yet/)
})

test('excluded providers, hosts and capacity', (t) => {
  const p = place(candidates, {
    replicas: 2,
    exclude: new Map([['twin', 'holds the piece already']]),
    excludeHosts: new Set(['b.example:7470']),
    pieceSize: 1n << 30n
  })
  t.deepEqual(p.chosen.map(c => c.candidate.id), ['good', 'dear'])
  t.is(p.skipped.find(s => s.candidate.id === 'twin')!.reason, 'holds the piece already')
  t.regex(p.skipped.find(s => s.candidate.id === 'ok')!.reason, /same host b\.example:7470/)
  const full = place([{ id: 'x', pricePerGiBDay: 1n, freeCapacity: 10n }], { replicas: 1, pieceSize: 100n })
  t.deepEqual(full.chosen, [])
  t.regex(full.skipped[0].reason, /has 10 bytes free, the piece needs 100/)
})

test('ties among unknown providers follow the caller\'s tie-break', (t) => {
  const unknown: Candidate[] = ['p1', 'p2', 'p3'].map(id => ({ id, pricePerGiBDay: 1n }))
  const order = { p1: 3, p2: 1, p3: 2 } as Record<string, number>
  t.deepEqual(place(unknown, { replicas: 3, tieBreak: c => order[c.id] }).chosen.map(c => c.candidate.id), ['p2', 'p3', 'p1'])
  t.throws(() => place(unknown, { replicas: 0 }), { instanceOf: RangeError })
})

test('probation: one replica explores the least-audited provider, with its reason', (t) => {
  const p = place(candidates, { replicas: 3, maxPrice: 50n, probationSlots: 1 })
  t.deepEqual(p.chosen.map(c => c.candidate.id), ['new', 'twin', 'ok'])
  t.regex(p.chosen[0].reason, /^on probation \(0 of 30 audits\)/)
  // without slots (the default) the unknown provider waits
  t.false(place(candidates, { replicas: 3, maxPrice: 50n }).chosen.some(c => c.candidate.id === 'new'))
})
