/**
 * Predictive repair (README "Reputation, placement and repair"): re-replicate a piece before it is lost, when a
 * holder has faulted twice in a row (one fewer than the three that fail a deal,
 * docs/ledger.md) or its predicted pass probability falls below a threshold. The
 * same pure decisions drive `cairn watch` and the simulator.
 */
import type { ModelParams, Reputation, ReputationSummary } from './interface.js'
import { DEFAULT_PARAMS, emptyReputation } from './model.js'
import { predictAudit, type DealHistory } from './predictor.js'
import { hostOf, place, type Candidate, type Choice, type PlacementOptions } from './placement.js'

export interface RepairPolicy {
  /** faults in a row on the replica's deal that trigger a repair */
  consecutiveFaults: number
  /** a predicted pass probability below this triggers a repair (−Infinity: never) */
  threshold: number
  /**
   * audits of the provider before its prediction is acted on: with the
   * uniform prior a provider with one pass is predicted at 2/3, which says
   * nothing about it; until then only faults in a row count
   */
  minAudits: number
}

export const DEFAULT_POLICY: Readonly<RepairPolicy> = Object.freeze({ consecutiveFaults: 2, threshold: 0.7, minAudits: 10 })

/** The reactive rule the simulator compares with: repair only once the deal has failed (docs/ledger.md). */
export const AFTER_FAILURE_POLICY: Readonly<RepairPolicy> = Object.freeze({ consecutiveFaults: 3, threshold: -Infinity, minAudits: 0 })

/** One replica of a piece: a deal with a provider. */
export interface Replica {
  deal: string
  provider: string
  host?: string
  /** faults on this deal since its last pass */
  consecutiveFaults: number
  /**
   * this deal's own failed proofs, when known: lost leaves do not come back,
   * so a deal that failed once keeps failing at its own rate, whatever its
   * provider's average (src/reputation/predictor.ts)
   */
  history?: DealHistory
}

export interface RepairDecision {
  repair: boolean
  reason: string
  predicted: number
}

/**
 * Whether to replace a replica: after faults in a row, or when the predictor
 * says its next audit passes with less than the threshold — for this deal,
 * when its own history is known, else for any deal of its provider
 * (`predicted`, e.g. from a ranking summary, stands in for the latter).
 */
export function decide (replica: Replica, reputation: Reputation | undefined, policy: RepairPolicy = DEFAULT_POLICY, p: ModelParams = DEFAULT_PARAMS, at?: number, predicted?: number): RepairDecision {
  const dealKnown = replica.history !== undefined && replica.history.fails > 0
  const pass = dealKnown || predicted === undefined ? predictAudit(reputation ?? emptyReputation(replica.provider), p, at, replica.history).pass : predicted
  if (replica.consecutiveFaults >= policy.consecutiveFaults) {
    return { repair: true, predicted: pass, reason: `deal ${replica.deal} faulted ${replica.consecutiveFaults} times in a row (repair at ${policy.consecutiveFaults})` }
  }
  // the prediction is only acted on once the provider has been audited enough; a new one is judged by its faults
  const audits = reputation === undefined ? 0 : reputation.passes + reputation.failures + reputation.misses
  if (audits > 0 && audits >= policy.minAudits && pass < policy.threshold) {
    const whose = dealKnown ? `deal ${replica.deal} (${replica.history?.fails ?? 0} failed proofs) of provider ${replica.provider}` : `provider ${replica.provider}`
    return { repair: true, predicted: pass, reason: `${whose} is predicted to pass its next audit with probability ${pass.toFixed(3)}, below ${policy.threshold}` }
  }
  return { repair: false, predicted: pass, reason: 'healthy' }
}

export interface RepairPlan {
  /** the replica to replace */
  replica: Replica
  reason: string
  /** replicas to copy from, best first (healthy ones only); empty: nothing left to repair from */
  sources: Replica[]
  /** where the new replica goes; undefined when no provider qualifies */
  target?: Choice
  /** why no target was found */
  noTarget?: string
}

/**
 * Decisions for every replica of one piece: which to replace, from which
 * healthy replicas, onto which provider (the best by score not already
 * holding the piece, on a host of its own).
 */
export function planRepairs (replicas: readonly Replica[], reputationOf: (provider: string) => Reputation | undefined, candidates: readonly Candidate[], options: {
  policy?: RepairPolicy
  params?: ModelParams
  at?: number
  placement?: Omit<PlacementOptions, 'replicas' | 'exclude' | 'excludeHosts'>
  summaries?: ReadonlyMap<string, ReputationSummary>
} = {}): RepairPlan[] {
  const policy = options.policy ?? DEFAULT_POLICY
  const p = options.params ?? DEFAULT_PARAMS
  const decisions = replicas.map(r => ({ replica: r, decision: decide(r, reputationOf(r.provider), policy, p, options.at, options.summaries?.get(r.provider)?.predicted) }))
  const bad = decisions.filter(d => d.decision.repair)
  if (bad.length === 0) return []
  const healthy = decisions.filter(d => !d.decision.repair).sort((a, b) => b.decision.predicted - a.decision.predicted).map(d => d.replica)
  const exclude = new Map<string, string>()
  const hosts = new Set<string>()
  for (const r of replicas) {
    exclude.set(r.provider, 'holds the piece already')
    const c = candidates.find(c => c.id === r.provider)
    // a host that is being replaced may be reused; a healthy replica's host may not
    if (!bad.some(b => b.replica === r)) hosts.add(r.host ?? (c === undefined ? r.provider : hostOf(c)))
  }
  const plans: RepairPlan[] = []
  for (const { replica, decision } of bad) {
    const placement = place(candidates, { ...options.placement, params: p, at: options.at, summaries: options.summaries, replicas: 1, exclude, excludeHosts: hosts })
    const plan: RepairPlan = { replica, reason: decision.reason, sources: healthy }
    const target = placement.chosen[0]
    if (target === undefined) {
      plan.noTarget = placement.skipped.length === 0 ? 'no providers known' : `no provider qualifies: ${placement.skipped.map(s => `${s.candidate.id} ${s.reason}`).join('; ')}`
    } else {
      plan.target = target
      exclude.set(target.candidate.id, 'chosen for another replica of the piece')
      hosts.add(hostOf(target.candidate))
    }
    plans.push(plan)
  }
  return plans
}
