/**
 * The money of proofs (docs/ledger.md, after Filecoin PDP payments), kept in the
 * client's ledger:
 *
 *   - a proven period accrues `payment-accrued` from the client to the
 *     provider of pricePerGiBDay × GiB × period, where GiB is the padded piece
 *     size over 2^30 and period is the proving period in days; the product is
 *     computed in base units as one integer division, rounded down (floor), so
 *     no period is ever paid more than its exact price;
 *   - a failed or missed period accrues nothing and records
 *     `collateral-slashed` from the provider to the client of the fault fee,
 *     twice the period's price, capped at what is left of the provider
 *     collateral the deal pledged (the entry carries both the fee and the
 *     amount taken);
 *   - after 3 consecutive faults the deal is `deal-failed`.
 *
 * A period is floor((t − start) / provingPeriod) and is settled at most once:
 * the proof result, its settlement and the per-deal audit state (last audited
 * period, last settled period, collateral slashed so far) are written in one
 * ledger batch, so a restart never counts a period twice and no period is
 * proven without being settled.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import type { Proposal } from '../protocol/interface.js'
import { faultFee, periodPayment } from '../protocol/rules.js'
import { CairnError } from '../errors.js'
import type { AppendItem, EntryFields, EntryKind, ExtraOp, Ledger, LedgerEntry } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'

/** docs/ledger.md: this many faults in a row fail a deal. */
export const MAX_CONSECUTIVE_FAULTS = 3

const STATE_PREFIX = 'audits!'

export type ProofOutcome = 'passed' | 'failed' | 'missed'

/** Per-deal audit progress, kept beside the ledger's indexes. */
export interface AuditState {
  /** last period whose proof result is recorded (−1: none) */
  audited: number
  /** last period whose payment or fault fee is recorded (−1: none) */
  settled: number
  /** the result of `audited`, kept until it is settled */
  outcome?: ProofOutcome
  /** provider collateral taken so far, base units */
  slashed: bigint
}

export interface AccountingContext {
  ledger: Ledger
  db: Database
}

/** What accounting needs of a deal: its id, parties and terms. */
export interface DealTermsView {
  id: CID
  provider: string
  proposal: Proposal
}

const locks = new Map<string, Promise<unknown>>()

/**
 * Runs `fn` after every earlier call for the same deal has finished: reading
 * the audit state and appending what depends on it must not interleave with
 * another audit of the same deal in this process.
 */
export async function serialByDeal<T> (dealId: CID | string, fn: () => Promise<T>): Promise<T> {
  const key = dealId.toString()
  const before = locks.get(key) ?? Promise.resolve()
  const run = before.then(fn, fn)
  const tail = run.catch(() => {})
  locks.set(key, tail)
  try {
    return await run
  } finally {
    if (locks.get(key) === tail) locks.delete(key)
  }
}

export function stateKey (dealId: CID | string): string {
  return STATE_PREFIX + dealId.toString()
}

export async function auditState (db: Database, dealId: CID | string): Promise<AuditState> {
  const bytes = await db.get(stateKey(dealId))
  if (bytes === undefined) return { audited: -1, settled: -1, slashed: 0n }
  const s = dagCbor.decode(bytes) as AuditState
  return { audited: Number(s.audited), settled: Number(s.settled), outcome: s.outcome, slashed: BigInt(s.slashed) }
}

export function stateOp (dealId: CID | string, state: AuditState): ExtraOp {
  const value: Record<string, unknown> = { audited: state.audited, settled: state.settled, slashed: state.slashed }
  if (state.outcome !== undefined) value.outcome = state.outcome
  return { type: 'put', key: stateKey(dealId), value: dagCbor.encode(value) }
}

/** The proving period (0, 1, …) that unix second `t` falls in; −1 before the deal starts. */
export function periodOf (proposal: Pick<Proposal, 'start' | 'provingPeriod'>, t: number): number {
  if (t < proposal.start) return -1
  return Math.floor((t - proposal.start) / proposal.provingPeriod)
}

/** Whole proving periods in the deal: only these are audited and paid. */
export function periodCount (proposal: Pick<Proposal, 'start' | 'end' | 'provingPeriod'>): number {
  return Math.max(0, Math.floor((proposal.end - proposal.start) / proposal.provingPeriod))
}

/**
 * Records a proof result for `period` and, when it counts, settles the period
 * in the same batch: the result, its payment or fault fee, `deal-failed`
 * after MAX_CONSECUTIVE_FAULTS faults in a row and the deal's audit state
 * commit together or not at all, so no period is ever proven but unpaid.
 * A period already audited keeps its first result for accounting; the later
 * result is still recorded (it is evidence) but settles nothing.
 */
export async function recordResult (ctx: AccountingContext, deal: DealTermsView, period: number, outcome: ProofOutcome, fields: EntryFields): Promise<{ entry: LedgerEntry, counts: boolean, settlement?: Settlement }> {
  // a result an older version recorded without settling it is settled first
  await settle(ctx, deal)
  const state = await auditState(ctx.db, deal.id)
  // only the deal's whole periods are paid or charged: none before its start, none past its end
  const counts = period >= 0 && period < periodCount(deal.proposal) && period > state.audited
  const kind: EntryKind = outcome === 'passed' ? 'proof-passed' : outcome === 'failed' ? 'proof-failed' : 'proof-missed'
  const result: AppendItem = { kind, fields: { deal: deal.id, provider: deal.provider, period, ...fields } }
  if (!counts) {
    const [entry] = await ctx.ledger.appendAll([result])
    return { entry: entry as LedgerEntry, counts }
  }
  const record = await ctx.ledger.deal(deal.id)
  const faults = outcome === 'passed' ? 0 : (record?.consecutiveFaults ?? 0) + 1
  const { items, settlement } = settlementOf(ctx.ledger.did, deal, { ...state, audited: period, outcome }, record?.state === 'active' ? faults : 0)
  const [entry] = await ctx.ledger.appendAll([result, ...items])
  return { entry: entry as LedgerEntry, counts, settlement }
}

export interface Settlement {
  kind: 'payment-accrued' | 'collateral-slashed'
  period: number
  amount: bigint
  /** the fault fee owed before the collateral cap (faults only) */
  fee?: bigint
  /** the deal failed with this settlement (3 consecutive faults) */
  dealFailed: boolean
}

/** Amounts a ledger entry can hold (DAG-CBOR integers are 64-bit). */
const U64_MAX = (1n << 64n) - 1n

/**
 * The entries that settle `state.audited` (its payment, or its fault fee and
 * maybe `deal-failed` when `faults` reach MAX_CONSECUTIVE_FAULTS), the last
 * carrying the deal's new audit state. ERR_AMOUNT_TOO_LARGE for a deal made
 * before amounts were bounded whose payment cannot be recorded.
 */
function settlementOf (self: string, deal: DealTermsView, state: AuditState, faults: number): { items: AppendItem[], settlement: Settlement } {
  const period = state.audited
  const p = deal.proposal
  const items: AppendItem[] = []
  let settlement: Settlement
  let slashed = state.slashed
  if (state.outcome === 'passed') {
    const amount = periodPayment(p)
    tooLarge(deal, amount)
    items.push({ kind: 'payment-accrued', fields: { deal: deal.id, from: self, to: deal.provider, amount, period } })
    settlement = { kind: 'payment-accrued', period, amount, dealFailed: false }
  } else {
    const fee = faultFee(p)
    const left = p.providerCollateral > state.slashed ? p.providerCollateral - state.slashed : 0n
    const amount = fee < left ? fee : left
    tooLarge(deal, fee)
    items.push({ kind: 'collateral-slashed', fields: { deal: deal.id, from: deal.provider, to: self, amount, fee, period, reason: state.outcome ?? 'failed' } })
    slashed += amount
    settlement = { kind: 'collateral-slashed', period, amount, fee, dealFailed: faults >= MAX_CONSECUTIVE_FAULTS }
    if (settlement.dealFailed) {
      items.push({
        kind: 'deal-failed',
        fields: {
          deal: deal.id,
          provider: deal.provider,
          code: 'ERR_TOO_MANY_FAULTS',
          message: `${faults} consecutive proving periods failed or missed (a deal fails at ${MAX_CONSECUTIVE_FAULTS})`
        }
      })
    }
  }
  const last = items[items.length - 1] as AppendItem
  last.extra = [stateOp(deal.id, { audited: period, settled: period, slashed })]
  return { items, settlement }
}

function tooLarge (deal: DealTermsView, amount: bigint): void {
  if (amount > U64_MAX) {
    throw new CairnError('ERR_AMOUNT_TOO_LARGE', `deal ${deal.id.toString()} owes ${amount} base units for one period, more than a ledger entry holds; it was made before deal amounts were bounded`)
  }
}

/**
 * Settles the last audited period of a deal if it is not settled yet (a
 * result recorded by an older version, which settled in a second step).
 */
export async function settle (ctx: AccountingContext, deal: DealTermsView): Promise<Settlement | undefined> {
  const state = await auditState(ctx.db, deal.id)
  if (state.audited <= state.settled || state.outcome === undefined) return undefined
  const record = await ctx.ledger.deal(deal.id)
  const { items, settlement } = settlementOf(ctx.ledger.did, deal, state, record?.state === 'active' ? record.consecutiveFaults : 0)
  await ctx.ledger.appendAll(items)
  return settlement
}

/**
 * Records `deal-expired` for an active deal whose end has passed (once, in
 * the deal's turn); true when it did. Past its end a deal is neither
 * challenged nor paid.
 */
export async function expireIfEnded (ctx: AccountingContext, deal: DealTermsView, now: number): Promise<boolean> {
  if (now < deal.proposal.end) return false
  return await serialByDeal(deal.id, async () => {
    if ((await ctx.ledger.deal(deal.id))?.state !== 'active') return false
    await ctx.ledger.append('deal-expired', { deal: deal.id, provider: deal.provider, end: deal.proposal.end })
    return true
  })
}
