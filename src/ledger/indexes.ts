/**
 * What each entry kind changes in the indexes. Pure functions of (current
 * value, entry), so the LevelDB ledger applies them inside the entry's batch
 * and verification can replay them.
 */
import { CID } from 'multiformats/cid'
import { transition } from '../deal/state.js'
import type { DealState } from '../deal/interface.js'
import type { Balance, DealRecord, EntryKind, LedgerEntry, ProviderCounters } from './interface.js'

/** Kinds that move a deal to a state. */
export const KIND_STATE: Partial<Record<EntryKind, DealState>> = {
  'deal-proposed': 'proposed',
  'deal-accepted': 'accepted',
  'deal-rejected': 'rejected',
  'transfer-started': 'transferring',
  'deal-active': 'active',
  'deal-expired': 'expired',
  'deal-terminated': 'terminated',
  'deal-failed': 'failed'
}

/** Kinds that concern one deal and must name it in `deal`. */
const DEAL_KINDS = new Set<EntryKind>([...Object.keys(KIND_STATE) as EntryKind[], 'piece-stored', 'challenge-issued', 'proof-passed', 'proof-failed', 'proof-missed', 'payment-accrued', 'collateral-slashed', 'deal-repaired'])

export function dealOf (kind: EntryKind, fields: Record<string, unknown>): CID | undefined {
  if (!DEAL_KINDS.has(kind)) return undefined
  const id = CID.asCID(fields.deal) ?? (typeof fields.deal === 'string' ? parseOrUndefined(fields.deal) : undefined)
  if (id === undefined || id === null) throw new TypeError(`a ${kind} entry needs the deal id (a CID) in field "deal"`)
  return id
}

function parseOrUndefined (text: string): CID | undefined {
  try { return CID.parse(text) } catch { return undefined }
}

/** The deal record after `entry`, or undefined when the entry does not change it. */
export function nextDeal (current: DealRecord | undefined, entry: LedgerEntry): DealRecord | undefined {
  const { kind, fields } = entry
  const state = KIND_STATE[kind]
  const isProof = kind === 'proof-passed' || kind === 'proof-failed' || kind === 'proof-missed'
  if (state === undefined && !isProof) return undefined
  if (current === undefined && state === undefined) {
    throw new TypeError(`a ${kind} entry names deal ${String(fields.deal)}, which is not in the ledger`)
  }
  const next: DealRecord = current === undefined
    ? { state: transition(undefined, state as DealState), seq: entry.seq, at: entry.at, passed: 0, failed: 0, missed: 0, consecutiveFaults: 0 }
    : { ...current, state: state === undefined ? current.state : transition(current.state, state), seq: entry.seq, at: entry.at }
  for (const key of ['client', 'provider'] as const) {
    if (typeof fields[key] === 'string') next[key] = fields[key] as string
  }
  for (const key of ['pieceCid', 'payloadCid'] as const) {
    const c = CID.asCID(fields[key])
    if (c !== null) next[key] = c
  }
  if (typeof fields.pieceSize === 'bigint' || typeof fields.pieceSize === 'number') next.pieceSize = BigInt(fields.pieceSize)
  if (kind === 'proof-passed') { next.passed++; next.consecutiveFaults = 0 }
  if (kind === 'proof-failed') { next.failed++; next.consecutiveFaults++ }
  if (kind === 'proof-missed') { next.missed++; next.consecutiveFaults++ }
  return next
}

export function zeroCounters (): ProviderCounters {
  return { challenges: 0, passed: 0, failed: 0, missed: 0 }
}

/** The provider whose counters the entry changes, with the new counters. */
export function nextCounters (current: ProviderCounters | undefined, entry: LedgerEntry): ProviderCounters | undefined {
  const field = ({ 'challenge-issued': 'challenges', 'proof-passed': 'passed', 'proof-failed': 'failed', 'proof-missed': 'missed' } as const)[entry.kind as 'proof-passed']
  if (field === undefined || typeof entry.fields.provider !== 'string') return undefined
  const next = { ...(current ?? zeroCounters()) }
  next[field]++
  return next
}

export function zeroBalance (counterparty: string): Balance {
  return { counterparty, earned: 0n, paid: 0n, slashedToUs: 0n, slashedFromUs: 0n, outstanding: 0n }
}

/** A balance as decoded from DAG-CBOR, where small amounts come back as numbers. */
export function balanceFrom (b: Balance): Balance {
  return { counterparty: b.counterparty, earned: BigInt(b.earned), paid: BigInt(b.paid), slashedToUs: BigInt(b.slashedToUs), slashedFromUs: BigInt(b.slashedFromUs), outstanding: BigInt(b.outstanding) }
}

/** The counterparty of a money entry, seen from `self`; undefined for other kinds. */
export function counterpartyOf (entry: Pick<LedgerEntry, 'kind' | 'fields'>, self: string): string | undefined {
  if (entry.kind !== 'payment-accrued' && entry.kind !== 'collateral-slashed') return undefined
  const { from, to, amount } = entry.fields
  if (typeof from !== 'string' || typeof to !== 'string' || (typeof amount !== 'bigint' && typeof amount !== 'number') || amount < 0) {
    throw new TypeError(`a ${entry.kind} entry needs from and to (did:key) and a non-negative amount`)
  }
  if (from === self) return to
  if (to === self) return from
  throw new TypeError(`a ${entry.kind} entry must involve this node (${self}); it is from ${from} to ${to}`)
}

/** SPEC §5 accounting: payment-accrued moves `amount` from payer to payee; collateral-slashed from the provider's collateral to the client. */
export function nextBalance (current: Balance | undefined, entry: LedgerEntry, self: string): Balance | undefined {
  const counterparty = counterpartyOf(entry, self)
  if (counterparty === undefined) return undefined
  const amount = BigInt(entry.fields.amount as bigint | number)
  const incoming = entry.fields.to === self
  const b = current === undefined ? zeroBalance(counterparty) : balanceFrom(current)
  if (entry.kind === 'payment-accrued') {
    if (incoming) b.earned += amount
    else b.paid += amount
  } else {
    if (incoming) b.slashedToUs += amount
    else b.slashedFromUs += amount
  }
  b.outstanding = b.earned + b.slashedToUs - b.paid - b.slashedFromUs
  return b
}
