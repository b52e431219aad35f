/**
 * The pieces PDP clients upload (docs/pdp.md): raw bytes, not necessarily CARs,
 * kept in their own piece store (`pdp/pieces/` in the repo) and their own key
 * space (`pdp!`). A piece no data set references is parked: it expires after
 * the park TTL, counts against the park quota, and a bounded sweep removes it.
 *
 * A piece is stored all or nothing, as deal pieces are: the body is staged in
 * a temporary file while its commitment is computed, fsync'd, renamed into the
 * store, and then its record, v1 alias, expiry, usage counters and (for a
 * CARv1) block index are written in one synced batch. A crash before the batch
 * leaves a file no key names, which `removeOrphans` deletes at start.
 */
import { mkdir, open as openFile, readdir, rm } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { matches } from '../car/index.js'
import { CairnError } from '../errors.js'
import type { BlockSource, PieceHandle, PieceSource } from '../provider/interface.js'
import { checkUploadCar, type UploadCheck } from '../provider/upload-check.js'
import type { Database } from '../repo/repo.js'
import type { PieceStore } from '../store/pieces.js'
import type { ParkQuota, Reservation } from './quota.js'

/** Curio's limits: one Fr32 quad (127 bytes, padded 128) up to 1 GiB padded (× 127/128 unpadded). */
export const MIN_PIECE_BYTES = 127
export const MAX_PIECE_BYTES = 1_065_353_216

const K = {
  piece: 'pdp!piece!',
  pieceV1: 'pdp!piece-v1!',
  expiry: 'pdp!expiry!',
  usage: 'pdp!usage!',
  usageTotal: 'pdp!usage-total',
  block: 'pdp!block!',
  pieceBlocks: 'pdp!piece-blocks!',
  dag: 'pdp!dag!'
} as const

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
  return `${K.expiry}${String(at).padStart(16, '0')}!${piece}`
}

export type Op = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

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
}

export class PdpPieces implements PieceSource, BlockSource {
  /** one writer of records and counters at a time: a batch's read-modify-write of the usage counters must not interleave */
  private writing: Promise<unknown> = Promise.resolve()
  private readonly now: () => number

  constructor (
    private readonly db: Database,
    readonly store: PieceStore,
    readonly quota: ParkQuota,
    private readonly options: PdpPiecesOptions
  ) {
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000))
  }

  /** Creates the store's directory and loads the usage counters into the quota. */
  async load (): Promise<void> {
    await mkdir(this.store.dir, { recursive: true })
    for await (const [key, value] of this.db.iterator({ gte: K.usage, lt: K.usage + '\xff' })) {
      this.quota.load(key.slice(K.usage.length), BigInt(decoder.decode(value)))
    }
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn)
    this.writing = run.catch(() => {})
    return await run
  }

  async record (pieceCid: string): Promise<PieceRecord | undefined> {
    const value = await this.db.get(K.piece + pieceCid)
    return value === undefined ? undefined : dagCBOR.decode(value) as PieceRecord
  }

  /** A record that is still live: not expired (a sweep may not have come by yet). */
  async live (pieceCid: string): Promise<PieceRecord | undefined> {
    const record = await this.record(pieceCid)
    if (record === undefined || (record.expiresAt !== 0 && record.expiresAt <= this.now())) return undefined
    return record
  }

  /** The v2 form of a piece CID given as v2 or v1 (through the alias), or undefined. */
  async v2Of (cid: CID): Promise<string | undefined> {
    if (cid.code !== 0xf101) return cid.toString()
    const value = await this.db.get(K.pieceV1 + cid.toString())
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
        if (request.findable && !held.findable) await this.db.put(K.piece + piece, dagCBOR.encode({ ...held, findable: true }), { sync: true })
        return
      }
      // an expired record not swept yet gives way to the new upload
      const stale = await this.record(piece)
      await staged.commit()
      this.options.onCommitted?.(piece)
      const now = this.now()
      const record: PieceRecord = {
        size: staged.size,
        client: request.client,
        parkedAt: now,
        expiresAt: now + this.options.ttlSeconds,
        findable: request.findable,
        v1: staged.piece.cidV1.toString()
      }
      const ops: Op[] = stale === undefined ? [] : this.dropOps(piece, stale)
      if (check !== undefined) {
        record.car = { root: check.root.toString(), canonical: check.canonical, blocks: check.blocks.length }
        for (const { cid: block, offset, length } of check.blocks) {
          ops.push({ type: 'put', key: `${K.block}${block.toString()}!${piece}`, value: dagCBOR.encode({ offset, length }) })
        }
        ops.push({ type: 'put', key: K.pieceBlocks + piece, value: dagCBOR.encode(check.blocks.map((b) => b.cid.toString())) })
        if (check.canonical) ops.push({ type: 'put', key: `${K.dag}${check.root.toString()}!${piece}`, value: new Uint8Array() })
      }
      ops.push({ type: 'put', key: K.piece + piece, value: dagCBOR.encode(record) })
      ops.push({ type: 'put', key: K.pieceV1 + record.v1, value: encoder.encode(piece) })
      ops.push({ type: 'put', key: expiryKey(record.expiresAt, piece), value: new Uint8Array() })
      const usage = this.usageOps([[request.client, BigInt(staged.size)], ...(stale === undefined ? [] : [[stale.client, -BigInt(stale.size)] as [string, bigint]])])
      try {
        await this.db.batch([...ops, ...usage.ops], { sync: true })
      } catch (err) {
        // the batch did not commit: nothing names the renamed file, and nothing may serve it
        await rm(this.store.path(piece), { force: true }).catch(() => {})
        throw err
      }
      usage.settle()
    })
    return { cid, size: staged.size }
  }

  /** The delete operations of everything a piece's record names (not the usage counters). */
  private dropOps (piece: string, record: PieceRecord): Op[] {
    const ops: Op[] = [
      { type: 'del', key: K.piece + piece },
      { type: 'del', key: K.pieceV1 + record.v1 },
      { type: 'del', key: expiryKey(record.expiresAt, piece) }
    ]
    if (record.car !== undefined) {
      ops.push({ type: 'del', key: K.pieceBlocks + piece })
      ops.push({ type: 'del', key: `${K.dag}${record.car.root}!${piece}` })
    }
    return ops
  }

  /** Counter updates for `[client, delta]` pairs, and the step that mirrors them into the quota once committed. */
  private usageOps (deltas: Array<[string, bigint]>): { ops: Op[], settle: () => void } {
    const next = new Map<string, bigint>()
    let total = this.quota.total
    for (const [client, delta] of deltas) {
      next.set(client, (next.get(client) ?? this.quota.storedBy(client)) + delta)
      total += delta
    }
    const ops: Op[] = [...next].map(([client, bytes]) => bytes === 0n
      ? { type: 'del', key: K.usage + client }
      : { type: 'put', key: K.usage + client, value: encoder.encode(bytes.toString()) })
    ops.push({ type: 'put', key: K.usageTotal, value: encoder.encode(total.toString()) })
    return { ops, settle: () => { for (const [client, delta] of deltas) this.quota.settle(client, delta) } }
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
   * held (expired, never uploaded, or its upload never finalized).
   */
  async referenceOps (changes: ReadonlyArray<readonly [string, 1 | -1]>): Promise<{ ops: Op[], settle: () => void, records: Map<string, PieceRecord> }> {
    const deltas = new Map<string, number>()
    for (const [piece, delta] of changes) deltas.set(piece, (deltas.get(piece) ?? 0) + delta)
    const ops: Op[] = []
    const usage: Array<[string, bigint]> = []
    const records = new Map<string, PieceRecord>()
    const now = this.now()
    for (const [piece, delta] of deltas) {
      const record = await this.live(piece)
      if (record === undefined || !record.findable) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${piece} is not held by this provider (upload it, and finalize a streaming upload, before adding it to a data set)`)
      records.set(piece, record)
      if (delta === 0) continue
      const before = record.refs ?? 0
      const after = Math.max(0, before + delta)
      const next: PieceRecord = { ...record, refs: after }
      if (after === 0) delete next.refs
      if (before === 0 && after > 0) {
        next.expiresAt = 0
        ops.push({ type: 'del', key: expiryKey(record.expiresAt, piece) })
        usage.push([record.client, -BigInt(record.size)])
      } else if (before > 0 && after === 0) {
        next.expiresAt = now + this.options.ttlSeconds
        ops.push({ type: 'put', key: expiryKey(next.expiresAt, piece), value: new Uint8Array() })
        usage.push([record.client, BigInt(record.size)])
      }
      ops.push({ type: 'put', key: K.piece + piece, value: dagCBOR.encode(next) })
    }
    const counted = usage.length === 0 ? { ops: [], settle: () => {} } : this.usageOps(usage)
    return { ops: [...ops, ...counted.ops], settle: counted.settle, records }
  }

  /** Marks a stored piece findable (a streaming upload was finalized) and restarts its park TTL. */
  async announce (pieceCid: string): Promise<boolean> {
    return await this.exclusive(async () => {
      const record = await this.live(pieceCid)
      if (record === undefined) return false
      await this.refreshOps(pieceCid, record, { findable: true })
      return true
    })
  }

  /** Restarts a parked piece's TTL (a client asked to store it again). */
  async touch (pieceCid: string): Promise<void> {
    await this.exclusive(async () => {
      const record = await this.live(pieceCid)
      if (record !== undefined && record.expiresAt !== 0) await this.refreshOps(pieceCid, record, {})
    })
  }

  private async refreshOps (piece: string, record: PieceRecord, change: Partial<PieceRecord>): Promise<void> {
    const next: PieceRecord = { ...record, ...change }
    const ops: Op[] = []
    if (record.expiresAt !== 0) {
      next.expiresAt = this.now() + this.options.ttlSeconds
      ops.push({ type: 'del', key: expiryKey(record.expiresAt, piece) })
      ops.push({ type: 'put', key: expiryKey(next.expiresAt, piece), value: new Uint8Array() })
    }
    ops.push({ type: 'put', key: K.piece + piece, value: dagCBOR.encode(next) })
    await this.db.batch(ops, { sync: true })
  }

  /**
   * Removes expired parked pieces, at most `limit` a round, in expiry order:
   * the keys in one batch, then the file. Returns how many went.
   */
  async sweep (limit = 256): Promise<number> {
    const now = this.now()
    const due: string[] = []
    for await (const key of this.db.keys({ gte: K.expiry, lt: `${K.expiry}${String(now + 1).padStart(16, '0')}`, limit })) due.push(key)
    let removed = 0
    for (const key of due) {
      const piece = key.slice(K.expiry.length + 17)
      const gone = await this.exclusive(async () => {
        const record = await this.record(piece)
        if (record === undefined || record.expiresAt === 0 || record.expiresAt > now || expiryKey(record.expiresAt, piece) !== key) {
          // a stale queue entry: the piece was refreshed, referenced or is already gone
          await this.db.del(key)
          return false
        }
        await this.drop(piece, record)
        return true
      })
      if (gone) removed++
    }
    return removed
  }

  /**
   * Removes a parked piece now, as the sweep would at its expiry (the
   * provider self-check's synthetic piece, src/provider/selfcheck-roundtrip.ts).
   * A piece a data set references stays. Returns whether it went.
   */
  async discard (pieceCid: string): Promise<boolean> {
    return await this.exclusive(async () => {
      const record = await this.record(pieceCid)
      if (record === undefined || record.expiresAt === 0) return false
      await this.drop(pieceCid, record)
      return true
    })
  }

  /** A parked piece's keys in one batch, its usage given back, then its file and layer cache. Call inside `exclusive`. */
  private async drop (piece: string, record: PieceRecord): Promise<void> {
    const ops = this.dropOps(piece, record)
    if (record.car !== undefined) {
      const listed = await this.db.get(K.pieceBlocks + piece)
      for (const block of listed === undefined ? [] : dagCBOR.decode(listed) as string[]) ops.push({ type: 'del', key: `${K.block}${block}!${piece}` })
    }
    const usage = this.usageOps([[record.client, -BigInt(record.size)]])
    await this.db.batch([...ops, ...usage.ops], { sync: true })
    usage.settle()
    await rm(this.store.path(piece), { force: true })
    await rm(`${this.store.dir}/${piece}.layers`, { force: true })
  }

  /** Deletes files in the store that no record names (a crash between rename and batch, or between batch and delete). */
  async removeOrphans (): Promise<number> {
    let removed = 0
    for (const name of await readdir(this.store.dir)) {
      // a piece's layer cache (`.layers`, built when a data set's piece is proven) goes with the piece
      const piece = name.replace(/\.(car|layers)$/, '')
      if (!/^b[a-z2-7]+$/.test(piece) || (await this.record(piece)) === undefined) {
        await rm(`${this.store.dir}/${name}`, { force: true, recursive: true })
        removed++
      }
    }
    return removed
  }

  // PieceSource: findable, unexpired pieces only
  async open (pieceCid: CID): Promise<PieceHandle | undefined> {
    const piece = await this.v2Of(pieceCid)
    if (piece === undefined) return undefined
    const record = await this.live(piece)
    if (record === undefined || !record.findable) return undefined
    const reader = await this.store.open(piece)
    if (reader === undefined) return undefined
    return { size: reader.size, createReadStream: (start, end) => reader.createReadStream(start, end), openFile: reader.openFile }
  }

  // BlockSource: blocks of findable, unexpired CAR pieces, checked against their CID as they are read
  async get (cid: CID): Promise<Uint8Array | undefined> {
    const prefix = `${K.block}${cid.toString()}!`
    for await (const [key, value] of this.db.iterator({ gte: prefix, lt: prefix + '\xff', limit: 8 })) {
      const piece = key.slice(prefix.length)
      const record = await this.live(piece)
      if (record === undefined || !record.findable) continue
      const at = dagCBOR.decode(value) as { offset: number, length: number }
      const handle = await openFile(this.store.path(piece), 'r').catch(() => undefined)
      if (handle === undefined) continue
      try {
        const out = new Uint8Array(at.length)
        const { bytesRead } = await handle.read(out, 0, at.length, at.offset)
        if (bytesRead === at.length && matches(cid, out)) return out
      } finally {
        await handle.close()
      }
    }
    return undefined
  }

  async dag (root: CID): Promise<PieceHandle | undefined> {
    const prefix = `${K.dag}${root.toString()}!`
    for await (const key of this.db.keys({ gte: prefix, lt: prefix + '\xff', limit: 8 })) {
      const handle = await this.open(CID.parse(key.slice(prefix.length)))
      if (handle !== undefined) return handle
    }
    return undefined
  }
}
