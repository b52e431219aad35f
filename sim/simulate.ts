/**
 * One simulated year of one seeded world under one strategy. The
 * reputation-guided strategy runs the real model, placement and repair code
 * of src/reputation; the baseline places at random and repairs a replica only
 * once its deal has failed (3 consecutive faults, docs/ledger.md).
 */
import type { ReputationSummary } from '../src/reputation/interface.js'
import { DEFAULT_PARAMS, emptyReputation, rawPassRate, summarize, updateTally, type Tally } from '../src/reputation/model.js'
import type { Reputation } from '../src/reputation/interface.js'
import { place, type Candidate } from '../src/reputation/placement.js'
import { dealFeatures, features, predictFrom, type DealHistory } from '../src/reputation/predictor.js'
import { posteriorMean, previousPredictor } from './baselines.js'
import { AFTER_FAILURE_POLICY, decide, DEFAULT_POLICY, planRepairs, type RepairPolicy, type Replica } from '../src/reputation/repair.js'
import { audit, corruption, isDead, isReachable, latencyMs, makeProviders, type BehaviourName, type Provider, type World } from './behaviours.js'
import { Coalition, coalitionOf } from './collusion.js'
import { hashUnit, Rng } from './random.js'

const DAY_MS = 86_400_000

export interface SimConfig {
  seed: number
  providers: number
  pieces: number
  replicas: number
  days: number
  /** pieces arrive uniformly over the first this many days */
  arrivalDays: number
  /** capacity of each provider, in multiples of its fair share of replicas */
  capacityFactor: number
  /** shares of the behaviours (default: BEHAVIOURS' shares) */
  mix?: Partial<Record<BehaviourName, number>>
  /** how behaviour parameters are drawn (sim/behaviours.ts); A by default */
  world?: World
  /** providers in a colluding coalition (sim/collusion.ts); 0 by default */
  coalition?: number
  /** replicas are distinct copies (own encryption, own piece CID); identical by default */
  distinct?: boolean
}

export const DEFAULT_CONFIG: Omit<SimConfig, 'seed'> = {
  providers: 60,
  pieces: 1200,
  replicas: 3,
  days: 365,
  arrivalDays: 180,
  capacityFactor: 2
}

export interface Strategy {
  name: string
  placement: 'reputation' | 'random'
  policy: RepairPolicy
  /** reputation placement: replicas of a new piece that explore providers on probation */
  probationSlots?: number
}

export const STRATEGIES: readonly Strategy[] = [
  { name: 'reputation (1 probation slot) + predictive repair', placement: 'reputation', policy: DEFAULT_POLICY, probationSlots: 1 },
  { name: 'random + repair after failure', placement: 'random', policy: AFTER_FAILURE_POLICY },
  { name: 'reputation + repair after failure', placement: 'reputation', policy: AFTER_FAILURE_POLICY },
  { name: 'random + predictive repair', placement: 'random', policy: DEFAULT_POLICY },
  { name: 'reputation + predictive repair', placement: 'reputation', policy: DEFAULT_POLICY }
]

export interface SimResult {
  seed: number
  strategy: string
  piecesLost: number
  repairs: number
  /** GiB copied by repairs */
  gibMoved: number
  /** repairs by the behaviour of the provider replaced, and by the rule that triggered them */
  repairsFrom: Record<BehaviourName, number>
  repairsBy: { faults: number, prediction: number }
  /** repairs decided but postponed a day because no intact replica was reachable */
  postponed: number
  /** replicas placed at arrival on providers that later lost data or died */
  /**
   * mean squared error of each predictor over the run's audits (pass = 1):
   * the fault predictor with the deal's history, the same for the provider
   * alone, the previous predictor, the posterior mean and the raw pass rate
   */
  brier: Brier
  /** pieces with fewer than 2 intact replicas at the end of each day */
  atRisk: number[]
  /** pieces with no replica left intact, cumulative, at the end of each day */
  lost: number[]
  /**
   * piece-days with fewer intact real copies than the replicas the client
   * believes healthy (last audit passed): loss the audits do not show
   */
  hiddenLoss: number
  /** replica-days on which the provider held no copy of its own (collusion) */
  hollowDays: number
}

export interface Brier {
  audits: number
  model: number
  provider: number
  previous: number
  posteriorMean: number
  rawPassRate: number
}

interface ReplicaState {
  /** what the repair policy sees */
  view: Replica
  provider: number
  deal: number
  consecutiveFaults: number
  /** fraction of the piece's leaves lost (0: intact) */
  lostFraction: number
  /** the deal's own record: day placed, failed proofs, day of the last failed proof */
  placedDay: number
  fails: number
  firstFailDay: number
  lastFailDay: number
  /** collusion: its provider holds no copy of its own and answers from a partner's */
  hollow: boolean
}

/** One audit as seen by an observer (the predictor's evaluation): the state that morning and the outcome. */
export interface AuditObservation {
  day: number
  at: number
  provider: Provider
  /** the provider's reputation before the day's audits */
  reputation: Reputation
  replica: { placedDay: number, fails: number, firstFailDay: number, lastFailDay: number, consecutiveFaults: number }
  /** the deal's record as the predictor reads it */
  deal: DealHistory
  outcome: 'pass' | 'fail' | 'miss'
}

export interface SimHooks {
  onAudit?: (o: AuditObservation) => void
}

interface Piece {
  index: number
  gib: number
  arrival: number
  replicas: ReplicaState[]
  lost: boolean
}

export function simulate (config: SimConfig, strategy: Strategy, hooks: SimHooks = {}): SimResult {
  const { seed, days, replicas } = config
  const capacity = Math.ceil(config.capacityFactor * config.pieces * replicas / config.providers)
  const providers = makeProviders(seed, config.providers, days, capacity, config.mix, config.world)
  const held = new Array<number>(providers.length).fill(0)
  const rng = new Rng(seed * 31 + strategy.name.length * 1009 + (strategy.placement === 'random' ? 1 : 2) * 17 + (strategy.policy === DEFAULT_POLICY ? 3 : 5))
  const pieces: Piece[] = Array.from({ length: config.pieces }, (_, i) => ({
    index: i,
    gib: 1 + Math.floor(4 * hashUnit(seed, 10, i)),
    arrival: Math.floor(config.arrivalDays * i / config.pieces),
    replicas: [],
    lost: false
  }))
  const reps: Reputation[] = providers.map(p => emptyReputation(p.id))
  let deals = 0
  const result: SimResult = {
    seed,
    strategy: strategy.name,
    piecesLost: 0,
    repairs: 0,
    gibMoved: 0,
    repairsFrom: { honest: 0, flaky: 0, degrading: 0, 'sudden-death': 0, dropping: 0 },
    repairsBy: { faults: 0, prediction: 0 },
    postponed: 0,
    brier: { audits: 0, model: 0, provider: 0, previous: 0, posteriorMean: 0, rawPassRate: 0 },
    atRisk: [],
    lost: [],
    hiddenLoss: 0,
    hollowDays: 0
  }
  const coalition = new Coalition(coalitionOf(seed, providers.length, config.coalition ?? 0), config.distinct !== true)
  const params = DEFAULT_PARAMS

  const candidatesFor = (day: number): Candidate[] => {
    const out: Candidate[] = []
    for (const p of providers) {
      // a deal with a dead or unreachable provider fails at once: the client moves on
      if (!isReachable(p, day) || held[p.index] >= p.capacity) continue
      out.push({ id: p.id, host: p.id, pricePerGiBDay: p.pricePerGiBDay, freeCapacity: BigInt(p.capacity - held[p.index]), reputation: reps[p.index] })
    }
    return out
  }
  const byId = new Map(providers.map(p => [p.id, p]))

  const choose = (day: number, count: number, holding: Set<number>, summaries: Map<string, ReputationSummary>, probationSlots = 0): Provider[] => {
    const candidates = candidatesFor(day).filter(c => !holding.has((byId.get(c.id) as Provider).index))
    if (strategy.placement === 'reputation') {
      const tie = new Map(candidates.map(c => [c.id, rng.next()]))
      const placement = place(candidates, { replicas: count, pieceSize: 1n, summaries, at: day * DAY_MS, tieBreak: c => tie.get(c.id) ?? 0, params, probationSlots })
      return placement.chosen.map(c => byId.get(c.candidate.id) as Provider)
    }
    const out: Provider[] = []
    const pool = [...candidates]
    while (out.length < count && pool.length > 0) out.push(byId.get(pool.splice(rng.int(pool.length), 1)[0].id) as Provider)
    return out
  }

  const addReplica = (piece: Piece, p: Provider, day: number): void => {
    const deal = deals++
    const r: ReplicaState = { view: { deal: String(deal), provider: p.id, host: p.id, consecutiveFaults: 0 }, provider: p.index, deal, consecutiveFaults: 0, lostFraction: 0, placedDay: day, fails: 0, firstFailDay: -1, lastFailDay: -1, hollow: false }
    piece.replicas.push(r)
    coalition.placed(piece.replicas, r)
    held[p.index]++
  }
  const dropReplica = (piece: Piece, r: ReplicaState, day: number): void => {
    coalition.leaving(piece.replicas, r, isReachable(providers[r.provider], day))
    piece.replicas.splice(piece.replicas.indexOf(r), 1)
    held[r.provider]--
  }
  const intact = (r: ReplicaState, day: number): boolean => !r.hollow && r.lostFraction === 0 && !isDead(providers[r.provider], day)
  /** A replica's audit: a hollow one answers from its keeper's copy, or not at all. */
  const auditOf = (piece: Piece, r: ReplicaState, day: number): 'pass' | 'fail' | 'miss' => {
    const p = providers[r.provider]
    if (!r.hollow) return audit(seed, p, piece.index, day, r.lostFraction)
    const keeper = coalition.keeperOf(piece.replicas, r)
    if (keeper === undefined || !isReachable(providers[keeper.provider], day)) return 'miss'
    return audit(seed, p, piece.index, day, keeper.lostFraction)
  }

  for (let day = 0; day < days; day++) {
    const at = day * DAY_MS + DAY_MS / 2
    // what the client believes this morning: one summary per provider, read by placement, repair and the Brier score
    const summaries = new Map<string, ReputationSummary>()
    for (const [i, p] of providers.entries()) summaries.set(p.id, summarize(reps[i], params, at))

    // each predictor's forecast for the day, per provider, from the morning's state
    const morning = providers.map((_, i) => {
      const f = features(reps[i], params, at)
      return { features: f, model: predictFrom(f).pass, previous: previousPredictor(reps[i], params, at), mean: posteriorMean(reps[i], params, at), raw: rawPassRate(reps[i]) }
    })
    // the day's audits of every replica placed before today, counted per provider
    const tallies: Tally[] = providers.map(() => ({ at, pass: 0, fail: 0, miss: 0, latencyMs: 0 }))
    for (const piece of pieces) {
      if (piece.lost) continue
      for (const r of piece.replicas) {
        const p = providers[r.provider]
        if (r.lostFraction === 0 && !r.hollow) {
          const f = corruption(seed, p, piece.index, day)
          if (f !== undefined) r.lostFraction = f
        }
        const outcome = auditOf(piece, r, day)
        if (hooks.onAudit !== undefined) {
          const deal: DealHistory = r.fails === 0 ? { fails: 0 } : { fails: r.fails, firstFailAt: r.firstFailDay * DAY_MS + DAY_MS / 2 }
          hooks.onAudit({ day, at, provider: p, reputation: reps[r.provider], replica: { placedDay: r.placedDay, fails: r.fails, firstFailDay: r.firstFailDay, lastFailDay: r.lastFailDay, consecutiveFaults: r.consecutiveFaults }, deal, outcome })
        }
        if (outcome === 'fail') { if (r.fails === 0) r.firstFailDay = day; r.fails++; r.lastFailDay = day }
        r.consecutiveFaults = outcome === 'pass' ? 0 : r.consecutiveFaults + 1
        r.view.consecutiveFaults = r.consecutiveFaults
        const m = morning[r.provider]
        const y = outcome === 'pass' ? 1 : 0
        const own = r.fails === 0 ? m.model : predictFrom({ ...m.features, ...dealFeatures({ fails: r.fails, firstFailAt: r.firstFailDay * DAY_MS + DAY_MS / 2 }, at, params) }).pass
        result.brier.model += (own - y) ** 2
        result.brier.provider += (m.model - y) ** 2
        result.brier.previous += (m.previous - y) ** 2
        result.brier.posteriorMean += (m.mean - y) ** 2
        result.brier.rawPassRate += (m.raw - y) ** 2
        result.brier.audits++
        const tally = tallies[r.provider]
        tally[outcome]++
        if (outcome !== 'miss') tally.latencyMs = (tally.latencyMs ?? 0) + latencyMs(seed, p, piece.index, day)
      }
    }
    for (const [i, tally] of tallies.entries()) {
      if (tally.pass + tally.fail + tally.miss === 0) continue
      if (tally.pass + tally.fail > 0) tally.latencyMs = (tally.latencyMs ?? 0) / (tally.pass + tally.fail)
      reps[i] = updateTally(reps[i], tally, params)
    }
    // the evening: summaries after the day's audits drive repair and placement
    for (const [i, p] of providers.entries()) summaries.set(p.id, summarize(reps[i], params, at))

    for (const piece of pieces) {
      if (piece.lost || piece.replicas.length === 0) continue
      if (!piece.replicas.some(r => intact(r, day))) {
        piece.lost = true
        result.piecesLost++
        for (const r of [...piece.replicas]) dropReplica(piece, r, day)
        continue
      }
      // the policy's own decision, replica by replica; a plan (with targets) only when one needs repair
      if (!piece.replicas.some(r => decide(r.view, reps[r.provider], strategy.policy, params, at, (summaries.get(r.view.provider) as ReputationSummary).predicted).repair)) continue
      const views = piece.replicas.map(r => r.view)
      const reputationOf = (id: string): Reputation => reps[(byId.get(id) as Provider).index]
      const plans = planRepairs(views, reputationOf, strategy.placement === 'reputation' ? candidatesFor(day) : [], { policy: strategy.policy, params, at, summaries })
      for (const plan of plans) {
        const r = piece.replicas.find(x => String(x.deal) === plan.replica.deal) as ReplicaState
        // the copy comes from any replica that verifies today: healthy ones first, then the one being replaced
        const source = piece.replicas.find(x => intact(x, day) && isReachable(providers[x.provider], day))
        if (source === undefined) { result.postponed++; continue }
        let target: Provider | undefined
        if (strategy.placement === 'reputation') {
          target = plan.target === undefined ? undefined : byId.get(plan.target.candidate.id)
        } else {
          target = choose(day, 1, new Set(piece.replicas.map(x => x.provider)), summaries)[0]
        }
        if (target === undefined || held[target.index] >= target.capacity) { result.postponed++; continue }
        result.repairsFrom[providers[r.provider].behaviour]++
        if (plan.reason.includes('in a row')) result.repairsBy.faults++
        else result.repairsBy.prediction++
        dropReplica(piece, r, day)
        addReplica(piece, target, day)
        result.repairs++
        result.gibMoved += piece.gib
      }
    }

    // today's arrivals, placed after the audits so they start being audited tomorrow
    for (const piece of pieces) {
      if (piece.arrival !== day) continue
      // new pieces may explore; repairs go to proven providers only
      for (const p of choose(day, replicas, new Set(), summaries, strategy.probationSlots)) addReplica(piece, p, day)
    }

    let atRisk = 0
    for (const piece of pieces) {
      if (piece.lost || piece.replicas.length === 0) continue
      let good = 0
      let believed = 0
      for (const r of piece.replicas) {
        if (intact(r, day)) good++
        if (r.consecutiveFaults === 0) believed++
        if (r.hollow) result.hollowDays++
      }
      if (good < 2) atRisk++
      if (good < believed) result.hiddenLoss++
    }
    result.atRisk.push(atRisk)
    result.lost.push(result.piecesLost)
  }
  const n = Math.max(1, result.brier.audits)
  for (const k of ['model', 'provider', 'previous', 'posteriorMean', 'rawPassRate'] as const) result.brier[k] /= n
  return result
}
