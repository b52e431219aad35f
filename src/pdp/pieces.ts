/**
 * The pieces PDP clients upload (docs/pdp.md): raw bytes, not necessarily CARs,
 * kept in their own piece store (`pdp/pieces/` in the repo) and their own key
 * space (`pdp!`). A piece no data set references is parked: it expires after
 * the park TTL, counts against the park quota, and a bounded sweep removes it.
 *
 * A piece is stored all or nothing, as deal pieces are: the body is staged in
 * a temporary file while its commitment is computed, fsync'd, renamed into the
 * store, and then its record, v1 alias, expiry, usage counters and (for a
 * CARv1) block index are written in one transaction. A crash before it
 * commits leaves a file no key names, which `removeOrphans` deletes at start.
 *
 * The registry lives in the provider's state store (src/state/spaces.ts,
 * `pdp/…` spaces): the repo's LevelDB, or on a cluster the shared PostgreSQL
 * database (docs/cluster.md "PDP"). Its writes take the ledger head lock, as
 * the data-set changes that reference its pieces do (src/pdp/reads.ts), so the
 * nodes of a cluster update a piece's record and the usage counters one at a
 * time. On a cluster the bytes stay on the node that received them, which
 * records itself as the piece's location (`cluster/piece-locations`); another
 * node serves the piece by reading it from there (`remote`), and proves it by
 * having that node prove the challenged leaves, checked here
 * (`proveElsewhere`): no node copies another's piece to serve or prove it. A
 * piece a data set references is copied to a second node by a copy task
 * (`referenced`, src/cluster/work.ts), so losing a node loses no piece.
 */
import { mkdir, open as openFile, readdir, rm } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import type { LeafProof } from '../../proofs/index.js'
import { matches } from '../car/index.js'
import { CairnError } from '../errors.js'
import type { BlockSource, PieceHandle, PieceSource } from '../provider/interface.js'
import { checkUploadCar, type UploadCheck } from '../provider/upload-check.js'
import type { StateReader, StateStore, StateTransaction, WriteOp } from '../state/interface.js'
import { locks, spaces } from '../state/spaces.js'
import type { PieceStore } from '../store/pieces.js'
import type { ParkQuota, Reservation } from './quota.js'

/** Curio's limits: one Fr32 quad (127 bytes, padded 128) up to 1 GiB padded (× 127/128 unpadded). */
export const MIN_PIECE_BYTES = 127
export const MAX_PIECE_BYTES = 1_065_353_216

const TOTAL = 'total'
const EMPTY = new Uint8Array(0)

export interface PieceRecord {
  /** payload bytes */
  size: number
  /** who parked it: `0x…` or `ip:…` */
  client: string
  /** unix seconds */
  parkedAt: number
  /** unix seconds; 0 once a data set references it (never expires) */
  expiresAt: number
  /** named by a completed upload (classic PUT or finalize): found and served */
  findable: boolean
  /** the v1 piece CID */
  v1: string
  /** a complete CARv1: its root, and whether it is the canonical DFS CAR of that root */
  car?: { root: string, canonical: boolean, blocks: number }
  /** how many live pieces of data sets are this piece (absent: none, the piece is parked) */
  refs?: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

function expiryKey (at: number, piece: string): string {
  return `${String(at).padStart(16, '0')}!${piece}`
}

/** The key of a piece's location in a cluster, as src/cluster/node.ts writes it. */
function locationKey (piece: string, node: string): string {
  return `${piece}/${node}`
}

export interface StoreRequest {
  body: AsyncIterable<Uint8Array>
  client: string
  reservation: Reservation
  /** what the bytes must be (classic upload): the piece CID v2 and its payload size */
  expect?: { cid: CID, size: number }
  /** found and served as soon as stored (classic upload), or only once finalized (streaming) */
  findable: boolean
  signal: AbortSignal
}

export interface PdpPiecesOptions {
  ttlSeconds: number
  now?: () => number
  /** test-only: runs between the rename into the store and the batch (a crash test kills the process there) */
  onCommitted?: (piece: string) => void
  /**
   * on a cluster: this node's name (recorded as the location of the pieces it
   * stores), the read of a piece another node holds, checked leaf proofs of
   * one, and the post of a copy task for a piece a data set came to reference
   * (src/cluster/work.ts; it must not throw)
   */
  cluster?: {
    node: string
    remote: (piece: string, size: number) => Promise<PieceHandle | undefined>
    proveLeaves: (piece: string, leaves: readonly number[]) => Promise<LeafProof[]>
    copy?: (piece: string) => void
  }
}

export class PdpPieces implements PieceSource, BlockSource {
  /** one writer of records and counters at a time: a batch's read-modify-write of the usage counters must not interleave */
  private writing: Promise<unknown> = Promise.resolve()
  private readonly now: () => number

  constructor (
    private readonly state: StateStore,
    readonly store: PieceStore,
    readonly quota: ParkQuota,
    private readonly options: PdpPiecesOptions
  ) {
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000))
  }

  /** Creates the store's directory and loads the usage counters into the quota. */
  async load (): Promise<void> {
    await mkdir(this.store.dir, { recursive: true })
    for await (const [client, value] of this.state.iterate(spaces.pdpUsage)) this.quota.load(client, BigInt(decoder.decode(value)))
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn)
    this.writing = run.catch(() => {})
    return await run
  }

  async record (pieceCid: string, reader: StateReader = this.state): Promise<PieceRecord | undefined> {
    const value = await reader.get(spaces.pdpPieces, pieceCid)
    return value === undefined ? undefined : dagCBOR.decode(value) as PieceRecord
  }

  /** A record that is still live: not expired (a sweep may not have come by yet). */
  async live (pieceCid: string, reader: StateReader = this.state): Promise<PieceRecord | undefined> {
    const record = await this.record(pieceCid, reader)
    if (record === undefined || (record.expiresAt !== 0 && record.expiresAt <= this.now())) return undefined
    return record
  }

  /** The v2 form of a piece CID given as v2 or v1 (through the alias), or undefined. */
  async v2Of (cid: CID): Promise<string | undefined> {
    if (cid.code !== 0xf101) return cid.toString()
    const value = await this.state.get(spaces.pdpPiecesV1, cid.toString())
    return value === undefined ? undefined : decoder.decode(value)
  }

  /**
   * Streams an upload into the store (docs/pdp.md): counts its bytes against
   * the park quota as they arrive, computes the piece CID, checks it against
   * what was expected, checks on the side whether the bytes are a CARv1, and
   * commits the piece with one batch. An upload of a piece already held keeps
   * the held copy. Returns the piece CID v2 and the byte count.
   */
  async put (request: StoreRequest): Promise<{ cid: CID, size: number }> {
    const { reservation, signal } = request
    const carSide = new PassThrough({ highWaterMark: 4 << 20 })
    let notCar = false
    let check: UploadCheck | undefined
    // a piece is any bytes: a failed CAR check only means it is not served on /ipfs/
    const checked = checkUploadCar(carSide, undefined).then((result) => { check = result }, () => { notCar = true; carSide.destroy() })

    async function * counted (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of request.body) {
          reservation.grow(chunk.length)
          if (!notCar && !carSide.destroyed) {
            if (!carSide.write(chunk)) await new Promise<void>((resolve) => { carSide.once('drain', resolve); carSide.once('close', resolve) })
          }
          yield chunk
        }
        if (!carSide.destroyed) carSide.end()
      } finally {
        if (!carSide.writableEnded) carSide.destroy()
      }
    }

    const staged = await this.store.stage(counted(), { signal })
    const cid = staged.piece.cid
    const piece = cid.toString()
    try {
      if (staged.size < MIN_PIECE_BYTES) throw new CairnError('ERR_UPLOAD_TOO_SMALL', `a piece is at least ${MIN_PIECE_BYTES} bytes; the upload had ${staged.size}`)
      const expect = request.expect
      if (expect !== undefined && staged.size !== expect.size) {
        throw new CairnError('ERR_CONTENT_LENGTH', `received ${staged.size} bytes; piece ${expect.cid.toString()} has ${expect.size}`)
      }
      if (expect !== undefined && !cid.equals(expect.cid)) {
        throw new CairnError('ERR_PIECE_CID_MISMATCH', `the bytes have piece CID ${piece}, not ${String(expect.cid)}`)
      }
      await checked
      signal.throwIfAborted()
    } catch (err) {
      await staged.abort()
      throw err
    }
    await this.exclusive(async () => {
      const held = await this.live(piece)
      if (held !== undefined) {
        await staged.abort()
        if (request.findable && !held.findable) await this.update(async (tx) => ({ ...await this.refreshOps(tx, piece, { findable: true }, false), result: undefined }))
        return
      }
      await staged.commit()
      this.options.onCommitted?.(piece)
      let kept: boolean
      try {
        kept = await this.update(async (tx) => await this.storeOps(tx, piece, staged.size, staged.piece.cidV1.toString(), request, check))
      } catch (err) {
        // nothing committed: nothing names the renamed file, and nothing may serve it
        await rm(this.store.path(piece), { force: true }).catch(() => {})
        throw err
      }
      // on a cluster another node held it already: that copy serves it, this one goes
      if (!kept) await rm(this.store.path(piece), { force: true }).catch(() => {})
    })
    return { cid, size: staged.size }
  }

  /**
   * Runs `fn` in a transaction of the state store holding the ledger head
   * (see the top of this file), writes the ops it returns, and then runs their
   * `settle` (the quota's mirror of the counters).
   */
  private async update<T> (fn: (tx: StateTransaction) => Promise<{ ops: WriteOp[], settle?: () => void, result: T }>): Promise<T> {
    let settle: (() => void) | undefined
    const result = await this.state.transaction(async (tx) => {
      await tx.lock(locks.ledgerHead)
      const out = await fn(tx)
      for (const op of out.ops) {
        if (op.type === 'put') tx.put(op.space, op.key, op.value)
        else tx.del(op.space, op.key)
      }
      settle = out.settle
      return out.result
    })
    settle?.()
    return result
  }

  /**
   * The writes that record a piece just renamed into the store. False when a
   * live record is there already (on a cluster, another node stored it
   * meanwhile): then only the request's findability is added.
   */
  private async storeOps (tx: StateTransaction, piece: string, size: number, v1: string, request: StoreRequest, check: UploadCheck | undefined): Promise<{ ops: WriteOp[], settle?: () => void, result: boolean }> {
    const held = await this.live(piece, tx)
    if (held !== undefined) {
      if (!request.findable || held.findable) return { ops: [], result: false }
      return { ...await this.refreshOps(tx, piece, { findable: true }, false), result: false }
    }
    // an expired record not swept yet gives way to the new upload
    const stale = await this.record(piece, tx)
    const now = this.now()
    const record: PieceRecord = { size, client: request.client, parkedAt: now, expiresAt: now + this.options.ttlSeconds, findable: request.findable, v1 }
    const ops: WriteOp[] = stale === undefined ? [] : await this.dropOps(tx, piece, stale)
    if (check !== undefined) {
      record.car = { root: check.root.toString(), canonical: check.canonical, blocks: check.blocks.length }
      for (const { cid: block, offset, length } of check.blocks) {
        ops.push({ type: 'put', space: spaces.pdpBlocks, key: `${block.toString()}!${piece}`, value: dagCBOR.encode({ offset, length }) })
      }
      ops.push({ type: 'put', space: spaces.pdpPieceBlocks, key: piece, value: dagCBOR.encode(check.blocks.map((b) => b.cid.toString())) })
      if (check.canonical) ops.push({ type: 'put', space: spaces.pdpDags, key: `${check.root.toString()}!${piece}`, value: EMPTY })
    }
    ops.push({ type: 'put', space: spaces.pdpPieces, key: piece, value: dagCBOR.encode(record) })
    ops.push({ type: 'put', space: spaces.pdpPiecesV1, key: record.v1, value: encoder.encode(piece) })
    ops.push({ type: 'put', space: spaces.pdpExpiry, key: expiryKey(record.expiresAt, piece), value: EMPTY })
    if (this.options.cluster !== undefined) ops.push({ type: 'put', space: spaces.pieceLocations, key: locationKey(piece, this.options.cluster.node), value: EMPTY })
    const usage = await this.usageOps(tx, [[request.client, BigInt(size)], ...(stale === undefined ? [] : [[stale.client, -BigInt(stale.size)] as [string, bigint]])])
    return { ops: [...ops, ...usage.ops], settle: usage.settle, result: true }
  }

  /** The delete operations of everything a piece's record names (not the usage counters). */
  private async dropOps (reader: StateReader, piece: string, record: PieceRecord): Promise<WriteOp[]> {
    const ops: WriteOp[] = [
      { type: 'del', space: spaces.pdpPieces, key: piece },
      { type: 'del', space: spaces.pdpPiecesV1, key: record.v1 },
      { type: 'del', space: spaces.pdpExpiry, key: expiryKey(record.expiresAt, piece) }
    ]
    if (record.car !== undefined) {
      const listed = await reader.get(spaces.pdpPieceBlocks, piece)
      for (const block of listed === undefined ? [] : dagCBOR.decode(listed) as string[]) ops.push({ type: 'del', space: spaces.pdpBlocks, key: `${block}!${piece}` })
      ops.push({ type: 'del', space: spaces.pdpPieceBlocks, key: piece })
      ops.push({ type: 'del', space: spaces.pdpDags, key: `${record.car.root}!${piece}` })
    }
    if (this.options.cluster !== undefined) {
      for await (const [key] of reader.iterate(spaces.pieceLocations, { gt: `${piece}/`, lt: `${piece}/\uffff` })) ops.push({ type: 'del', space: spaces.pieceLocations, key })
    }
    return ops
  }

  /**
   * Counter updates for `[client, delta]` pairs, from the counters as `reader`
   * holds them (on a cluster, other nodes move them too), and the step that
   * mirrors the new values into this node's quota once committed.
   */
  private async usageOps (reader: StateReader, deltas: Array<[string, bigint]>): Promise<{ ops: WriteOp[], settle: () => void }> {
    const counter = async (space: typeof spaces.pdpUsage, key: string): Promise<bigint> => {
      const value = await reader.get(space, key)
      return value === undefined ? 0n : BigInt(decoder.decode(value))
    }
    const next = new Map<string, bigint>()
    let total = await counter(spaces.pdpUsageTotal, TOTAL)
    for (const [client, delta] of deltas) {
      next.set(client, (next.get(client) ?? await counter(spaces.pdpUsage, client)) + delta)
      total += delta
    }
    const ops: WriteOp[] = [...next].map(([client, bytes]) => bytes === 0n
      ? { type: 'del', space: spaces.pdpUsage, key: client }
      : { type: 'put', space: spaces.pdpUsage, key: client, value: encoder.encode(bytes.toString()) })
    ops.push({ type: 'put', space: spaces.pdpUsageTotal, key: TOTAL, value: encoder.encode(total.toString()) })
    return { ops, settle: () => { for (const [client, bytes] of next) this.quota.load(client, bytes) } }
  }

  /** Runs `fn` alone among the writers of piece records and counters (a data-set change that references pieces). */
  async serially<T> (fn: () => Promise<T>): Promise<T> {
    return await this.exclusive(fn)
  }

  /**
   * The writes that make more (`+1`) or fewer (`-1`) data-set pieces be each
   * given piece, for a batch the caller commits with its ledger entry while it
   * holds `serially` (docs/pdp.md "Data sets"): a referenced piece never
   * expires and leaves the park quota; one no data set references any more is
   * parked again with a fresh TTL. `settle` mirrors the counters into the quota
   * once the batch is committed. Throws ERR_PIECE_NOT_FOUND for a piece not
   * held (expired, never uploaded, or its upload never finalized). Reads
   * through `reader`, so that the caller can check them again where it
   * commits (src/pdp/reads.ts).
   */
  async referenceOps (changes: ReadonlyArray<readonly [string, 1 | -1]>, reader: StateReader = this.state): Promise<{ ops: WriteOp[], settle: () => void, records: Map<string, PieceRecord> }> {
    const deltas = new Map<string, number>()
    for (const [piece, delta] of changes) deltas.set(piece, (deltas.get(piece) ?? 0) + delta)
    const ops: WriteOp[] = []
    const usage: Array<[string, bigint]> = []
    const records = new Map<string, PieceRecord>()
    const now = this.now()
    for (const [piece, delta] of deltas) {
      const record = await this.live(piece, reader)
      if (record === undefined || !record.findable) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${piece} is not held by this provider (upload it, and finalize a streaming upload, before adding it to a data set)`)
      records.set(piece, record)
      if (delta === 0) continue
      const before = record.refs ?? 0
      const after = Math.max(0, before + delta)
      const next: PieceRecord = { ...record, refs: after }
      if (after === 0) delete next.refs
      if (before === 0 && after > 0) {
        next.expiresAt = 0
        ops.push({ type: 'del', space: spaces.pdpExpiry, key: expiryKey(record.expiresAt, piece) })
        usage.push([record.client, -BigInt(record.size)])
      } else if (before > 0 && after === 0) {
        next.expiresAt = now + this.options.ttlSeconds
        ops.push({ type: 'put', space: spaces.pdpExpiry, key: expiryKey(next.expiresAt, piece), value: EMPTY })
        usage.push([record.client, BigInt(record.size)])
      }
      ops.push({ type: 'put', space: spaces.pdpPieces, key: piece, value: dagCBOR.encode(next) })
    }
    const counted = usage.length === 0 ? { ops: [], settle: () => {} } : await this.usageOps(reader, usage)
    return { ops: [...ops, ...counted.ops], settle: counted.settle, records }
  }

  /**
   * After a data-set change that references `pieces` committed: on a cluster,
   * a copy of each to a second node (docs/cluster.md "PDP"). A parked piece
   * is temporary and stays on the node that received it.
   */
  referenced (pieces: Iterable<string>): void {
    const copy = this.options.cluster?.copy
    if (copy !== undefined) for (const piece of new Set(pieces)) copy(piece)
  }

  /** Marks a stored piece findable (a streaming upload was finalized) and restarts its park TTL. */
  async announce (pieceCid: string): Promise<boolean> {
    return await this.exclusive(async () => await this.update(async (tx) => {
      if (await this.live(pieceCid, tx) === undefined) return { ops: [], result: false }
      return { ...await this.refreshOps(tx, pieceCid, { findable: true }, true), result: true }
    }))
  }

  /** Restarts a parked piece's TTL (a client asked to store it again). */
  async touch (pieceCid: string): Promise<void> {
    await this.exclusive(async () => await this.update(async (tx) => {
      const record = await this.live(pieceCid, tx)
      if (record === undefined || record.expiresAt === 0) return { ops: [], result: undefined }
      return { ...await this.refreshOps(tx, pieceCid, {}, true), result: undefined }
    }))
  }

  /** The writes that change a live piece's record by `change`, with a fresh park TTL when `restart` and the piece is parked. */
  private async refreshOps (reader: StateReader, piece: string, change: Partial<PieceRecord>, restart: boolean): Promise<{ ops: WriteOp[] }> {
    const record = await this.record(piece, reader) as PieceRecord
    const next: PieceRecord = { ...record, ...change }
    const ops: WriteOp[] = []
    if (restart && record.expiresAt !== 0) {
      next.expiresAt = this.now() + this.options.ttlSeconds
      ops.push({ type: 'del', space: spaces.pdpExpiry, key: expiryKey(record.expiresAt, piece) })
      ops.push({ type: 'put', space: spaces.pdpExpiry, key: expiryKey(next.expiresAt, piece), value: EMPTY })
    }
    ops.push({ type: 'put', space: spaces.pdpPieces, key: piece, value: dagCBOR.encode(next) })
    return { ops }
  }

  /**
   * Removes expired parked pieces, at most `limit` a round, in expiry order:
   * the keys in one transaction, then the file. Returns how many went. On a
   * cluster a node removes only the pieces it holds (or that no node holds),
   * since only it can remove the file; a dead node's parked pieces wait for it.
   */
  async sweep (limit = 256): Promise<number> {
    const now = this.now()
    const due: string[] = []
    for await (const [key] of this.state.iterate(spaces.pdpExpiry, { lt: `${String(now + 1).padStart(16, '0')}`, limit: limit * 4 })) due.push(key)
    let removed = 0
    for (const key of due) {
      if (removed >= limit) break
      const piece = key.slice(17)
      const gone = await this.exclusive(async () => await this.update(async (tx) => {
        const record = await this.record(piece, tx)
        if (record === undefined || record.expiresAt === 0 || record.expiresAt > now || expiryKey(record.expiresAt, piece) !== key) {
          // a stale queue entry: the piece was refreshed, referenced or is already gone
          return { ops: [{ type: 'del', space: spaces.pdpExpiry, key }], result: false }
        }
        if (!await this.mayDrop(tx, piece)) return { ops: [], result: false }
        return { ...await this.dropAll(tx, piece, record), result: true }
      }))
      if (gone) {
        await this.removeFiles(piece)
        removed++
      }
    }
    return removed
  }

  /** On a cluster: whether this node holds the piece, or no node does (see `sweep`). */
  private async mayDrop (reader: StateReader, piece: string): Promise<boolean> {
    const cluster = this.options.cluster
    if (cluster === undefined) return true
    let holders = 0
    for await (const [key] of reader.iterate(spaces.pieceLocations, { gt: `${piece}/`, lt: `${piece}/\uffff` })) {
      if (key === locationKey(piece, cluster.node)) return true
      holders++
    }
    return holders === 0
  }

  /**
   * Removes a parked piece now, as the sweep would at its expiry (the
   * provider self-check's synthetic piece, src/provider/selfcheck-roundtrip.ts).
   * A piece a data set references stays. Returns whether it went.
   */
  async discard (pieceCid: string): Promise<boolean> {
    const gone = await this.exclusive(async () => await this.update(async (tx) => {
      const record = await this.record(pieceCid, tx)
      if (record === undefined || record.expiresAt === 0) return { ops: [], result: false }
      return { ...await this.dropAll(tx, pieceCid, record), result: true }
    }))
    if (gone) await this.removeFiles(pieceCid)
    return gone
  }

  /** A parked piece's keys and its usage given back. */
  private async dropAll (reader: StateReader, piece: string, record: PieceRecord): Promise<{ ops: WriteOp[], settle: () => void }> {
    const usage = await this.usageOps(reader, [[record.client, -BigInt(record.size)]])
    return { ops: [...await this.dropOps(reader, piece, record), ...usage.ops], settle: usage.settle }
  }

  /** A dropped piece's file and layer cache. */
  private async removeFiles (piece: string): Promise<void> {
    await rm(this.store.path(piece), { force: true })
    await rm(`${this.store.dir}/${piece}.layers`, { force: true })
  }

  /**
   * The leaf proofs of the given leaves of a piece another node of the
   * cluster holds, computed there and checked here against the piece CID
   * (docs/cluster.md "PDP"): this node keeps no copy. Undefined off a
   * cluster, or for a piece with no live record.
   */
  async proveElsewhere (pieceCid: string, leaves: readonly number[]): Promise<LeafProof[] | undefined> {
    const cluster = this.options.cluster
    if (cluster === undefined || await this.live(pieceCid) === undefined) return undefined
    return await cluster.proveLeaves(pieceCid, leaves)
  }

  /** Deletes files in the store that no record names (a crash between rename and batch, or between batch and delete). */
  async removeOrphans (): Promise<number> {
    let removed = 0
    for (const name of await readdir(this.store.dir)) {
      // a piece's layer cache (`.layers`, built when a data set's piece is proven) goes with the piece
      const piece = name.replace(/\.(car|layers)$/, '')
      if (!/^b[a-z2-7]+$/.test(piece) || (await this.record(piece)) === undefined || !await this.located(piece)) {
        await rm(`${this.store.dir}/${name}`, { force: true, recursive: true })
        removed++
      }
    }
    return removed
  }

  /** Whether this node is recorded to hold the piece: always off a cluster; on one, a file without its location is left from a drop and goes. */
  private async located (piece: string): Promise<boolean> {
    const cluster = this.options.cluster
    return cluster === undefined || await this.state.get(spaces.pieceLocations, locationKey(piece, cluster.node)) !== undefined
  }

  // PieceSource: findable, unexpired pieces only; on a cluster, read from the node that holds it when this one does not
  async open (pieceCid: CID): Promise<PieceHandle | undefined> {
    const piece = await this.v2Of(pieceCid)
    if (piece === undefined) return undefined
    const record = await this.live(piece)
    if (record === undefined || !record.findable) return undefined
    const reader = await this.store.open(piece)
    if (reader === undefined) return await this.options.cluster?.remote(piece, record.size)
    return { size: reader.size, createReadStream: (start, end) => reader.createReadStream(start, end), openFile: reader.openFile }
  }

  // BlockSource: blocks of findable, unexpired CAR pieces, checked against their CID as they are read
  async get (cid: CID): Promise<Uint8Array | undefined> {
    const prefix = `${cid.toString()}!`
    for await (const [key, value] of this.state.iterate(spaces.pdpBlocks, { gte: prefix, lt: prefix + '\xff', limit: 8 })) {
      const piece = key.slice(prefix.length)
      const record = await this.live(piece)
      if (record === undefined || !record.findable) continue
      const at = dagCBOR.decode(value) as { offset: number, length: number }
      const out = await this.readAt(piece, record.size, at).catch(() => undefined)
      if (out !== undefined && out.length === at.length && matches(cid, out)) return out
    }
    return undefined
  }

  /** Bytes of a piece at `at`: from the local file, or on a cluster from the node that holds it. */
  private async readAt (piece: string, size: number, at: { offset: number, length: number }): Promise<Uint8Array | undefined> {
    const handle = await openFile(this.store.path(piece), 'r').catch(() => undefined)
    if (handle === undefined) {
      const remote = await this.options.cluster?.remote(piece, size)
      if (remote === undefined) return undefined
      const chunks: Uint8Array[] = []
      for await (const chunk of remote.createReadStream(at.offset, at.offset + at.length - 1)) chunks.push(chunk as Uint8Array)
      return Buffer.concat(chunks)
    }
    try {
      const out = new Uint8Array(at.length)
      const { bytesRead } = await handle.read(out, 0, at.length, at.offset)
      return out.subarray(0, bytesRead)
    } finally {
      await handle.close()
    }
  }

  async dag (root: CID): Promise<PieceHandle | undefined> {
    const prefix = `${root.toString()}!`
    for await (const [key] of this.state.iterate(spaces.pdpDags, { gte: prefix, lt: prefix + '\xff', limit: 8 })) {
      const handle = await this.open(CID.parse(key.slice(prefix.length)))
      if (handle !== undefined) return handle
    }
    return undefined
  }
}
