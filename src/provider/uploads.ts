/**
 * Piece uploads (docs/protocol.md "Upload"), all or nothing: the body goes to
 * a temporary file while every block is hashed against its CID, the DAG is
 * checked complete from the payload root and the piece commitment computed;
 * only when the byte count and piece CID match the proposal is the file
 * fsync'd and renamed into the piece store, and then ONE ledger entry
 * (`deal-active`, carrying the piece) commits together with the block index
 * and the piece index. A failure at any point leaves no index entry and no
 * active deal; a crash between the rename and the batch leaves at worst an
 * unindexed piece file, which nothing serves.
 */
import { rm } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import * as dagCBOR from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { DEFAULT_CACHE_LEVEL } from '../../proofs/index.js'
import { CairnError } from '../errors.js'
import { writeFileAtomic } from '../fs/atomic.js'
import type { ExtraOp } from '../ledger/interface.js'
import { verifyUploadAuthorization } from '../protocol/auth.js'
import type { Proposal, SignedDealStatus } from '../protocol/interface.js'
import { parseDealId } from '../protocol/proposal.js'
import { BLOCK_PREFIX, DAG_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX, spaces } from '../state/spaces.js'
import type { DealContext } from './context.js'
import type { UploadRequest } from './interface.js'
import { checkUploadCar, type UploadCheck } from './upload-check.js'

/** The highest layer the piece hasher collects (its chunk's level: 1 MiB of fr32 quads). */
const MAX_HASHER_LAYER_LEVEL = 15

export class Uploads {
  constructor (private readonly c: DealContext) {}

  async upload (request: UploadRequest): Promise<SignedDealStatus> {
    const dealId = parseDealId(request.dealId)
    const deal = await this.c.ledger.deal(dealId)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId.toString()} at this provider`)
    const proposal = await this.c.proposalOf(dealId)
    if (proposal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no accepted proposal here`)
    verifyUploadAuthorization(request.authorization, proposal.client, dealId)
    if (deal.state !== 'accepted') throw new CairnError('ERR_DEAL_STATE', `deal ${dealId.toString()} is ${deal.state}; a piece is taken only for an accepted deal`)
    if (deal.uploadBy !== undefined && this.c.now() > deal.uploadBy) {
      throw new CairnError('ERR_DEAL_EXPIRED', `deal ${dealId.toString()} had to be uploaded by ${deal.uploadBy} (unix seconds); it is now ${this.c.now()}`)
    }
    if (BigInt(request.contentLength) !== proposal.payloadSize) {
      throw new CairnError('ERR_CONTENT_LENGTH', `Content-Length is ${request.contentLength} bytes; the deal's payloadSize is ${proposal.payloadSize} bytes`)
    }
    const key = dealId.toString()
    if (this.c.uploading.has(key)) throw new CairnError('ERR_UPLOAD_IN_PROGRESS', `an upload for deal ${key} is already in progress`)
    // an upload still running at the deal's upload deadline is cut off by its expiry
    const expiry = new AbortController()
    this.c.uploading.set(key, expiry)
    try {
      return await this.receive(dealId, proposal, { ...request, signal: AbortSignal.any([request.signal, expiry.signal]) })
    } catch (err) {
      if (expiry.signal.aborted) throw expiry.signal.reason
      throw err
    } finally {
      this.c.uploading.delete(key)
    }
  }

  private async receive (dealId: CID, proposal: Proposal, request: UploadRequest): Promise<SignedDealStatus> {
    // The same bytes feed the piece store (disk + CommP) and the CAR check.
    const carSide = new PassThrough({ highWaterMark: 4 << 20 })
    let verifyError: unknown
    let check: UploadCheck | undefined
    const verified = checkUploadCar(carSide, proposal.payloadCid)
      .then((result) => { check = result }, (err) => { verifyError = err; carSide.destroy() })

    async function * tee (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
          if (verifyError !== undefined) throw verifyError
          if (!carSide.write(chunk)) await new Promise<void>((resolve) => { carSide.once('drain', resolve); carSide.once('close', resolve) })
          yield chunk
        }
        carSide.end()
        await verified
        if (verifyError !== undefined) throw verifyError
      } finally {
        if (!carSide.writableEnded) carSide.destroy()
      }
    }

    // the proof layer cache is collected while CommP is computed, sparing a second pass over the piece
    const level = this.c.options.cacheLevel ?? DEFAULT_CACHE_LEVEL
    const layerLevel = Number.isInteger(level) && level >= 2 && level <= MAX_HASHER_LAYER_LEVEL ? level : undefined
    const staged = await this.c.store.stage(tee(), { signal: request.signal, layerLevel })
    try {
      await verified
      if (verifyError !== undefined) throw verifyError
      if (BigInt(staged.size) !== proposal.payloadSize) {
        throw new CairnError('ERR_PIECE_MISMATCH', `received ${staged.size} bytes; the deal's payloadSize is ${proposal.payloadSize} bytes`)
      }
      if (!staged.piece.cid.equals(proposal.pieceCid)) {
        throw new CairnError('ERR_PIECE_MISMATCH', `the upload's piece CID is ${staged.piece.cid.toString()}; the deal's pieceCid is ${String(proposal.pieceCid)}`)
      }
      request.signal.throwIfAborted()
      this.c.options.onUploadPhase?.('staged', dealId.toString())
    } catch (err) {
      await staged.abort()
      throw err
    }
    const { blocks, canonical } = check as UploadCheck
    const node = this.c.options.node
    const piece = staged.piece.cid.toString()
    // one index entry per block (4,100 for 1 GiB): encoded lazily, as the ledger takes them in time slices
    function * extra (): Generator<ExtraOp> {
      for (const { cid, offset, length } of blocks) {
        yield { type: 'put', key: BLOCK_PREFIX + cid.toString(), value: dagCBOR.encode({ piece, offset, length }) }
      }
      yield { type: 'put', key: PIECE_PREFIX + piece, value: dagCBOR.encode({ deal: dealId, size: staged.size }) }
      yield { type: 'put', key: PIECE_V1_PREFIX + staged.piece.cidV1.toString(), value: new TextEncoder().encode(piece) }
      if (canonical) yield { type: 'put', key: DAG_PREFIX + proposal.payloadCid.toString(), value: new TextEncoder().encode(piece) }
      if (node !== undefined) yield { type: 'put', space: spaces.pieceLocations, key: `${piece}/${node}`, value: new Uint8Array(0) }
    }
    // the deal's state is read and the piece committed in the deal's lane, so an expiry cannot come in between
    await this.c.lanes.run(dealId.toString(), async () => {
      const now = await this.c.ledger.deal(dealId)
      if (now?.state !== 'accepted' || request.signal.aborted) {
        await staged.abort()
        if (request.signal.aborted) throw request.signal.reason
        throw new CairnError('ERR_DEAL_STATE', `deal ${dealId.toString()} became ${now?.state ?? 'unknown'} during its upload`)
      }
      // another active deal may already hold these very bytes under the same name
      const sharedPiece = (await this.c.state.get(spaces.pieces, piece)) !== undefined
      this.c.committing.add(piece)
      try {
        await staged.commit()
        this.c.options.onUploadPhase?.('committed', dealId.toString())
        try {
          await this.c.ledger.append('deal-active', {
            deal: dealId,
            pieceCid: staged.piece.cid,
            pieceCidV1: staged.piece.cidV1,
            payloadCid: proposal.payloadCid,
            payloadSize: BigInt(staged.size),
            blocks: blocks.length
          }, extra())
        } catch (err) {
          // the batch did not commit: the renamed piece is indexed by nothing and must not stay in the store
          if (!sharedPiece) await rm(this.c.store.path(piece), { force: true }).catch(() => {})
          throw err
        }
      } finally {
        this.c.committing.delete(piece)
      }
    })
    this.c.options.onUploadPhase?.('recorded', dealId.toString())
    this.c.options.onDealActive?.({ dealId: dealId.toString(), payloadCid: proposal.payloadCid, pieceCid: staged.piece.cid, blocks: blocks.map(b => b.cid) })
    this.c.ask.invalidate()
    // the upper tree layers, so that proofs read only the challenged regions (docs/performance.md)
    const layers = staged.piece.layers
    if (layers !== undefined) {
      await writeFileAtomic(this.c.prover.cachePath(piece), layers.encode()).catch((err) => { this.c.options.onCacheError?.(piece, err) })
    } else {
      await this.c.prover.build(piece).catch((err) => { this.c.options.onCacheError?.(piece, err) })
    }
    return await this.c.status(dealId.toString())
  }
}
