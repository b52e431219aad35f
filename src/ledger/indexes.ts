/**
 * What each entry changes in the indexes. Everything here is a pure function
 * of (current index values, entry): the LevelDB ledger applies the writes
 * inside the entry's own batch, start-up rebuilds them by replaying the chain,
 * and `ledger verify` replays the chain the same way and compares what it
 * derives with what is stored (docs/ledger.md "Indexes").
 *
 * To derive an entry's writes a store first reads what `readsOf` names (the
 * deal record, the provider's counters, the counterparty's balance and the
 * node's stats), then calls `deriveWrites` with those values. Nothing else is
 * read, so any store — LevelDB here, another later — gets the same indexes.
 */
import { CID } from 'multiformats/cid'
import { transition } from '../protocol/state.js'
import type { DealState } from '../protocol/interface.js'
import type { Balance, DataSetLedgerRecord, DealRecord, EntryKind, LedgerEntry, LedgerStats, ProviderCounters } from './interface.js'
import { dataSetDueKey, dataSetKey, dataSetOf, dataSetRecordFrom, dataSetStats, nextDataSet, storedDataSet } from './data-set-index.js'

/** Bumped whenever what the indexes hold changes; a ledger with another version is re-indexed on open. */
export const INDEX_VERSION = 3

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
const DEAL_KINDS = new Set<EntryKind>([...Object.keys(KIND_STATE) as EntryKind[], 'piece-stored', 'challenge-issued', 'proof-passed', 'proof-failed', 'proof-missed', 'proof-answered', 'payment-accrued', 'collateral-slashed', 'deal-repaired'])

/** States whose pieces a provider has promised room for but not yet stored. */
const RESERVING: ReadonlySet<DealState> = new Set(['accepted', 'transferring'])

export function dealOf (kind: EntryKind, fields: Record<string, unknown>): CID | undefined {
  if (!DEAL_KINDS.has(kind)) return undefined
  // a data set's period is paid without a deal (data-set-index.ts)
  if (kind === 'payment-accrued' && fields.deal === undefined && fields.dataSet !== undefined) return undefined
  const id = CID.asCID(fields.deal) ?? (typeof fields.deal === 'string' ? parseOrUndefined(fields.deal) : undefined)
  if (id === undefined || id === null) throw new TypeError(`a ${kind} entry needs the deal id (a CID) in field "deal"`)
  return id
}

function parseOrUndefined (text: string): CID | undefined {
  try { return CID.parse(text) } catch { return undefined }
}

const isInteger = (v: unknown): v is number | bigint => typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v))

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
  for (const key of ['pieceSize', 'payloadSize'] as const) {
    if (isInteger(fields[key])) next[key] = BigInt(fields[key] as number | bigint)
  }
  // the deal's terms the provider's scheduler and proof endpoint work from (deal-accepted carries them)
  for (const key of ['start', 'end', 'uploadBy', 'challenges'] as const) {
    if (typeof fields[key] === 'number' && Number.isSafeInteger(fields[key])) next[key] = fields[key] as number
  }
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

/** A balance as decoded from DAG-CBOR, where amounts come back as numbers or decimal strings. */
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

/** docs/protocol.md "Amounts": payment-accrued moves `amount` from payer to payee; collateral-slashed from the provider's collateral to the client. */
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

export function zeroStats (): LedgerStats {
  return { deals: {}, reserved: 0n, used: 0n, stored: 0n, earned: 0n, proofsAnswered: 0, dataSets: 0 }
}

/**
 * The node's totals as a provider after `entry`: deals it provides by state,
 * padded bytes reserved (accepted, not yet stored) and used (active), payload
 * bytes stored, payments earned, proofs answered. `before`/`after` are the
 * entry's deal record around it (both undefined for other kinds).
 */
export function nextStats (current: LedgerStats, entry: LedgerEntry, before: DealRecord | undefined, after: DealRecord | undefined, self: string): LedgerStats | undefined {
  let changed = false
  const next: LedgerStats = { ...current, deals: { ...current.deals } }
  const count = (record: DealRecord | undefined, sign: 1 | -1): void => {
    if (record === undefined || record.provider !== self) return
    next.deals[record.state] = (next.deals[record.state] ?? 0) + sign
    if (next.deals[record.state] === 0) delete next.deals[record.state]
    const size = BigInt(sign) * (record.pieceSize ?? 0n)
    if (RESERVING.has(record.state)) next.reserved += size
    if (record.state === 'active') {
      next.used += size
      next.stored += BigInt(sign) * (record.payloadSize ?? 0n)
    }
    changed = true
  }
  if (after !== undefined && (before === undefined || before.state !== after.state || before.provider !== after.provider || before.pieceSize !== after.pieceSize || before.payloadSize !== after.payloadSize)) {
    count(before, -1)
    count(after, 1)
  }
  if (entry.kind === 'payment-accrued' && entry.fields.to === self && isInteger(entry.fields.amount)) {
    next.earned += BigInt(entry.fields.amount)
    changed = true
  }
  if (entry.kind === 'proof-answered') {
    next.proofsAnswered++
    changed = true
  }
  return changed ? next : undefined
}

/**
 * The provider's schedule (`due` index): an accepted deal is due at its
 * upload deadline, an active one at its end. Key: zero-padded unix seconds,
 * then the deal id, so the scheduler reads what is due in time order.
 */
export function dueKey (record: DealRecord | undefined, id: string, self: string): string | undefined {
  if (record === undefined || record.provider !== self) return undefined
  if (RESERVING.has(record.state) && record.uploadBy !== undefined) return `${secondsKey(record.uploadBy)}/${id}`
  if (record.state === 'active' && record.end !== undefined) return `${secondsKey(record.end)}/${id}`
  return undefined
}

export function secondsKey (seconds: number): string {
  return String(Math.max(0, seconds)).padStart(12, '0')
}

/** `holders` index: the active deals (of this provider) holding a piece, `<pieceCid>/<dealId>`. */
export function holderKey (record: DealRecord | undefined, id: string, self: string): string | undefined {
  if (record?.state !== 'active' || record.provider !== self || record.pieceCid === undefined) return undefined
  return `${record.pieceCid.toString()}/${id}`
}

/** A counterparty's ledger head, as a signed message carries it (docs/protocol.md "Witnessed heads"). */
export interface LedgerHead { seq: number, cid: CID }

export interface Witnessed {
  did: string
  head: LedgerHead
  /** the field of the entry that holds the signed message */
  via: string
}

/** A ledger head in a message: `{seq, cid}`, or undefined when `value` is not one. */
export function headFrom (value: unknown): LedgerHead | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const { seq, cid } = value as { seq?: unknown, cid?: unknown }
  const c = CID.asCID(cid)
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || c === null) return undefined
  return { seq, cid: c }
}

/**
 * The counterparties' ledger heads an entry records: every signed message
 * stored in a top-level field (`{payload: {head, …}, signer, signature}`)
 * that another node signed.
 */
export function witnessedBy (entry: Pick<LedgerEntry, 'fields'>, self: string): Witnessed[] {
  const out: Witnessed[] = []
  for (const [field, value] of Object.entries(entry.fields)) {
    if (value === null || typeof value !== 'object' || CID.asCID(value) !== null || value instanceof Uint8Array) continue
    const { payload, signer } = value as { payload?: unknown, signer?: unknown }
    if (typeof signer !== 'string' || signer === self || payload === null || typeof payload !== 'object') continue
    const head = headFrom((payload as { head?: unknown }).head)
    if (head !== undefined) out.push({ did: signer, head, via: field })
  }
  return out
}

export function witnessKey (w: Pick<Witnessed, 'did' | 'head'>): string {
  return `${w.did}/${String(w.head.seq).padStart(16, '0')}/${w.head.cid.toString()}`
}

/** The index spaces a ledger keeps (LevelDB sublevels `ledger/<space>`). */
export const INDEX_SPACES = ['by-deal', 'deals', 'balances', 'providers', 'nonces', 'stats', 'due', 'holders', 'witnessed', 'data-sets', 'data-set-due', 'meta'] as const
export type IndexSpace = typeof INDEX_SPACES[number]

/** One index write: a value to put (encoded with `encodeIndexValue`), or a delete. */
export type IndexWrite =
  | { space: IndexSpace, key: string, value: unknown }
  | { space: IndexSpace, key: string, del: true }

/** What `deriveWrites` needs read before it is called. */
export interface IndexReads {
  deal?: string
  provider?: string
  counterparty?: string
  dataSet?: string
}

export interface IndexValues {
  deal?: DealRecord
  dataSet?: DataSetLedgerRecord
  counters?: ProviderCounters
  balance?: Balance
  stats: LedgerStats
}

export const STATS_KEY = 'provider'
export const HEAD_KEY = 'head'
export const VERSION_KEY = 'version'

export function nonceKey (client: string, nonce: bigint): string {
  return `${client}/${nonce.toString().padStart(20, '0')}`
}

export function seqKeyOf (seq: number): string {
  return seq.toString().padStart(16, '0')
}

export function readsOf (entry: LedgerEntry, self: string): IndexReads {
  const reads: IndexReads = {}
  const deal = dealOf(entry.kind, entry.fields)
  if (deal !== undefined) reads.deal = deal.toString()
  if (typeof entry.fields.provider === 'string') reads.provider = entry.fields.provider
  const counterparty = counterpartyOf(entry, self)
  if (counterparty !== undefined) reads.counterparty = counterparty
  const dataSet = dataSetOf(entry)
  if (dataSet !== undefined) reads.dataSet = dataSetKey(dataSet)
  return reads
}

/**
 * Every index write `entry` causes, given the values `readsOf(entry)` named.
 * Throws (TypeError) when the entry cannot follow the ledger as it is, e.g.
 * an illegal deal transition; the caller then fails that entry alone.
 */
export function deriveWrites (entry: LedgerEntry, current: IndexValues, self: string): IndexWrite[] {
  const writes: IndexWrite[] = []
  const dealId = dealOf(entry.kind, entry.fields)
  let before: DealRecord | undefined
  let after: DealRecord | undefined
  if (dealId !== undefined) {
    const id = dealId.toString()
    before = current.deal
    after = nextDeal(before, entry)
    if (after !== undefined) {
      writes.push({ space: 'deals', key: id, value: after })
      for (const [space, keyOf] of [['due', dueKey], ['holders', holderKey]] as const) {
        const was = keyOf(before, id, self)
        const now = keyOf(after, id, self)
        if (was !== undefined && was !== now) writes.push({ space, key: was, del: true })
        if (now !== undefined && now !== was) writes.push({ space, key: now, value: space === 'due' ? after.state : true })
      }
    }
    writes.push({ space: 'by-deal', key: `${id}/${seqKeyOf(entry.seq)}`, value: null })
    if ((entry.kind === 'deal-proposed' || entry.kind === 'deal-accepted') && typeof entry.fields.client === 'string' && isInteger(entry.fields.nonce)) {
      writes.push({ space: 'nonces', key: nonceKey(entry.fields.client, BigInt(entry.fields.nonce)), value: id })
    }
  }
  if (typeof entry.fields.provider === 'string') {
    const counters = nextCounters(current.counters, entry)
    if (counters !== undefined) writes.push({ space: 'providers', key: entry.fields.provider, value: counters })
  }
  const balance = nextBalance(current.balance, entry, self)
  if (balance !== undefined) writes.push({ space: 'balances', key: balance.counterparty, value: balance })
  let stats = nextStats(current.stats, entry, before, after, self)
  const dataSetId = dataSetOf(entry)
  if (dataSetId !== undefined) {
    const was = current.dataSet
    const now = nextDataSet(was, entry)
    if (now !== undefined) {
      writes.push({ space: 'data-sets', key: dataSetKey(dataSetId), value: now })
      const due = [dataSetDueKey(was, dataSetId), dataSetDueKey(now, dataSetId)]
      if (due[0] !== undefined && due[0] !== due[1]) writes.push({ space: 'data-set-due', key: due[0], del: true })
      if (due[1] !== undefined && due[1] !== due[0]) writes.push({ space: 'data-set-due', key: due[1], value: true })
      stats = dataSetStats(stats ?? current.stats, was, now) ?? stats
    }
  }
  if (stats !== undefined) writes.push({ space: 'stats', key: STATS_KEY, value: stats })
  for (const w of witnessedBy(entry, self)) writes.push({ space: 'witnessed', key: witnessKey(w), value: { entry: entry.seq, via: `${entry.kind}.${w.via}` } })
  writes.push({ space: 'meta', key: HEAD_KEY, value: { seq: entry.seq, cid: entry.cid } })
  return writes
}

const EMPTY = new Uint8Array(0)

/**
 * A value as an index stores it: DAG-CBOR, with amounts and byte totals as
 * decimal strings (sums over many deals need not fit CBOR's 64-bit
 * integers); `by-deal` keys carry no value.
 */
export function storedIndexValue (space: IndexSpace, value: unknown): unknown {
  if (space === 'balances') {
    const b = value as Balance
    return { counterparty: b.counterparty, earned: String(b.earned), paid: String(b.paid), slashedToUs: String(b.slashedToUs), slashedFromUs: String(b.slashedFromUs), outstanding: String(b.outstanding) }
  }
  if (space === 'stats') {
    const s = value as LedgerStats
    return { deals: s.deals, reserved: String(s.reserved), used: String(s.used), stored: String(s.stored), earned: String(s.earned), proofsAnswered: s.proofsAnswered, dataSets: s.dataSets }
  }
  if (space === 'data-sets') return storedDataSet(value as DataSetLedgerRecord)
  return value
}

export function statsFrom (value: unknown): LedgerStats {
  if (value === undefined) return zeroStats()
  const s = value as Record<string, unknown>
  return { deals: { ...(s.deals as LedgerStats['deals']) }, reserved: BigInt(s.reserved as string), used: BigInt(s.used as string), stored: BigInt(s.stored as string), earned: BigInt(s.earned as string), proofsAnswered: Number(s.proofsAnswered), dataSets: Number(s.dataSets ?? 0) }
}

export function dealRecordFrom (value: unknown): DealRecord {
  const record = value as DealRecord
  if (record.pieceSize !== undefined) record.pieceSize = BigInt(record.pieceSize)
  if (record.payloadSize !== undefined) record.payloadSize = BigInt(record.payloadSize)
  return record
}

export { dataSetRecordFrom }

/** Bytes for a by-deal key (none); other spaces go through DAG-CBOR. */
export function isValueless (space: IndexSpace): boolean {
  return space === 'by-deal' || space === 'data-set-due'
}

export { EMPTY as VALUELESS }
