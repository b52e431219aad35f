/**
 * The money of proofs (SPEC §5, after Filecoin PDP payments), kept in the
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
 * the per-deal audit state (last audited period, last settled period,
 * collateral slashed so far) is written in the same ledger batch as the entry
 * that changes it, so a restart never counts a period twice, and a proof
 * result whose settlement did not commit before a crash is settled on the
 * next run.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import type { Proposal } from '../deal/interface.js'
import { faultFee, periodPayment } from '../deal/rules.js'
import type { EntryFields, EntryKind, ExtraOp, Ledger, LedgerEntry } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'

/** SPEC §5: this many faults in a row fail a deal. */
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
 * Records a proof result for `period` together with the deal's audit state.
 * A period already audited keeps its first result for accounting; the later
 * result is still recorded (it is evidence) but settles nothing.
 */
export async function recordResult (ctx: AccountingContext, deal: DealTermsView, period: number, outcome: ProofOutcome, fields: EntryFields): Promise<{ entry: LedgerEntry, counts: boolean }> {
  const state = await auditState(ctx.db, deal.id)
  // only the deal's whole periods are paid or charged: none before its start, none past its end
  const counts = period >= 0 && period < periodCount(deal.proposal) && period > state.audited
  const kind: EntryKind = outcome === 'passed' ? 'proof-passed' : outcome === 'failed' ? 'proof-failed' : 'proof-missed'
  const next: AuditState = counts ? { ...state, audited: period, outcome } : state
  const entry = await ctx.ledger.append(kind, { deal: deal.id, provider: deal.provider, period, ...fields }, counts ? [stateOp(deal.id, next)] : [])
  return { entry, counts }
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

/**
 * Settles the last audited period of a deal if it is not settled yet: a
 * payment for a pass, a fault fee for a fault, and `deal-failed` after
 * MAX_CONSECUTIVE_FAULTS faults in a row.
 */
export async function settle (ctx: AccountingContext, deal: DealTermsView): Promise<Settlement | undefined> {
  const state = await auditState(ctx.db, deal.id)
  if (state.audited <= state.settled || state.outcome === undefined) return undefined
  const period = state.audited
  const client = ctx.ledger.did
  const p = deal.proposal
  let settlement: Settlement
  if (state.outcome === 'passed') {
    const amount = periodPayment(p)
    await ctx.ledger.append('payment-accrued', { deal: deal.id, from: client, to: deal.provider, amount, period },
      [stateOp(deal.id, { audited: period, settled: period, slashed: state.slashed })])
    settlement = { kind: 'payment-accrued', period, amount, dealFailed: false }
  } else {
    const fee = faultFee(p)
    const left = p.providerCollateral > state.slashed ? p.providerCollateral - state.slashed : 0n
    const amount = fee < left ? fee : left
    await ctx.ledger.append('collateral-slashed', { deal: deal.id, from: deal.provider, to: client, amount, fee, period, reason: state.outcome },
      [stateOp(deal.id, { audited: period, settled: period, slashed: state.slashed + amount })])
    settlement = { kind: 'collateral-slashed', period, amount, fee, dealFailed: false }
    const record = await ctx.ledger.deal(deal.id)
    if (record !== undefined && record.state === 'active' && record.consecutiveFaults >= MAX_CONSECUTIVE_FAULTS) {
      await ctx.ledger.append('deal-failed', {
        deal: deal.id,
        provider: deal.provider,
        code: 'ERR_TOO_MANY_FAULTS',
        message: `${record.consecutiveFaults} consecutive proving periods failed or missed (SPEC §5 fails a deal at ${MAX_CONSECUTIVE_FAULTS})`
      })
      settlement.dealFailed = true
    }
  }
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
