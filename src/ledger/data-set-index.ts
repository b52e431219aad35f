/**
 * What PDP data-set entries change in the indexes (docs/ledger.md "Indexes",
 * docs/pdp.md "Data sets as deals"): a data set holds capacity like an active
 * deal, from its pieces' padded sizes, until its pieces are removed or it is
 * terminated or expires; it falls due at its end; each proven period is paid
 * once. Pure functions of (current record, entry), as the deal indexes are,
 * so `ledger verify` re-derives them from the chain.
 */
import type { DataSetLedgerRecord, EntryKind, LedgerEntry, LedgerStats } from './interface.js'

/** Kinds that concern one data set and name it in `dataSet`. */
export const DATA_SET_KINDS: ReadonlySet<EntryKind> = new Set<EntryKind>(['data-set-created', 'pieces-added', 'pieces-removed', 'data-set-deleted', 'data-set-expired', 'data-set-proven'])

const isWhole = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const big = (v: unknown): bigint => typeof v === 'bigint' ? v : isWhole(v) ? BigInt(v) : 0n

/** The data set an entry concerns: data-set kinds, and a payment for a data set's period. */
export function dataSetOf (entry: Pick<LedgerEntry, 'kind' | 'fields'>): number | undefined {
  const named = isWhole(entry.fields.dataSet) ? entry.fields.dataSet : undefined
  if (DATA_SET_KINDS.has(entry.kind)) {
    if (named === undefined) throw new TypeError(`a ${entry.kind} entry needs the data set id in field "dataSet"`)
    return named
  }
  return entry.kind === 'payment-accrued' && entry.fields.deal === undefined ? named : undefined
}

export function dataSetKey (id: number): string {
  return String(id).padStart(20, '0')
}

/** Padded and payload bytes of the pieces an entry adds (`pieces: [{padded, size}]`); entries from before capacity was counted add none. */
function addedBytes (fields: Record<string, unknown>): { padded: bigint, bytes: bigint } {
  let padded = 0n
  let bytes = 0n
  for (const p of Array.isArray(fields.pieces) ? fields.pieces as Array<Record<string, unknown>> : []) {
    padded += big(p.padded)
    bytes += big(p.size)
  }
  return { padded, bytes }
}

const min = (a: bigint, b: bigint): bigint => a < b ? a : b

/** The data set's record after `entry`, or undefined when the entry does not change it. */
export function nextDataSet (current: DataSetLedgerRecord | undefined, entry: LedgerEntry): DataSetLedgerRecord | undefined {
  const { kind, fields } = entry
  if (kind === 'payment-accrued') return undefined
  if (kind === 'data-set-created') {
    if (current !== undefined) throw new TypeError(`data set ${String(fields.dataSet)} is already in the ledger`)
    const start = isWhole(fields.start) ? fields.start : Math.floor(entry.at / 1000)
    const { padded, bytes } = addedBytes(fields)
    return { payer: String(fields.payer), state: 'live', start, ...(isWhole(fields.end) ? { end: fields.end } : {}), padded, bytes, paid: -1 }
  }
  if (current === undefined) throw new TypeError(`a ${kind} entry names data set ${String(fields.dataSet)}, which is not in the ledger`)
  if (current.state !== 'live') throw new TypeError(`a ${kind} entry names data set ${String(fields.dataSet)}, which is ${current.state}`)
  switch (kind) {
    case 'pieces-added': {
      const { padded, bytes } = addedBytes(fields)
      return { ...current, padded: current.padded + padded, bytes: current.bytes + bytes }
    }
    case 'pieces-removed':
      return { ...current, padded: current.padded - min(current.padded, big(fields.padded)), bytes: current.bytes - min(current.bytes, big(fields.bytes)) }
    case 'data-set-deleted':
      return { ...current, state: 'terminated', padded: 0n, bytes: 0n }
    case 'data-set-expired':
      return { ...current, state: 'expired', padded: 0n, bytes: 0n }
    case 'data-set-proven': {
      if (!isWhole(fields.period) || fields.period <= current.paid) throw new TypeError(`data set ${String(fields.dataSet)}: period ${String(fields.period)} is not after the last one paid (${current.paid})`)
      return { ...current, paid: fields.period }
    }
    default:
      return undefined
  }
}

/** The node's totals with a data set's change: its live bytes count as used and stored, like an active deal's. */
export function dataSetStats (stats: LedgerStats, before: DataSetLedgerRecord | undefined, after: DataSetLedgerRecord): LedgerStats | undefined {
  const held = (r: DataSetLedgerRecord | undefined): { padded: bigint, bytes: bigint, live: number } =>
    r?.state === 'live' ? { padded: r.padded, bytes: r.bytes, live: 1 } : { padded: 0n, bytes: 0n, live: 0 }
  const was = held(before)
  const now = held(after)
  if (was.padded === now.padded && was.bytes === now.bytes && was.live === now.live) return undefined
  return { ...stats, used: stats.used + now.padded - was.padded, stored: stats.stored + now.bytes - was.bytes, dataSets: stats.dataSets + now.live - was.live }
}

/** `data-set-due` index: a live data set falls due at its end, `<unix s, 12 digits>/<id, 20 digits>`. */
export function dataSetDueKey (record: DataSetLedgerRecord | undefined, id: number): string | undefined {
  if (record?.state !== 'live' || record.end === undefined) return undefined
  return `${String(record.end).padStart(12, '0')}/${dataSetKey(id)}`
}

export function storedDataSet (r: DataSetLedgerRecord): unknown {
  return { ...r, padded: String(r.padded), bytes: String(r.bytes) }
}

export function dataSetRecordFrom (value: unknown): DataSetLedgerRecord {
  const r = value as DataSetLedgerRecord
  return { ...r, padded: BigInt(r.padded), bytes: BigInt(r.bytes) }
}
