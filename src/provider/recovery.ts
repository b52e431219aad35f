/**
 * Start-up recovery of a provider's repo (docs/protocol.md "Upload": a failed or
 * interrupted upload leaves no piece, no index entry and no active deal; docs/ledger.md: a crash at any moment leaves the ledger at a whole entry boundary).
 *
 * The upload path orders its writes so that a crash leaves at worst debris that
 * nothing serves: a temporary file in `tmp/`, or a piece renamed into `pieces/`
 * whose ledger batch never committed. Recovery runs before the provider
 * listens and restores the invariants the rest of the node relies on:
 *
 * - `tmp/` holds nothing of a writer that is gone (partial uploads are never
 *   valid data; a live command's spool, its pid in the name, is left alone);
 * - every file in `pieces/` belongs to an indexed piece or to one whose last
 *   deal ended and that waits out its retention grace (`gc!`, removed by the
 *   deal lifecycle, src/provider/expiry.ts); any other piece (and its layer
 *   cache) is moved to `quarantine/`, never served, never silently deleted;
 * - every indexed piece of an active deal is present with the size the index
 *   recorded (and, with `verify: 'full'`, hashes to its piece CID); one that is
 *   missing or wrong is reported, its deal recorded `deal-failed` and its
 *   block and piece index entries removed in the same ledger batch, so the
 *   gateway and the piece route stop serving it at once;
 * - no block, piece-v1 or whole-DAG index entry points at a piece that is not indexed.
 */
import { createReadStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { createPieceHasher } from '../../proofs/index.js'
import type { FailedPiece } from './interface.js'
import type { ExtraOp, Ledger } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'
import type { PieceStore } from '../store/pieces.js'
import { writerGone } from '../fs/temp.js'
import { BLOCK_PREFIX, DAG_PREFIX, GC_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX } from '../state/spaces.js'

export interface RecoveryOptions {
  db: Database
  ledger: Ledger
  store: PieceStore
  /** 'size' (default): presence and byte count of every piece; 'full': also re-hash each piece against its CID */
  verify?: 'size' | 'full'
  log?: (event: string, fields?: Record<string, unknown>) => void
}

export type { FailedPiece }

export interface RecoveryReport {
  tempFilesRemoved: number
  /** piece files (and layer caches) with no index entry, moved to quarantine/ */
  quarantined: string[]
  /** active deals whose piece was missing or wrong, now failed and no longer served */
  failed: FailedPiece[]
  /** block, piece-v1 and whole-DAG index entries that pointed at no indexed piece, removed */
  danglingBlocks: number
  piecesChecked: number
}

interface PieceRecord { deal: CID, size: number }

/** The directory beside `pieces/` where recovery moves what it will not serve. */
export function quarantineDir (store: PieceStore): string {
  return join(dirname(store.dir), 'quarantine')
}

async function * range (db: Database, prefix: string): AsyncGenerator<[string, Uint8Array]> {
  for await (const entry of db.iterator({ gte: prefix, lt: prefix + '\xff' })) yield entry
}

async function pieceHashesTo (path: string, pieceCid: string): Promise<boolean> {
  const hasher = createPieceHasher()
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>) await hasher.update(chunk)
  return (await hasher.digest()).cid.toString() === pieceCid
}

/**
 * Records a deal as failed because its piece is gone or wrong, and drops every
 * index entry that would serve the piece, in one ledger batch. The piece file,
 * if any, goes to quarantine/. Used at start-up and when a proof finds the
 * piece corrupt.
 */
export async function failPiece (options: Pick<RecoveryOptions, 'db' | 'ledger' | 'store'>, failure: FailedPiece): Promise<void> {
  const { db, ledger, store } = options
  const extra: ExtraOp[] = [{ type: 'del', key: PIECE_PREFIX + failure.piece }]
  for (const prefix of [PIECE_V1_PREFIX, DAG_PREFIX]) {
    for await (const [key, value] of range(db, prefix)) {
      if (new TextDecoder().decode(value) === failure.piece) extra.push({ type: 'del', key })
    }
  }
  for await (const [key, value] of range(db, BLOCK_PREFIX)) {
    if ((dagCBOR.decode(value) as { piece: string }).piece === failure.piece) extra.push({ type: 'del', key })
  }
  const deal = await ledger.deal(failure.deal)
  if (deal?.state === 'active') {
    await ledger.append('deal-failed', { deal: CID.parse(failure.deal), pieceCid: CID.parse(failure.piece), code: failure.code, reason: failure.reason }, extra)
  } else {
    await db.batch(extra.map((op) => ({ type: 'del' as const, key: op.key })), { sync: true })
  }
  await quarantine(store, failure.piece)
}

async function quarantine (store: PieceStore, pieceCid: string): Promise<string[]> {
  const moved: string[] = []
  const into = quarantineDir(store)
  for (const name of [`${pieceCid}.car`, `${pieceCid}.layers`]) {
    const from = join(store.dir, name)
    if (await stat(from).then(() => true, () => false)) {
      await mkdir(into, { recursive: true })
      await rename(from, join(into, `${name}.${Date.now()}`))
      moved.push(name)
    }
  }
  return moved
}

/**
 * Removes debris of writers that are gone from `tmp/` and from `pieces/`
 * (interrupted atomic writes), and moves every piece file (and layer cache)
 * `keep` does not claim to `quarantine/`: never served, never silently deleted.
 */
export async function sweepStore (store: PieceStore, keep: (piece: string) => boolean, log: NonNullable<RecoveryOptions['log']>, reason = 'no index entry'): Promise<{ tempFilesRemoved: number, quarantined: string[] }> {
  const out = { tempFilesRemoved: 0, quarantined: [] as string[] }
  // a temporary file whose writer still runs (a `get` spooling beside this start) is not debris (src/fs/temp.ts)
  await mkdir(store.tmpDir, { recursive: true })
  for (const name of await readdir(store.tmpDir)) {
    if (!writerGone(name)) continue
    await rm(join(store.tmpDir, name), { recursive: true, force: true })
    out.tempFilesRemoved++
  }
  // debris in pieces/: interrupted atomic writes, and pieces whose ledger batch never committed
  await mkdir(store.dir, { recursive: true })
  for (const name of await readdir(store.dir)) {
    const path = join(store.dir, name)
    if (name.startsWith('.') && name.endsWith('.tmp')) {
      if (!writerGone(name)) continue
      await rm(path, { force: true })
      out.tempFilesRemoved++
      continue
    }
    const m = /^(b[a-z2-7]+)\.(car|layers)$/.exec(name)
    if (m !== null && keep(m[1] as string)) continue
    const into = quarantineDir(store)
    await mkdir(into, { recursive: true })
    await rename(path, join(into, `${name}.${Date.now()}`))
    out.quarantined.push(name)
    log('recovery-quarantined', { file: name, reason })
  }
  return out
}

/** Brings a provider repo back to its invariants after any crash; see the module comment. */
export async function recoverProvider (options: RecoveryOptions): Promise<RecoveryReport> {
  const { db, store } = options
  const log = options.log ?? (() => {})
  const report: RecoveryReport = { tempFilesRemoved: 0, quarantined: [], failed: [], danglingBlocks: 0, piecesChecked: 0 }

  const indexed = new Map<string, PieceRecord>()
  for await (const [key, value] of range(db, PIECE_PREFIX)) {
    indexed.set(key.slice(PIECE_PREFIX.length), dagCBOR.decode(value) as PieceRecord)
  }

  // pieces no deal serves any more, kept until their retention grace ends: not debris
  const retained = new Set<string>()
  for await (const [key] of range(db, GC_PREFIX)) retained.add(key.slice(key.indexOf('/') + 1))

  const swept = await sweepStore(store, (piece) => indexed.has(piece) || retained.has(piece), log)
  report.tempFilesRemoved = swept.tempFilesRemoved
  report.quarantined = swept.quarantined

  for (const [piece, record] of indexed) {
    report.piecesChecked++
    const path = store.path(piece)
    const info = await stat(path).catch(() => undefined)
    let failure: Omit<FailedPiece, 'deal' | 'piece'> | undefined
    if (info === undefined) failure = { code: 'ERR_PIECE_NOT_FOUND', reason: `piece file ${piece}.car is missing` }
    else if (info.size !== record.size) failure = { code: 'ERR_PIECE_CORRUPT', reason: `piece file is ${info.size} bytes; the index recorded ${record.size}` }
    else if (options.verify === 'full' && !(await pieceHashesTo(path, piece))) failure = { code: 'ERR_PIECE_CORRUPT', reason: 'piece bytes no longer hash to the piece CID' }
    if (failure === undefined) continue
    const failed: FailedPiece = { deal: record.deal.toString(), piece, ...failure }
    await failPiece(options, failed)
    indexed.delete(piece)
    report.failed.push(failed)
    log('recovery-piece-failed', { ...failed })
  }

  const dangling: Array<{ type: 'del', key: string }> = []
  for await (const [key, value] of range(db, BLOCK_PREFIX)) {
    if (!indexed.has((dagCBOR.decode(value) as { piece: string }).piece)) dangling.push({ type: 'del', key })
  }
  for (const prefix of [PIECE_V1_PREFIX, DAG_PREFIX]) {
    for await (const [key, value] of range(db, prefix)) {
      if (!indexed.has(new TextDecoder().decode(value))) dangling.push({ type: 'del', key })
    }
  }
  if (dangling.length > 0) await db.batch(dangling, { sync: true })
  report.danglingBlocks = dangling.length
  return report
}
