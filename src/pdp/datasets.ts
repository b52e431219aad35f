/**
 * PDP data sets without a chain (docs/pdp.md "Data sets"): what PDPVerifier
 * and FilecoinWarmStorageService keep on chain for a provider, kept by the
 * provider itself. Each change is authorised by the payer's EIP-712 signature
 * in `extraData` (checked in eip712.ts as FWSS checks it), recorded as a
 * signed ledger entry, and answered with that entry's hash as the "tx hash".
 *
 * The data set's state (its record, its pieces, the used clientDataSetIds and
 * nonces, the pieces' references) is written in the same synced batch as the
 * ledger entry, so a crash leaves the change whole or absent. Only the tx-hash
 * index — the entry's hash is known once the entry is built — is written right
 * after; `recover` writes it again at start for the newest entries, the only
 * ones that can lack it, since changes run one at a time.
 *
 * The state is the provider's state store: the repo's LevelDB, or on a
 * cluster the shared PostgreSQL database, so a data set created through one
 * node is added to and proven through any (docs/cluster.md "PDP"). Each
 * change's entry carries a guard that checks, under the ledger head lock, that
 * what the change read is unchanged (src/pdp/reads.ts); a change that lost a
 * race with another node is run again.
 *
 * Piece ids are positions in the data set, as PDPVerifier numbers them: a
 * removed piece keeps its id and counts no leaves (proofs/pdp-challenge.ts).
 */
import * as dagCBOR from '@ipld/dag-cbor'
import { paddedSizeFromHeight, parsePieceCid, pdpLeafCount, type PieceLink } from '../../proofs/index.js'
import { CairnError } from '../errors.js'
import { periodPayment } from '../protocol/rules.js'
import type { AppendItem, EntryKind, Ledger, LedgerEntry } from '../ledger/interface.js'
import { checkFree } from '../ledger/admission.js'
import type { StateReader, StateStore, WriteOp } from '../state/interface.js'
import { locks, spaces, type Space } from '../state/spaces.js'
import {
  addressBytes, decodeAbi, verifyAddPieces, verifyCreateDataSet, verifyDeleteDataSet, verifySchedulePieceRemovals,
  type Eip712Domain, type MetadataEntry
} from './eip712.js'
import type { PdpPieces } from './pieces.js'
import { ReadSet, retryChanged } from './reads.js'

/** Most pieces one request may add (a bound on the batch and on the signed message). */
export const MAX_PIECES_PER_ADD = 1024

export interface DataSetRecord {
  id: number
  payer: string
  payee: string
  recordKeeper: string
  /** decimal: a uint256 the client chose */
  clientDataSetId: string
  metadata: MetadataEntry[]
  nextPieceId: number
  /** tx hash of its creation (`pending` until indexed, a moment after its entry commits) */
  created: string
  /** tx hash of its termination */
  terminated?: string
  /** unix seconds it ended at the end of its term (docs/pdp.md "Data sets as deals") */
  expired?: number
}

export interface DataSetPiece {
  pieceId: number
  pieceCid: string
  size: number
  /** data-bearing leaves (Cids.leafCount); 0 once removed */
  leaves: number
  metadata: MetadataEntry[]
  /** tx hash of its removal */
  removed?: string
}

export type TxKind = 'create' | 'add' | 'remove' | 'terminate'

export interface TxRecord {
  kind: TxKind
  dataSet: number
  pieceIds: number[]
  seq: number
}

export interface PieceRequest { pieceCid: string, link: PieceLink }

/** A piece as an add's ledger entry names it: its payload and padded sizes are what the data set holds. */
interface AddedPiece { pieceId: number, pieceCid: string, size: number, padded: bigint }

const KIND_OF_ENTRY: Record<TxKind, EntryKind> = {
  create: 'data-set-created',
  add: 'pieces-added',
  remove: 'pieces-removed',
  terminate: 'data-set-deleted'
}

const pad = (n: number): string => String(n).padStart(20, '0')
const hex64 = (n: bigint): string => n.toString(16).padStart(64, '0')
const pieceKey = (dataSet: number, pieceId: number): string => `${pad(dataSet)}/${pad(pieceId)}`
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The "tx hash" of a ledger entry: the sha2-256 digest in its CID, 0x-prefixed (32 bytes, as an Ethereum hash). */
export function txHashOf (entry: LedgerEntry): string {
  return '0x' + Buffer.from(entry.cid.multihash.digest).toString('hex')
}

/** A tx hash from a path, as ERR_INVALID_ARGUMENT unless it is 0x and 64 hex digits. */
export function parseTxHash (value: string): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new CairnError('ERR_INVALID_ARGUMENT', `a tx hash is 0x and 64 hex digits, got ${JSON.stringify(value.slice(0, 80))}`)
  return value.toLowerCase()
}

/** A data set or piece id from a path. */
export function parseId (value: string, label: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new CairnError('ERR_INVALID_ARGUMENT', `${label} must be a whole number, got ${JSON.stringify(value.slice(0, 40))}`)
  return Number(value)
}

function put (space: Space, key: string, value: Uint8Array): WriteOp {
  return { type: 'put', space, key, value }
}

export interface DataSetsOptions {
  domain: Eip712Domain
  /** the provider's payee; without one, no data set can be created */
  payee?: string
  /** padded bytes the provider holds in total, deals and data sets (default: unbounded) */
  capacity?: bigint
  /** seconds a data set lasts from its creation (`provider start --data-set-term`, default DEFAULT_DATA_SET_TERM) */
  term?: number
  /** what a proven period is paid: the provider's price and proving period (docs/pdp.md "Data sets as deals") */
  pricePerGiBDay?: bigint
  provingPeriod?: number
  /** unix seconds */
  now?: () => number
}

/** A data set lasts a year unless the provider says otherwise. */
export const DEFAULT_DATA_SET_TERM = 365 * 86400
/** Without a provider's proving period (tests), a day. */
const DEFAULT_PROVING_PERIOD = 86400

export class DataSets {
  constructor (
    private readonly state: StateStore,
    private readonly ledger: Ledger,
    private readonly pieces: PdpPieces,
    private readonly options: DataSetsOptions
  ) {}

  private now (): number {
    return this.options.now?.() ?? Math.floor(Date.now() / 1000)
  }

  async record (id: number, reader: StateReader = this.state): Promise<DataSetRecord | undefined> {
    const value = await reader.get(spaces.pdpDataSets, pad(id))
    return value === undefined ? undefined : dagCBOR.decode(value) as DataSetRecord
  }

  async require (id: number, reader: StateReader = this.state): Promise<DataSetRecord> {
    const record = await this.record(id, reader)
    if (record === undefined) throw new CairnError('ERR_DATA_SET_NOT_FOUND', `data set ${id} does not exist on this provider`)
    return record
  }

  /** The pieces of a data set in id order, removed ones included (they keep their ids). */
  async piecesOf (id: number): Promise<DataSetPiece[]> {
    const out: DataSetPiece[] = []
    for await (const [, value] of this.state.iterate(spaces.pdpDataSetPieces, { gte: `${pad(id)}/`, lt: `${pad(id)}0` })) out.push(dagCBOR.decode(value) as DataSetPiece)
    return out
  }

  async tx (hash: string): Promise<TxRecord | undefined> {
    const value = await this.state.get(spaces.pdpTransactions, hash)
    return value === undefined ? undefined : dagCBOR.decode(value) as TxRecord
  }

  /** Writes the tx index of the newest data-set entries where a crash left it out; returns how many. */
  async recover (): Promise<number> {
    let written = 0
    for (const [kind, entryKind] of Object.entries(KIND_OF_ENTRY) as Array<[TxKind, EntryKind]>) {
      for await (const entry of this.ledger.log({ kind: entryKind, limit: 1 })) {
        if (await this.tx(txHashOf(entry)) !== undefined) continue
        await this.writeIndex(kind, entry)
        written++
      }
    }
    return written
  }

  /**
   * The writes that follow an entry once its hash is known: the tx index, and
   * the hash in the record it changed (a data set's creation or termination, a
   * piece's removal). Derived from the entry and the state, so `recover` can
   * make them again.
   */
  private async indexWrites (kind: TxKind, entry: LedgerEntry, reader: StateReader): Promise<WriteOp[]> {
    const hash = txHashOf(entry)
    const f = entry.fields as { dataSet: number, pieces?: Array<{ pieceId: number }>, pieceIds?: number[] }
    const pieceIds = f.pieceIds ?? (f.pieces ?? []).map((p) => p.pieceId)
    const writes = [put(spaces.pdpTransactions, hash, dagCBOR.encode({ kind, dataSet: f.dataSet, pieceIds, seq: entry.seq } satisfies TxRecord))]
    if (kind === 'create' || kind === 'terminate') {
      const record = await this.record(f.dataSet, reader)
      if (record !== undefined) writes.push(put(spaces.pdpDataSets, pad(f.dataSet), dagCBOR.encode(kind === 'create' ? { ...record, created: hash } : { ...record, terminated: hash })))
    } else if (kind === 'remove') {
      for (const pieceId of pieceIds) {
        const value = await reader.get(spaces.pdpDataSetPieces, pieceKey(f.dataSet, pieceId))
        if (value !== undefined) writes.push(put(spaces.pdpDataSetPieces, pieceKey(f.dataSet, pieceId), dagCBOR.encode({ ...dagCBOR.decode(value) as DataSetPiece, removed: hash })))
      }
    }
    return writes
  }

  /**
   * Writes an entry's index (indexWrites) under the ledger head lock: it
   * rewrites a record another node's change may be writing too.
   */
  private async writeIndex (kind: TxKind, entry: LedgerEntry): Promise<void> {
    await this.state.transaction(async (tx) => {
      await tx.lock(locks.ledgerHead)
      for (const w of await this.indexWrites(kind, entry, tx)) {
        if (w.type === 'put') tx.put(w.space, w.key, w.value)
        else tx.del(w.space, w.key)
      }
    })
  }

  /**
   * Appends the entry with its state writes — refused with ERR_STATE_CHANGED
   * if what `reads` saw changed meanwhile (reads.ts), or by `guard` — then
   * indexes its hash.
   */
  private async commit (kind: TxKind, fields: Record<string, unknown>, writes: WriteOp[], pieceOps: WriteOp[], reads: ReadSet, guard?: AppendItem['guard']): Promise<string> {
    const unchanged = reads.guard()
    const [entry] = await this.ledger.appendAll([{
      kind: KIND_OF_ENTRY[kind],
      fields,
      extra: [...writes, ...pieceOps],
      guard: async (view) => {
        await unchanged(view)
        await guard?.(view)
      }
    }]) as [LedgerEntry]
    await this.writeIndex(kind, entry)
    return txHashOf(entry)
  }

  private payee (): string {
    const payee = this.options.payee
    if (payee === undefined) throw new CairnError('ERR_NO_PAYEE', 'this provider has no payee address (provider start --payee 0x…), so it takes no data sets')
    return payee
  }

  /**
   * Creates a data set (and adds `pieces` to it, for create-and-add): checks
   * the signed CreateDataSet (and AddPieces) and that its clientDataSetId
   * (and nonce) were never used by this payer, then records it.
   */
  async create (request: { recordKeeper: string, extraData: string, pieces?: PieceRequest[] }): Promise<{ txHash: string, dataSetId: number, pieceIds: number[] }> {
    addressBytes(request.recordKeeper, 'recordKeeper')
    // Curio takes only the record keeper it serves; here that is the service contract of the domain
    if (request.recordKeeper.toLowerCase() !== this.options.domain.verifyingContract.toLowerCase()) {
      throw new CairnError('ERR_INVALID_ARGUMENT', `recordKeeper ${request.recordKeeper} is not this provider's service contract ${this.options.domain.verifyingContract}`)
    }
    const payee = this.payee()
    let createData: string | Uint8Array = request.extraData
    let addData: Uint8Array | undefined
    if (request.pieces !== undefined) {
      // create-and-add: abi.encode(bytes createExtraData, bytes addExtraData), as synapse-core signs it
      [createData, addData] = decodeAbi(['bytes', 'bytes'], request.extraData) as [Uint8Array, Uint8Array]
    }
    const auth = verifyCreateDataSet(this.options.domain, createData, payee)
    const pieces = request.pieces ?? []
    const add = addData === undefined ? undefined : verifyAddPieces(this.options.domain, addData, { payer: auth.payer, clientDataSetId: auth.clientDataSetId, pieces: pieces.map((p) => p.link.cid.bytes) })
    return await this.change(async (reads) => {
      const payer = auth.payer.toLowerCase()
      const clientKey = `${payer}/${hex64(auth.clientDataSetId)}`
      const used = await reads.get(spaces.pdpClientDataSets, clientKey)
      if (used !== undefined) throw new CairnError('ERR_REPLAYED_DATA_SET', `payer ${payer} already created data set ${decoder.decode(used)} with clientDataSetId ${auth.clientDataSetId}; a signed CreateDataSet is taken once`)
      if (add !== undefined) await this.checkNonce(payer, add.nonce, reads)
      const next = await reads.get(spaces.pdpMeta, 'next-data-set')
      const id = next === undefined ? 1 : Number(decoder.decode(next))
      const record: DataSetRecord = {
        id,
        payer,
        payee,
        recordKeeper: request.recordKeeper.toLowerCase(),
        clientDataSetId: auth.clientDataSetId.toString(),
        metadata: auth.metadata,
        nextPieceId: 0,
        created: 'pending'
      }
      const writes: WriteOp[] = [
        put(spaces.pdpMeta, 'next-data-set', encoder.encode(String(id + 1))),
        put(spaces.pdpClientDataSets, clientKey, encoder.encode(String(id)))
      ]
      const added = add === undefined ? undefined : await this.addWrites(record, pieces, add.metadata, add.nonce, writes, reads)
      writes.push(put(spaces.pdpDataSets, pad(id), dagCBOR.encode(record)))
      const start = this.now()
      const fields: Record<string, unknown> = {
        dataSet: id,
        payer,
        payee,
        start,
        end: start + (this.options.term ?? DEFAULT_DATA_SET_TERM),
        recordKeeper: record.recordKeeper,
        clientDataSetId: record.clientDataSetId,
        metadata: auth.metadata,
        extraData: hexBytes(request.extraData),
        ...(added === undefined ? {} : { pieces: added.entries, nonce: (add as { nonce: bigint }).nonce.toString() })
      }
      const txHash = await this.commit('create', fields, writes, added?.pieceOps ?? [], reads, added?.guard)
      added?.settle()
      return { txHash, dataSetId: id, pieceIds: added?.entries.map((p) => p.pieceId) ?? [] }
    })
  }

  /**
   * Runs a change alone among this node's PDP writers, with its reads recorded
   * for its entry's guard, and again while another node's write gets between
   * its reads and its append (reads.ts).
   */
  private async change<T> (fn: (reads: ReadSet) => Promise<T>): Promise<T> {
    return await this.pieces.serially(async () => await retryChanged(async () => await fn(new ReadSet(this.state))))
  }

  private async checkNonce (payer: string, nonce: bigint, reads: ReadSet): Promise<void> {
    const used = await reads.get(spaces.pdpNonces, `${payer}/${hex64(nonce)}`)
    if (used !== undefined) throw new CairnError('ERR_REPLAYED_NONCE', `payer ${payer} already used AddPieces nonce ${nonce} (data set ${decoder.decode(used)}); a signed AddPieces is taken once`)
  }

  /** The writes that add `pieces` to `record` (which it advances), and the piece references they take. */
  private async addWrites (record: DataSetRecord, pieces: PieceRequest[], metadata: MetadataEntry[][], nonce: bigint, writes: WriteOp[], reads: ReadSet): Promise<{ entries: AddedPiece[], pieceOps: WriteOp[], settle: () => void, guard?: AppendItem['guard'] }> {
    const guard = await this.checkCapacity(pieces)
    const refs = await this.pieces.referenceOps(pieces.map((p) => [p.pieceCid, 1] as const), reads)
    const entries: AddedPiece[] = []
    pieces.forEach((p, i) => {
      const pieceId = record.nextPieceId++
      const size = (refs.records.get(p.pieceCid) as { size: number }).size
      const piece: DataSetPiece = { pieceId, pieceCid: p.pieceCid, size, leaves: Number(pdpLeafCount(p.link.height, p.link.padding)), metadata: metadata[i] ?? [] }
      writes.push(put(spaces.pdpDataSetPieces, pieceKey(record.id, pieceId), dagCBOR.encode(piece)))
      entries.push({ pieceId, pieceCid: p.pieceCid, size, padded: paddedSizeFromHeight(p.link.height) })
    })
    writes.push(put(spaces.pdpNonces, `${record.payer}/${hex64(nonce)}`, encoder.encode(String(record.id))))
    // once committed: the counters mirrored, and on a cluster each piece copied to a second node
    const settle = (): void => { refs.settle(); this.pieces.referenced(pieces.map((p) => p.pieceCid)) }
    return { entries, pieceOps: refs.ops, settle, guard }
  }

  /**
   * Refuses pieces that do not fit in what deals and data sets leave free, as a
   * deal proposal is refused (ERR_INSUFFICIENT_CAPACITY): a data set's pieces
   * hold their padded size until removed, like an active deal's piece.
   */
  private async checkCapacity (pieces: PieceRequest[]): Promise<AppendItem['guard']> {
    const capacity = this.options.capacity
    if (capacity === undefined) return undefined
    const needed = pieces.reduce((sum, p) => sum + paddedSizeFromHeight(p.link.height), 0n)
    await checkFree(this.ledger, needed, capacity, 'pieces need')
    // checked again with the ledger head held, where a deal accepted meanwhile is counted
    return async (view) => { await checkFree(view, needed, capacity, 'pieces need') }
  }

  /** Adds pieces to a live data set, authorised by a signed AddPieces with a nonce never used before. */
  async addPieces (id: number, request: { extraData: string, pieces: PieceRequest[] }): Promise<{ txHash: string, pieceIds: number[] }> {
    const record = await this.requireLive(id)
    const auth = verifyAddPieces(this.options.domain, request.extraData, { payer: record.payer, clientDataSetId: BigInt(record.clientDataSetId), pieces: request.pieces.map((p) => p.link.cid.bytes) })
    return await this.change(async (reads) => {
      const current = await this.requireLive(id, reads)
      await this.checkNonce(current.payer, auth.nonce, reads)
      const writes: WriteOp[] = []
      const added = await this.addWrites(current, request.pieces, auth.metadata, auth.nonce, writes, reads)
      writes.push(put(spaces.pdpDataSets, pad(id), dagCBOR.encode(current)))
      const txHash = await this.commit('add', { dataSet: id, pieces: added.entries, nonce: auth.nonce.toString(), extraData: hexBytes(request.extraData) }, writes, added.pieceOps, reads, added.guard)
      added.settle()
      return { txHash, pieceIds: added.entries.map((p) => p.pieceId) }
    })
  }

  /** Removes one piece (a signed SchedulePieceRemovals); it keeps its id with no leaves, and its bytes are parked again unless another data set holds them. */
  async removePiece (id: number, pieceId: number, extraData: string): Promise<{ txHash: string }> {
    const record = await this.requireLive(id)
    verifySchedulePieceRemovals(this.options.domain, extraData, { payer: record.payer, clientDataSetId: BigInt(record.clientDataSetId), pieceIds: [BigInt(pieceId)] })
    return await this.change(async (reads) => {
      await this.requireLive(id, reads)
      const value = await reads.get(spaces.pdpDataSetPieces, pieceKey(id, pieceId))
      const piece = value === undefined ? undefined : dagCBOR.decode(value) as DataSetPiece
      if (piece === undefined || piece.removed !== undefined) throw new CairnError('ERR_DATA_SET_PIECE_NOT_FOUND', `data set ${id} has no live piece ${pieceId}`)
      const refs = await this.pieces.referenceOps([[piece.pieceCid, -1]], reads)
      // `removed` holds the removal's tx hash once indexed; `pending` only until then
      const padded = paddedSizeFromHeight(parsePieceCid(piece.pieceCid).height)
      const txHash = await this.commit('remove', { dataSet: id, pieceIds: [pieceId], padded, bytes: piece.size, extraData: hexBytes(extraData) }, [
        put(spaces.pdpDataSetPieces, pieceKey(id, pieceId), dagCBOR.encode({ ...piece, leaves: 0, removed: 'pending' }))
      ], refs.ops, reads)
      refs.settle()
      return { txHash }
    })
  }

  /** Terminates a data set (a signed DeleteDataSet or TerminateService): every live piece is released. */
  async terminate (id: number, extraData: string): Promise<{ txHash: string }> {
    const record = await this.requireLive(id)
    verifyDeleteDataSet(this.options.domain, extraData, { payer: record.payer, dataSetId: BigInt(id) })
    return await this.change(async (reads) => {
      const current = await this.requireLive(id, reads)
      const live = (await this.piecesOf(id)).filter((p) => p.removed === undefined)
      const refs = await this.pieces.referenceOps(live.map((p) => [p.pieceCid, -1] as const), reads)
      const txHash = await this.commit('terminate', { dataSet: id, pieceIds: live.map((p) => p.pieceId), extraData: hexBytes(extraData) }, [
        put(spaces.pdpDataSets, pad(id), dagCBOR.encode({ ...current, terminated: 'pending' }))
      ], refs.ops, reads)
      refs.settle()
      return { txHash }
    })
  }

  async requireLive (id: number, reader: StateReader = this.state): Promise<DataSetRecord> {
    const record = await this.require(id, reader)
    if (record.terminated !== undefined) throw new CairnError('ERR_DATA_SET_TERMINATED', `data set ${id} was terminated`)
    if (record.expired !== undefined) throw new CairnError('ERR_DATA_SET_EXPIRED', `data set ${id} ended at ${record.expired} (unix seconds); it is no longer proven or added to`)
    return record
  }

  /**
   * Ends the data sets whose term ended by `now`, up to `limit` (the provider's
   * lifecycle tick, src/provider/expiry.ts): each gets a `data-set-expired`
   * entry that frees its capacity, and its pieces are released — parked again,
   * so their bytes go after the park TTL unless another data set takes them.
   */
  async expireDue (now: number, limit: number): Promise<{ due: number, expired: string[] }> {
    const due = (await this.ledger.dataSetsDue(now, limit)).map((d) => d.dataSet)
    const expired: string[] = []
    for (const id of due) {
      const ended = await this.change(async (reads) => {
        const current = await this.record(id, reads)
        await reads.get(spaces.ledgerDataSets, pad(id))
        const ledger = await this.ledger.dataSet(id)
        if (current === undefined || ledger?.state !== 'live' || ledger.end === undefined || ledger.end > now) return false
        const live = (await this.piecesOf(id)).filter((p) => p.removed === undefined)
        const refs = await this.pieces.referenceOps(live.map((p) => [p.pieceCid, -1] as const), reads)
        await this.ledger.appendAll([{
          kind: 'data-set-expired',
          fields: { dataSet: id, end: ledger.end, pieceIds: live.map((p) => p.pieceId) },
          extra: [put(spaces.pdpDataSets, pad(id), dagCBOR.encode({ ...current, expired: ledger.end })), ...refs.ops],
          guard: reads.guard()
        }])
        refs.settle()
        return true
      })
      if (ended) expired.push(`data-set/${id}`)
    }
    return { due: due.length, expired }
  }

  /**
   * Records a proof the provider gave for a data set: the first proof of a
   * proving period (counted from the data set's creation, `provingPeriod`
   * seconds each) pays that period — `data-set-proven` and `payment-accrued`
   * from the payer to this provider, in one batch — at the provider's price
   * for the data set's padded bytes, as a proven deal period is paid
   * (docs/ledger.md). Later proofs of the same period pay nothing more.
   */
  async proven (id: number, proof: { seed: string, count: number }): Promise<{ period: number, amount?: bigint }> {
    return await this.change(async (reads) => {
      // the ledger's record of the data set, read again under the head lock: two nodes proving one period pay it once
      await reads.get(spaces.ledgerDataSets, pad(id))
      const record = await this.ledger.dataSet(id)
      const provingPeriod = this.options.provingPeriod ?? DEFAULT_PROVING_PERIOD
      const now = this.now()
      if (record === undefined) return { period: -1 }
      const period = Math.floor(Math.max(0, now - record.start) / provingPeriod)
      if (record.state !== 'live' || period <= record.paid || (record.end !== undefined && now >= record.end)) return { period }
      const amount = periodPayment({ pricePerGiBDay: this.options.pricePerGiBDay ?? 0n, pieceSize: record.padded, provingPeriod })
      await this.ledger.appendAll([
        { kind: 'data-set-proven', fields: { dataSet: id, period, seed: proof.seed, count: proof.count, padded: record.padded }, guard: reads.guard() },
        { kind: 'payment-accrued', fields: { dataSet: id, from: record.payer, to: this.ledger.did, amount, period } }
      ])
      return { period, amount }
    })
  }

  /** The data-bearing leaf counts of a data set's pieces in id order (0 for a removed piece): what its challenges are drawn over. */
  async leafCounts (id: number): Promise<{ pieces: DataSetPiece[], counts: bigint[] }> {
    const pieces = await this.piecesOf(id)
    return { pieces, counts: pieces.map((p) => p.removed === undefined ? BigInt(p.leaves) : 0n) }
  }
}

function hexBytes (value: string): Uint8Array {
  return Uint8Array.from(Buffer.from(value.slice(2), 'hex'))
}

/** A piece of a request body (`{pieceCid, subPieces}`): cairn takes whole pieces, so a sub-piece list names the piece itself or is absent. */
export function pieceRequestOf (value: unknown, label: string): PieceRequest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CairnError('ERR_INVALID_JSON', `${label} must be an object {pieceCid, subPieces}`)
  const { pieceCid, subPieces } = value as { pieceCid?: unknown, subPieces?: unknown }
  let link: PieceLink
  try {
    if (typeof pieceCid !== 'string' || pieceCid.length > 200) throw new Error(`expected a piece CID v2, got ${JSON.stringify(pieceCid)?.slice(0, 80)}`)
    link = parsePieceCid(pieceCid)
  } catch (err) {
    throw new CairnError('ERR_INVALID_CID', `${label}.pieceCid: ${(err as Error).message}`)
  }
  if (subPieces !== undefined && subPieces !== null) {
    if (!Array.isArray(subPieces) || subPieces.length > 1 || (subPieces.length === 1 && (subPieces[0] as { subPieceCid?: unknown })?.subPieceCid !== link.cid.toString())) {
      throw new CairnError('ERR_INVALID_ARGUMENT', `${label}: cairn takes whole pieces; subPieces must be absent or name the piece itself`)
    }
  }
  return { pieceCid: link.cid.toString(), link }
}
