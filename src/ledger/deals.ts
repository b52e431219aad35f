/**
 * The deals view: what the log says of each deal, folded from its entries in
 * one place, for every reader that needs more than the deal's index record
 * (`deals list|show`, audits and watch, repairs, retrieval, the provider's
 * uploads, proofs and admin list). The index record (`ledger.deal`) stays the
 * source of the deal's state and counters; this adds the signed proposal, the
 * endpoint and the entries that carry them.
 */
import type { CID } from 'multiformats/cid'
import type { Proposal } from '../protocol/interface.js'
import { parseDealId, proposalFrom } from '../protocol/proposal.js'
import type { DealRecord, EntryKind, EntryOf, Ledger, LedgerEntry, SignedRecord } from './interface.js'

export interface DealView {
  id: CID
  /** the deal's index record: state, counters, terms a provider schedules by */
  record: DealRecord
  /** the client's `deal-proposed` entry (a client's ledger) */
  proposed?: EntryOf<'deal-proposed'>
  /** the proposal as signed, from `deal-proposed` (client) or `deal-accepted` (provider) */
  signedProposal?: SignedRecord
  /** the provider's URL last recorded for the deal (`deal-active`, else `deal-proposed`) */
  endpoint?: string
  /** the first refusal or failure recorded (`deal-rejected`, `deal-failed`) */
  failure?: EntryOf<'deal-rejected' | 'deal-failed'>
  /** every entry of the deal, oldest first */
  entries: LedgerEntry[]
}

/** The deal as the log tells it, or undefined when the ledger has no such deal. */
export async function dealView (ledger: Pick<Ledger, 'deal' | 'log'>, id: CID | string): Promise<DealView | undefined> {
  const dealId = parseDealId(id)
  const record = await ledger.deal(dealId)
  if (record === undefined) return undefined
  const view: DealView = { id: dealId, record, entries: [] }
  // newest first: a later (older) entry overwrites what it also holds, except the endpoint, newest wins
  for await (const entry of ledger.log({ deal: dealId })) {
    view.entries.push(entry)
    if (entry.kind === 'deal-proposed' || entry.kind === 'deal-active') view.endpoint ??= entry.fields.endpoint
    if (entry.kind === 'deal-proposed') view.proposed = entry
    if ((entry.kind === 'deal-proposed' || entry.kind === 'deal-accepted') && entry.fields.proposal !== undefined) view.signedProposal = entry.fields.proposal
    if (entry.kind === 'deal-rejected' || entry.kind === 'deal-failed') view.failure = entry
  }
  view.entries.reverse()
  return view
}

/** The deal's proposal, parsed from its signed copy (ERR_INVALID_MESSAGE when it is not one); undefined when none is recorded. */
export function proposalOf (view: Pick<DealView, 'signedProposal'>): Proposal | undefined {
  return view.signedProposal === undefined ? undefined : proposalFrom(view.signedProposal.payload)
}

/** The ids of the deals that have an entry of `kind`, newest first. */
export async function dealIdsWith (ledger: Pick<Ledger, 'log'>, kind: EntryKind): Promise<CID[]> {
  const seen = new Map<string, CID>()
  for await (const entry of ledger.log({ kind })) {
    const id = (entry.fields as { deal?: CID }).deal
    if (id === undefined) continue // a data set's entry
    if (!seen.has(id.toString())) seen.set(id.toString(), id)
  }
  return [...seen.values()]
}

/** The views of the deals that have an entry of `kind`, newest first. */
export async function * dealViews (ledger: Pick<Ledger, 'deal' | 'log'>, kind: EntryKind): AsyncIterable<DealView> {
  for (const id of await dealIdsWith(ledger, kind)) {
    const view = await dealView(ledger, id)
    if (view !== undefined) yield view
  }
}
