/**
 * The client's repo as plain JSON views (docs/json.md: sizes as numbers of
 * bytes, money as decimal strings, times ISO 8601): its deals, its address
 * book with each provider's reputation, its delegated routers. The commands
 * show them, and src/cli/reads.ts serves them from a running node too.
 */
import { CairnError } from '../errors.js'
import type { Proposal } from '../protocol/interface.js'
import { auditState, periodCount, periodOf } from '../client/accounting.js'
import type { AddressBook, ProviderEntry } from '../client/address-book.js'
import type { DealRecord, EntryOf, Ledger } from '../ledger/interface.js'
import type { ReputationSummary } from '../reputation/interface.js'
import { reputationsFromLedger } from '../reputation/ledger.js'
import { emptyReputation, summarize } from '../reputation/model.js'
import type { Database } from '../repo/repo.js'
import type { RouterBook } from '../routing/routers.js'
import { toJSON } from './output.js'
import { dealView, dealViews, proposalOf } from '../ledger/deals.js'

export interface DealRow {
  id: string
  state: string
  provider: string
  endpoint: string
  root: string
  pieceCid: string
  /** padded bytes */
  pieceSize: number
  passed: number
  failed: number
  missed: number
  proposed: string
  updated: string
  /** active deals: when the next proving period's audit is due (ISO time), or 'now' when the current one is not yet audited */
  nextAudit?: string
}

/** Every deal this client proposed, newest first (the deals view, src/ledger/deals.ts). */
export async function listDeals (ledger: Ledger, db: Database, now = Math.floor(Date.now() / 1000)): Promise<DealRow[]> {
  const rows: DealRow[] = []
  for await (const view of dealViews(ledger, 'deal-proposed')) {
    if (view.proposed === undefined) continue
    const r = row(view.proposed, view.record)
    const proposal = view.record.state === 'active' ? proposalOf(view) : undefined
    if (proposal !== undefined) r.nextAudit = await nextAudit(db, r.id, proposal, now)
    rows.push(r)
  }
  return rows
}

/** README "Client", `deals`: the current period is due now until audited, then the next period's start. */
async function nextAudit (db: Database, id: string, proposal: Proposal, now: number): Promise<string | undefined> {
  const period = periodOf(proposal, now)
  if (period >= periodCount(proposal)) return undefined
  const { audited } = await auditState(db, id)
  if (period >= 0 && audited < period) return 'now'
  const next = proposal.start + (Math.max(period, audited) + 1) * proposal.provingPeriod
  return next + proposal.provingPeriod > proposal.end ? undefined : new Date(next * 1000).toISOString()
}

function row (proposed: EntryOf<'deal-proposed'>, record: DealRecord): DealRow {
  const f = proposed.fields
  return {
    id: f.deal.toString(),
    state: record.state,
    provider: String(f.provider),
    endpoint: f.endpoint ?? '',
    root: String(f.payloadCid),
    pieceCid: String(f.pieceCid),
    pieceSize: Number(f.pieceSize),
    passed: record.passed,
    failed: record.failed,
    missed: record.missed,
    proposed: new Date(proposed.at).toISOString(),
    updated: new Date(record.at).toISOString()
  }
}

export interface DealDetail extends Partial<DealRow> {
  id: string
  state: string
  proposal?: Record<string, unknown>
  error?: { code: unknown, message: unknown }
  entries: Array<{ seq: number, cid: string, at: string, kind: string }>
}

/** `deals show <id>` as JSON (docs/json.md). */
export async function dealDetail (ledger: Ledger, db: Database, value: string): Promise<DealDetail> {
  const view = await dealView(ledger, value)
  if (view === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${value} in this client's ledger`)
  const { id, record, proposed, failure, entries } = view
  const proposal = proposalOf(view)
  const summary: Partial<DealRow> & { id: string, state: string } = proposed === undefined ? { id: id.toString(), state: record.state } : row(proposed, record)
  if (proposed !== undefined && proposal !== undefined && record.state === 'active') {
    summary.nextAudit = await nextAudit(db, id.toString(), proposal, Math.floor(Date.now() / 1000))
  }
  return JSON.parse(toJSON({
    ...summary,
    proposal: proposal === undefined ? undefined : proposalJSON(proposal),
    error: failure === undefined ? undefined : { code: failure.fields.code, message: failure.fields.message },
    entries: entries.map(e => ({ seq: e.seq, cid: e.cid.toString(), at: new Date(e.at).toISOString(), kind: e.kind }))
  })) as DealDetail
}

/** The signed proposal's terms under their signed names (docs/json.md: sizes as numbers of bytes, money as decimal strings, times ISO 8601). */
function proposalJSON (p: Proposal): Record<string, unknown> {
  return {
    pieceCid: p.pieceCid.toString(),
    pieceSize: Number(p.pieceSize),
    payloadCid: p.payloadCid.toString(),
    payloadSize: Number(p.payloadSize),
    client: p.client,
    provider: p.provider,
    label: p.label,
    start: new Date(p.start * 1000).toISOString(),
    end: new Date(p.end * 1000).toISOString(),
    pricePerGiBDay: p.pricePerGiBDay.toString(),
    providerCollateral: p.providerCollateral.toString(),
    clientCollateral: p.clientCollateral.toString(),
    provingPeriod: p.provingPeriod,
    challenges: p.challenges,
    nonce: p.nonce.toString()
  }
}

export interface ProviderRow extends Record<string, unknown> {
  url: string
  did: string
  ask: Record<string, unknown>
  lastSeen: string
  reputation: Record<string, unknown> & { score: number, passes: number, failures: number, misses: number }
}

/** `providers ls` as JSON: the address book with each provider's reputation from this client's own audits (README "Reputation, placement and repair"). */
export async function providerRows (book: AddressBook, ledger: Ledger): Promise<ProviderRow[]> {
  const list = (await book.list()).sort((a, b) => a.url.localeCompare(b.url))
  const reps = await reputationsFromLedger(ledger)
  const rep = (e: ProviderEntry): ReputationSummary => summarize(reps.get(e.did) ?? emptyReputation(e.did))
  const lastSeen = (e: ProviderEntry): number => Math.max(e.lastSeen, rep(e).lastSeen ?? 0)
  return list.map(e => ({ ...entryJSON(e), lastSeen: new Date(lastSeen(e)).toISOString(), reputation: reputationJSON(rep(e)) }) as ProviderRow)
}

export function reputationJSON (r: ReputationSummary): Record<string, unknown> {
  const out: Record<string, unknown> = { score: r.score, predicted: r.predicted, passes: r.passes, failures: r.failures, misses: r.misses, consecutiveFaults: r.consecutiveFaults }
  if (r.latencyMs !== undefined) out.latencyMs = Math.round(r.latencyMs)
  if (r.lastSeen !== undefined) out.lastAudit = new Date(r.lastSeen).toISOString()
  return out
}

export function entryJSON (entry: ProviderEntry): Record<string, unknown> {
  return { url: entry.url, did: entry.did, ask: askJSON(entry.ask.payload), added: new Date(entry.added).toISOString(), lastSeen: new Date(entry.lastSeen).toISOString() }
}

/** An ask as JSON (docs/json.md): sizes as numbers of bytes, money as decimal strings, durations in seconds, its expiry as ISO 8601. */
export function askJSON (ask: ProviderEntry['ask']['payload']): Record<string, unknown> {
  return {
    provider: ask.provider,
    endpoint: ask.endpoint,
    pricePerGiBDay: ask.pricePerGiBDay.toString(),
    collateralPerGiB: ask.collateralPerGiB.toString(),
    minPieceSize: Number(ask.minPieceSize),
    maxPieceSize: Number(ask.maxPieceSize),
    freeCapacity: Number(ask.freeCapacity),
    maxDuration: ask.maxDuration,
    provingPeriod: ask.provingPeriod,
    challenges: ask.challenges,
    seq: ask.seq,
    expiry: new Date(ask.expiry * 1000).toISOString()
  }
}

export interface RouterRow {
  url: string
  /** ISO 8601 */
  added: string
}

/** The configured routers as `routers ls` shows them (docs/json.md). */
export async function routerRows (book: RouterBook): Promise<RouterRow[]> {
  return (await book.list()).map(e => ({ url: e.url, added: new Date(e.added).toISOString() }))
}
