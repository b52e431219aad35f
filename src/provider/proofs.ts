/**
 * Answering storage challenges (docs/protocol.md "Proofs") on the provider, and the signed proof
 * message both sides speak.
 *
 * Each stored piece keeps one layer of its CommP tree beside it
 * (`<pieceCid>.layers`, proofs/prove.ts `LayerCache`), written atomically once
 * when the piece is stored and rebuilt from the piece whenever it is missing or
 * does not match the piece CID. A proof then reads only the challenged regions
 * of the piece file; a region that no longer hashes to its cached node means
 * the data is lost, and the provider says so (ERR_PIECE_CORRUPT) rather than
 * sign something that cannot verify.
 *
 * The proof message is provider-signed under `cairn/proof/v2\n` (v1 without
 * the provider's ledger head, as older ledgers hold it) and echoes the
 * challenge (deal, piece, seed, count), so a verifier can tell a replayed or
 * misdirected proof from a wrong one.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { buildLayerCache, LayerCache, proveLeaves, provePiece, type LeafProof, type PieceProof, type ReadAt } from '../../proofs/index.js'
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
  /** layer caches kept in memory (least recently used dropped first) */
  memoryCaches?: number
}

/** Layer caches and proofs for the pieces of one piece store. */
export class PieceProver {
  private readonly memory = new Map<string, LayerCache>()
  private readonly building = new Map<string, Promise<LayerCache>>()

  constructor (readonly store: PieceStore, readonly options: PieceProverOptions = {}) {}

  cachePath (pieceCid: string): string {
    this.store.path(pieceCid) // validates the name
    return join(this.store.dir, `${pieceCid}.layers`)
  }

  private remember (pieceCid: string, cache: LayerCache): LayerCache {
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

  /** Reads the whole piece once, derives its layer cache and writes it beside the piece. */
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
      await writeFileAtomic(this.cachePath(pieceCid), cache.encode())
      return this.remember(pieceCid, cache)
    })()
    this.building.set(pieceCid, work)
    try {
      return await work
    } finally {
      this.building.delete(pieceCid)
    }
  }

  /** The piece's layer cache: from memory, else from disk (checked against the piece CID), else rebuilt. */
  async cache (pieceCid: string): Promise<LayerCache> {
    const hit = this.memory.get(pieceCid)
    if (hit !== undefined) return this.remember(pieceCid, hit)
    let stored: Uint8Array | undefined
    try {
      stored = await readFile(this.cachePath(pieceCid))
    } catch {}
    if (stored !== undefined) {
      try {
        return this.remember(pieceCid, LayerCache.decode(stored, pieceCid))
      } catch {
        // corrupt or for another piece: rebuild below
      }
    }
    return await this.build(pieceCid)
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
    const cache = await this.cache(pieceCid)
    const handle = await this.openPiece(pieceCid)
    try {
      return await proveLeaves(pieceCid, indices, readerOf(handle), cache)
    } catch (err) {
      throw coded(err, 'ERR_INTERNAL', `proving ${pieceCid}`)
    } finally {
      await handle.close()
    }
  }

  /** Answers a challenge for a piece; ERR_PIECE_CORRUPT when its bytes are gone or changed. */
  async prove (pieceCid: string, challenge: { dealId: CID, seed: Uint8Array, count: number }): Promise<PieceProof> {
    const cache = await this.cache(pieceCid)
    const handle = await this.openPiece(pieceCid)
    try {
      return await provePiece(pieceCid, challenge, readerOf(handle), cache)
    } catch (err) {
      throw coded(err, 'ERR_INTERNAL', `proving ${pieceCid}`)
    } finally {
      await handle.close()
    }
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
