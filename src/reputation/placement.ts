/**
 * Placement (README "Reputation, placement and repair"): `--replicas N` picks N distinct providers on distinct
 * hosts by reputation score, within `--max-price`, and says why each was
 * chosen or passed over.
 *
 * Order: score (the lower credible bound of the pass rate, so a provider with
 * a long clean record beats a new one), then price, then latency, then the
 * caller's tie-break (the simulator passes a seeded random key so providers
 * nobody knows yet are spread evenly), then id.
 */
import type { ModelParams, Reputation, ReputationSummary } from './interface.js'
import { DEFAULT_PARAMS, emptyReputation, summarize } from './model.js'

export interface Candidate {
  /** did:key (or any stable id) */
  id: string
  /** where the provider is reached; its host (host:port) is what must differ between replicas */
  url?: string
  host?: string
  pricePerGiBDay: bigint
  /** free capacity in bytes, when known */
  freeCapacity?: bigint
  reputation?: Reputation
}

export interface PlacementOptions {
  replicas: number
  maxPrice?: bigint
  /** padded piece size; providers without that much free capacity are skipped */
  pieceSize?: bigint
  /** providers (ids) that must not be chosen, e.g. those already holding the piece, with why */
  exclude?: ReadonlyMap<string, string>
  /** hosts already used by other replicas of the piece */
  excludeHosts?: ReadonlySet<string>
  params?: ModelParams
  /** unix ms at which scores are read (forgetting up to then) */
  at?: number
  tieBreak?: (candidate: Candidate) => number
  /** summaries already computed (the simulator computes them once per day) */
  summaries?: ReadonlyMap<string, ReputationSummary>
  /**
   * Exploration: up to this many of the replicas go to providers still on
   * probation (fewer than `probationAudits` audits), least audited first.
   * Without it a provider nobody has tried is never tried (its score stays at
   * the prior's 5th percentile) while known but mediocre ones fill up. 0 by default.
   */
  probationSlots?: number
  probationAudits?: number
}

export interface Choice {
  candidate: Candidate
  summary: ReputationSummary
  rank: number
  reason: string
}

export interface Skipped {
  candidate: Candidate
  reason: string
}

export interface Placement {
  chosen: Choice[]
  skipped: Skipped[]
  /** fewer than `replicas` could be placed */
  short: boolean
}

export function hostOf (c: Candidate): string {
  if (c.host !== undefined) return c.host
  if (c.url !== undefined) {
    try { return new URL(c.url).host } catch {}
  }
  return c.id
}

export function place (candidates: readonly Candidate[], options: PlacementOptions): Placement {
  const { replicas } = options
  if (!Number.isSafeInteger(replicas) || replicas < 1) throw new RangeError(`replicas must be a positive whole number, got ${replicas}`)
  const p = options.params ?? DEFAULT_PARAMS
  const skipped: Skipped[] = []
  const ranked: Array<{ candidate: Candidate, summary: ReputationSummary, tie: number }> = []
  for (const c of candidates) {
    const excluded = options.exclude?.get(c.id)
    if (excluded !== undefined) { skipped.push({ candidate: c, reason: excluded }); continue }
    if (options.maxPrice !== undefined && c.pricePerGiBDay > options.maxPrice) {
      skipped.push({ candidate: c, reason: `asks ${c.pricePerGiBDay} per GiB per day, above --max-price ${options.maxPrice}` })
      continue
    }
    if (options.pieceSize !== undefined && c.freeCapacity !== undefined && c.freeCapacity < options.pieceSize) {
      skipped.push({ candidate: c, reason: `has ${c.freeCapacity} bytes free, the piece needs ${options.pieceSize}` })
      continue
    }
    const summary = options.summaries?.get(c.id) ?? summarize(c.reputation ?? emptyReputation(c.id), p, options.at)
    ranked.push({ candidate: c, summary, tie: options.tieBreak?.(c) ?? 0 })
  }
  ranked.sort((a, b) =>
    b.summary.score - a.summary.score ||
    cmp(a.candidate.pricePerGiBDay, b.candidate.pricePerGiBDay) ||
    (a.summary.latencyMs ?? Infinity) - (b.summary.latencyMs ?? Infinity) ||
    a.tie - b.tie ||
    (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0))
  const hosts = new Set(options.excludeHosts ?? [])
  const chosen: Choice[] = []
  const probationAudits = options.probationAudits ?? 30
  const auditsOf = (s: ReputationSummary): number => s.passes + s.failures + s.misses
  const slots = Math.min(options.probationSlots ?? 0, replicas)
  if (slots > 0) {
    const onProbation = ranked.filter(r => auditsOf(r.summary) < probationAudits)
      .sort((a, b) => auditsOf(a.summary) - auditsOf(b.summary) || cmp(a.candidate.pricePerGiBDay, b.candidate.pricePerGiBDay) || a.tie - b.tie)
    for (const r of onProbation) {
      if (chosen.length === slots) break
      const host = hostOf(r.candidate)
      if (hosts.has(host)) continue
      hosts.add(host)
      chosen.push({ candidate: r.candidate, summary: r.summary, rank: ranked.indexOf(r) + 1, reason: `on probation (${auditsOf(r.summary)} of ${probationAudits} audits): one replica explores a provider not yet known; ${reasonFor(r.candidate, r.summary, ranked.indexOf(r) + 1, options.maxPrice, p.quantile)}` })
    }
  }
  for (const [i, r] of ranked.entries()) {
    if (chosen.some(c => c.candidate === r.candidate)) continue
    const host = hostOf(r.candidate)
    if (hosts.has(host)) { skipped.push({ candidate: r.candidate, reason: `same host ${host} as another replica` }); continue }
    if (chosen.length === replicas) { skipped.push({ candidate: r.candidate, reason: `ranked ${i + 1}; ${replicas} better providers were chosen` }); continue }
    hosts.add(host)
    chosen.push({ candidate: r.candidate, summary: r.summary, rank: i + 1, reason: reasonFor(r.candidate, r.summary, i + 1, options.maxPrice, p.quantile) })
  }
  return { chosen, skipped, short: chosen.length < replicas }
}

function cmp (a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function reasonFor (c: Candidate, s: ReputationSummary, rank: number, maxPrice: bigint | undefined, quantile: number): string {
  const audits = s.passes + s.failures + s.misses
  const record = audits === 0
    ? 'no audits yet (a new provider is ranked by its prior only)'
    : `${s.passes} of ${audits} audits passed, ${s.failures} failed, ${s.misses} missed`
  const price = maxPrice === undefined ? `asks ${c.pricePerGiBDay}` : `asks ${c.pricePerGiBDay} ≤ ${maxPrice}`
  return `rank ${rank}: score ${s.score.toFixed(3)} (${Math.round(quantile * 100)}th percentile of the pass rate), ${record}, predicted pass ${s.predicted.toFixed(3)}, ${price} per GiB per day`
}
