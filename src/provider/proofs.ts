/**
 * Answering storage challenges (docs/protocol.md "Proofs") on the provider, and the signed proof
 * message both sides speak.
 *
 * Each stored piece keeps one layer of its CommP tree beside it
 * (`<pieceCid>.layers`, proofs/prove.ts `LayerCache`), written atomically once
 * when the piece is stored and rebuilt from the piece whenever it is missing or
 * does not match the piece CID. In memory a piece's cache takes at most about
 * 512 KiB whatever its size (proofs/prove.ts `LayerFile`: the upper layers
 * stay resident, the cached layer of a large piece is read from its file a
 * run at a time). A proof then reads only the challenged regions
 * of the piece file; a region that no longer hashes to its cached node means
 * the data is lost, and the provider says so (ERR_PIECE_CORRUPT) rather than
 * sign something that cannot verify.
 *
 * The proof message is provider-signed under `cairn/proof/v2\n` (v1 without
 * the provider's ledger head, as older ledgers hold it) and echoes the
 * challenge (deal, piece, seed, count), so a verifier can tell a replayed or
 * misdirected proof from a wrong one.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { buildLayerCache, LayerCache, LayerFile, proveLeaves, provePiece, type CachedLayers, type LeafProof, type PieceProof, type ReadAt } from '../../proofs/index.js'
import { CairnError, codes, type ErrorCode } from '../errors.js'
import { writeFileAtomic } from '../fs/atomic.js'
import type { LedgerHead } from '../protocol/interface.js'
import type { Signer } from '../protocol/signing.js'
import type { PieceStore } from '../store/pieces.js'
import { signProof, type ProofPayload, type SignedProof, type ChallengeBody } from '../protocol/proof.js'

// the proof message is the protocol's; these names stay importable from here
export { MAX_CHALLENGES, pieceProofOf, proofPayloadFrom, proofTag, signProof, type ChallengeBody, type LeafProofMessage, type ProofPayload, type SignedProof } from '../protocol/proof.js'

function joinPath (siblings: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(siblings.length * 32)
  siblings.forEach((s, i) => { out.set(s, i * 32) })
  return out
}

/** A proofs/ error as a node error with the same code when cairn knows it. */
function coded (err: unknown, fallback: ErrorCode, message: string): CairnError {
  if (err instanceof CairnError) return err
  const code = (err as { code?: unknown })?.code
  if (code === 'ERR_PIECE_READ' || code === 'ERR_PIECE_CORRUPT') return new CairnError('ERR_PIECE_CORRUPT', `${message}: ${(err as Error).message}`, { cause: err })
  if (typeof code === 'string' && Object.hasOwn(codes, code)) return new CairnError(code as ErrorCode, `${message}: ${(err as Error).message}`, { cause: err })
  return new CairnError(fallback, `${message}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

function readerOf (handle: FileHandle): ReadAt {
  return async (offset, length) => {
    const buffer = new Uint8Array(length)
    const { bytesRead } = await handle.read(buffer, 0, length, offset)
    return buffer.subarray(0, bytesRead)
  }
}

export interface PieceProverOptions {
  /** tree level of the cached layer (proofs/prove.ts DEFAULT_CACHE_LEVEL when unset) */
  cacheLevel?: number
  /** layer caches kept in memory (least recently used dropped first), each at most about 512 KiB */
  memoryCaches?: number
  /** most nodes of a cached layer held whole in memory (proofs/prove.ts RESIDENT_NODES when unset) */
  residentNodes?: number
}

type Resident = LayerCache | LayerFile

/** Layer caches and proofs for the pieces of one piece store. */
export class PieceProver {
  private readonly memory = new Map<string, Resident>()
  private readonly building = new Map<string, Promise<LayerCache>>()
  private readonly loading = new Map<string, Promise<Resident>>()

  constructor (readonly store: PieceStore, readonly options: PieceProverOptions = {}) {}

  cachePath (pieceCid: string): string {
    this.store.path(pieceCid) // validates the name
    return join(this.store.dir, `${pieceCid}.layers`)
  }

  private remember<T extends Resident> (pieceCid: string, cache: T): T {
    this.memory.delete(pieceCid)
    this.memory.set(pieceCid, cache)
    const limit = this.options.memoryCaches ?? 64
    while (this.memory.size > limit) this.memory.delete(this.memory.keys().next().value as string)
    return cache
  }

  /** Drops the in-memory copy, so the next proof loads the cache from disk. */
  forget (pieceCid?: string): void {
    if (pieceCid === undefined) this.memory.clear()
    else this.memory.delete(pieceCid)
  }

  /**
   * Reads the whole piece once, derives its layer cache and writes it beside
   * the piece; keeps in memory only what a LayerFile keeps.
   */
  async build (pieceCid: string): Promise<LayerCache> {
    const pending = this.building.get(pieceCid)
    if (pending !== undefined) return await pending
    const work = (async () => {
      const handle = await this.openPiece(pieceCid)
      let cache: LayerCache
      try {
        cache = await buildLayerCache(pieceCid, readerOf(handle), { level: this.options.cacheLevel })
      } catch (err) {
        throw coded(err, 'ERR_IO', `building the layer cache of ${pieceCid}`)
      } finally {
        await handle.close()
      }
      await writeFileAtomic(this.cachePath(pieceCid), cache.encode({ resident: this.options.residentNodes }))
      this.remember(pieceCid, LayerFile.from(cache, { resident: this.options.residentNodes }))
      return cache
    })()
    this.building.set(pieceCid, work)
    try {
      return await work
    } finally {
      this.building.delete(pieceCid)
    }
  }

  /** The piece's layer cache: from memory, else from disk (checked against the piece CID), else rebuilt. */
  async cache (pieceCid: string): Promise<Resident> {
    const hit = this.memory.get(pieceCid)
    if (hit !== undefined) return this.remember(pieceCid, hit)
    const pending = this.loading.get(pieceCid)
    if (pending !== undefined) return await pending
    const work = (async () => {
      const stored = await this.load(pieceCid)
      if (stored !== undefined) return this.remember(pieceCid, stored)
      const built = await this.build(pieceCid)
      return this.memory.get(pieceCid) ?? LayerFile.from(built, { resident: this.options.residentNodes })
    })()
    this.loading.set(pieceCid, work)
    try {
      return await work
    } finally {
      this.loading.delete(pieceCid)
    }
  }

  /** The stored cache, streamed from its file; undefined when missing, corrupt or of another piece. */
  private async load (pieceCid: string): Promise<Resident | undefined> {
    let handle: FileHandle
    try {
      handle = await open(this.cachePath(pieceCid), 'r')
    } catch {
      return undefined
    }
    try {
      return await LayerFile.load(readerOf(handle), (await handle.stat()).size, pieceCid, { resident: this.options.residentNodes })
    } catch {
      // unreadable, corrupt or for another piece: rebuilt by the caller
      return undefined
    } finally {
      await handle.close()
    }
  }

  /**
   * Runs `work` with the piece's layers and a reader of the piece. A cache
   * file that changed or vanished since it was loaded is loaded (or rebuilt)
   * once more before the proof fails.
   */
  private async proving<T> (pieceCid: string, work: (layers: CachedLayers, read: ReadAt) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const cache = await this.cache(pieceCid)
      const piece = await this.openPiece(pieceCid)
      let file: FileHandle | undefined
      try {
        let layers: CachedLayers
        if (cache instanceof LayerFile) {
          file = await open(this.cachePath(pieceCid), 'r')
          layers = cache.reading(readerOf(file))
        } else {
          layers = cache
        }
        return await work(layers, readerOf(piece))
      } catch (err) {
        const code = (err as { code?: unknown })?.code
        if (attempt === 0 && cache instanceof LayerFile && (code === 'ERR_LAYER_CACHE_INVALID' || code === 'ENOENT')) {
          this.forget(pieceCid)
          continue
        }
        throw coded(err, 'ERR_INTERNAL', `proving ${pieceCid}`)
      } finally {
        await piece.close()
        await file?.close()
      }
    }
  }

  private async openPiece (pieceCid: string): Promise<FileHandle> {
    try {
      return await open(this.store.path(pieceCid), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CairnError('ERR_PIECE_CORRUPT', `piece ${pieceCid} is missing from the piece store`, { cause: err })
      throw coded(err, 'ERR_IO', `opening piece ${pieceCid}`)
    }
  }

  /** Leaf proofs of the given leaves of a piece (a PDP data set's challenges, src/pdp/prove.ts); fails as `prove` does. */
  async proveLeaves (pieceCid: string, indices: readonly number[]): Promise<LeafProof[]> {
    return await this.proving(pieceCid, async (layers, read) => await proveLeaves(pieceCid, indices, read, layers))
  }

  /** Answers a challenge for a piece; ERR_PIECE_CORRUPT when its bytes are gone or changed. */
  async prove (pieceCid: string, challenge: { dealId: CID, seed: Uint8Array, count: number }): Promise<PieceProof> {
    return await this.proving(pieceCid, async (layers, read) => await provePiece(pieceCid, challenge, read, layers))
  }
}

/** The proof payload (unsigned) answering a challenge for a deal's piece. */
export async function proveChallenge (prover: PieceProver, deal: { dealId: CID, pieceCid: CID }, challenge: ChallengeBody, now: number): Promise<ProofPayload> {
  const proof = await prover.prove(deal.pieceCid.toString(), { dealId: deal.dealId, seed: challenge.seed, count: challenge.count })
  return {
    dealId: deal.dealId,
    pieceCid: deal.pieceCid,
    seed: challenge.seed,
    count: challenge.count,
    at: now,
    proofs: proof.proofs.map(p => ({ index: p.index, leaf: p.leaf, path: joinPath(p.path) }))
  }
}

/** Builds the signed proof message for a deal's piece, carrying `head` when given (proof/v2). */
export async function answerChallenge (prover: PieceProver, signer: Signer, deal: { dealId: CID, pieceCid: CID }, challenge: ChallengeBody, now: number, head?: LedgerHead | null): Promise<SignedProof> {
  const payload = await proveChallenge(prover, deal, challenge, now)
  return signProof(signer, head === undefined ? payload : { ...payload, head })
}
