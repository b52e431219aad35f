/**
 * The provider's deal side over the repo: it signs its ask, checks proposals
 * against it (src/deal/rules.ts) and records acceptances in the ledger, takes
 * piece uploads — verifying while they stream — and serves what it holds under
 * a deal to the gateway and the piece route.
 *
 * An upload is all or nothing (SPEC §3 "Transfer"): the body goes to a
 * temporary file while every block is hashed against its CID, the DAG is
 * checked complete from the payload root and the piece commitment computed;
 * only when the byte count and piece CID match the proposal is the file
 * fsync'd and renamed into the piece store, and then ONE ledger entry
 * (`deal-active`, carrying the piece) commits together with the block index
 * and the piece index. A failure at any point leaves no index entry and no
 * active deal; a crash between the rename and the batch leaves at worst an
 * unindexed piece file, which nothing serves.
 */
import { open as openFile, rm } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { matches } from '../car/hash.js'
import { signAcceptance } from '../deal/acceptance.js'
import { signDealStatus } from '../deal/acceptance.js'
import { signAsk } from '../deal/ask.js'
import type { Ask, DealState, Proposal, SignedAsk } from '../deal/interface.js'
import { pieceCidInfo } from '../deal/piece-cid.js'
import { parseDealId, proposalFrom } from '../deal/proposal.js'
import { checkProposal } from '../deal/rules.js'
import type { Signed, Signer } from '../deal/signing.js'
import { record } from '../deal/validate.js'
import type { ExtraOp, Ledger } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'
import type { PieceStore } from '../store/pieces.js'
import { verifyUploadAuthorization } from './auth.js'
import { checkUploadCar, type UploadCheck } from './upload-check.js'
import { DEFAULT_CACHE_LEVEL } from '../../proofs/index.js'
import { writeFileAtomic } from '../fs/atomic.js'
import type { FailedPiece } from './recovery.js'
import { answerChallenge, challengeFrom, MAX_CHALLENGES, PieceProver, type PieceProverOptions } from './proofs.js'
import type { BlockSource, DealService, DealSummary, PieceHandle, PieceSource, ProviderAdmin, ProviderStatus, UploadRequest } from './interface.js'

/** The terms a provider offers (`cairn provider start` flags). */
export interface ProviderTerms {
  endpoint: string
  pricePerGiBDay: bigint
  collateralPerGiB: bigint
  minPieceSize: bigint
  maxPieceSize: bigint
  /** padded bytes the provider will hold in total */
  capacity: bigint
  /** seconds */
  maxDuration: number
  provingPeriod: number
  challenges: number
  /** how long a signed ask stays valid, seconds */
  askTtl: number
  /** the Ethereum address announced as `payee` in the ask (PDP, docs/pdp.md), lower-case */
  payee?: string
}

export const BLOCK_PREFIX = 'blocks!'
export const PIECE_PREFIX = 'pieces!'
export const PIECE_V1_PREFIX = 'pieces-v1!'
/** root CID → the piece that is exactly the DFS, duplicate-free CAR of its DAG (what the gateway may stream whole) */
export const DAG_PREFIX = 'dags!'

/** The highest layer the piece hasher collects (its chunk's level: 1 MiB of fr32 quads). */
const MAX_HASHER_LAYER_LEVEL = 15

interface BlockLocation { piece: string, offset: number, length: number }

/** States whose pieces count against capacity. */
const HOLDING: readonly DealState[] = ['accepted', 'transferring', 'active']

export interface ProviderDealsOptions extends PieceProverOptions {
  /** most challenges one proof answers (ERR_INVALID_ARGUMENT above) */
  maxChallenges?: number
  /** where a failure to build a piece's layer cache at store time is reported (it is rebuilt on first proof) */
  onCacheError?: (pieceCid: string, err: unknown) => void
  /** where a piece found corrupt by a proof is reported (its deal is then failed and the piece no longer served) */
  onPieceFailed?: (failure: FailedPiece) => void
  /**
   * Test-only: called at each durable step of an upload, so a crash test can
   * kill the process exactly between two of them.
   */
  onUploadPhase?: (phase: UploadPhase, dealId: string) => void
  /**
   * A deal became active (its piece stored and recorded), with the blocks it
   * serves; content routing announces them (src/routing/announcer.ts). Must
   * not throw or block: it runs on the upload's path.
   */
  onDealActive?: (deal: ActiveDeal) => void
  /** A deal stopped being served (expired, terminated, failed); content routing withdraws its blocks. */
  onDealEnded?: (dealId: string) => void
}

/** What `onDealActive` is told. */
export interface ActiveDeal {
  dealId: string
  payloadCid: CID
  pieceCid: CID
  blocks: readonly CID[]
}

/** The durable steps of an upload: body staged and fsync'd, renamed into the store, ledger batch committed. */
export type UploadPhase = 'staged' | 'committed' | 'recorded'

export class ProviderDeals implements DealService, BlockSource, PieceSource {
  private signedAsk: SignedAsk | undefined
  private askSeq = 0
  /** deal ids and client nonces being accepted right now (closes the check-then-append race) */
  private readonly accepting = new Set<string>()
  private readonly uploading = new Set<string>()
  /** pieces a proof found corrupt: neither the gateway nor the piece route serves them */
  private readonly suspect = new Set<string>()
  private readonly startedAt = new Date().toISOString()
  proofsAnswered = 0
  /** layer caches and proofs of the stored pieces (SPEC §4) */
  readonly prover: PieceProver

  constructor (
    private readonly db: Database,
    private readonly ledger: Ledger,
    private readonly store: PieceStore,
    private readonly signer: Signer,
    readonly terms: ProviderTerms,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    private readonly options: ProviderDealsOptions = {}
  ) {
    this.prover = new PieceProver(store, options)
  }

  /** Deal ids the ledger knows, newest first. */
  private async dealIds (): Promise<string[]> {
    const ids = new Set<string>()
    for await (const entry of this.ledger.log({ kind: 'deal-accepted' })) ids.add(String(entry.fields.deal))
    return [...ids]
  }

  private async usage (): Promise<{ used: bigint, byState: Record<string, number>, bytesStored: number }> {
    let used = 0n
    let bytesStored = 0
    const byState: Record<string, number> = {}
    for (const id of await this.dealIds()) {
      const deal = await this.ledger.deal(id)
      if (deal === undefined) continue
      byState[deal.state] = (byState[deal.state] ?? 0) + 1
      if (HOLDING.includes(deal.state)) used += deal.pieceSize ?? 0n
      if (deal.state === 'active' && deal.pieceCid !== undefined) bytesStored += Number(pieceCidInfo(deal.pieceCid).payloadSize)
    }
    return { used, byState, bytesStored }
  }

  async ask (): Promise<SignedAsk> {
    const now = this.now()
    const { used } = await this.usage()
    const free = this.terms.capacity > used ? this.terms.capacity - used : 0n
    const current = this.signedAsk?.payload
    // re-sign when half the validity has passed or the free capacity changed
    if (current === undefined || current.expiry - now < this.terms.askTtl / 2 || current.freeCapacity !== free) {
      this.askSeq = Math.max(this.askSeq + 1, now)
      const ask: Ask = {
        provider: this.signer.did,
        endpoint: this.terms.endpoint,
        pricePerGiBDay: this.terms.pricePerGiBDay,
        collateralPerGiB: this.terms.collateralPerGiB,
        minPieceSize: this.terms.minPieceSize,
        maxPieceSize: this.terms.maxPieceSize,
        freeCapacity: free,
        maxDuration: this.terms.maxDuration,
        provingPeriod: this.terms.provingPeriod,
        challenges: this.terms.challenges,
        seq: this.askSeq,
        expiry: now + this.terms.askTtl,
        ...(this.terms.payee === undefined ? {} : { payee: this.terms.payee })
      }
      this.signedAsk = signAsk(this.signer, ask)
    }
    return this.signedAsk as SignedAsk
  }

  async propose (body: unknown): Promise<unknown> {
    const m = record(body, 'signed proposal', ['payload', 'signer', 'signature'])
    const envelope: Signed<unknown> = { payload: m.payload, signer: m.signer as string, signature: m.signature as Uint8Array }
    const ask = (await this.ask()).payload
    const payload = proposalFrom(envelope.payload)
    const nonceKey = `${payload.client}\0${payload.nonce}`
    const checked = await checkProposal(envelope, ask, {
      freeCapacity: ask.freeCapacity,
      hasDeal: async (id) => this.accepting.has(id.toString()) || (await this.ledger.deal(id)) !== undefined,
      hasNonce: async (client, nonce) => this.accepting.has(`${client}\0${nonce}`) || await this.ledger.nonceUsed(client, nonce)
    }, { now: this.now() })
    const dealKey = checked.dealId.toString()
    this.accepting.add(dealKey)
    this.accepting.add(nonceKey)
    try {
      const p = checked.signed.payload
      const acceptedAt = this.now()
      await this.ledger.append('deal-accepted', {
        deal: checked.dealId,
        client: p.client,
        provider: p.provider,
        nonce: p.nonce,
        pieceCid: p.pieceCid,
        payloadCid: p.payloadCid,
        pieceSize: p.pieceSize,
        payloadSize: p.payloadSize,
        proposal: { payload: p, signer: checked.signed.signer, signature: checked.signed.signature }
      })
      this.signedAsk = undefined
      return signAcceptance(this.signer, { dealId: checked.dealId, client: p.client, provider: p.provider, pieceCid: p.pieceCid, acceptedAt })
    } finally {
      this.accepting.delete(dealKey)
      this.accepting.delete(nonceKey)
    }
  }

  /** The accepted proposal of a deal, from its `deal-accepted` entry. */
  private async proposalOf (dealId: CID): Promise<Proposal | undefined> {
    for await (const entry of this.ledger.log({ deal: dealId, kind: 'deal-accepted', limit: 1 })) {
      const signed = entry.fields.proposal as { payload: unknown } | undefined
      if (signed !== undefined) return proposalFrom(signed.payload)
    }
    return undefined
  }

  async upload (request: UploadRequest): Promise<unknown> {
    const dealId = parseDealId(request.dealId)
    const deal = await this.ledger.deal(dealId)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId.toString()} at this provider`)
    const proposal = await this.proposalOf(dealId)
    if (proposal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no accepted proposal here`)
    verifyUploadAuthorization(request.authorization, proposal.client, dealId)
    if (deal.state !== 'accepted') throw new CairnError('ERR_DEAL_STATE', `deal ${dealId.toString()} is ${deal.state}; a piece is taken only for an accepted deal`)
    if (BigInt(request.contentLength) !== proposal.payloadSize) {
      throw new CairnError('ERR_CONTENT_LENGTH', `Content-Length is ${request.contentLength} bytes; the deal's payloadSize is ${proposal.payloadSize} bytes`)
    }
    const key = dealId.toString()
    if (this.uploading.has(key)) throw new CairnError('ERR_UPLOAD_IN_PROGRESS', `an upload for deal ${key} is already in progress`)
    this.uploading.add(key)
    try {
      return await this.receive(dealId, proposal, request)
    } finally {
      this.uploading.delete(key)
    }
  }

  private async receive (dealId: CID, proposal: Proposal, request: UploadRequest): Promise<unknown> {
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
    const level = this.options.cacheLevel ?? DEFAULT_CACHE_LEVEL
    const layerLevel = Number.isInteger(level) && level >= 2 && level <= MAX_HASHER_LAYER_LEVEL ? level : undefined
    const staged = await this.store.stage(tee(), { signal: request.signal, layerLevel })
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
      this.options.onUploadPhase?.('staged', dealId.toString())
    } catch (err) {
      await staged.abort()
      throw err
    }
    const { blocks, canonical } = check as UploadCheck
    const piece = staged.piece.cid.toString()
    // another active deal may already hold these very bytes under the same name
    const sharedPiece = (await this.db.get(PIECE_PREFIX + piece)) !== undefined
    await staged.commit()
    this.options.onUploadPhase?.('committed', dealId.toString())
    // one index entry per block (4,100 for 1 GiB): encoded lazily, as the ledger takes them in time slices
    function * extra (): Generator<ExtraOp> {
      for (const { cid, offset, length } of blocks) {
        yield { type: 'put', key: BLOCK_PREFIX + cid.toString(), value: dagCBOR.encode({ piece, offset, length }) }
      }
      yield { type: 'put', key: PIECE_PREFIX + piece, value: dagCBOR.encode({ deal: dealId, size: staged.size }) }
      yield { type: 'put', key: PIECE_V1_PREFIX + staged.piece.cidV1.toString(), value: new TextEncoder().encode(piece) }
      if (canonical) yield { type: 'put', key: DAG_PREFIX + proposal.payloadCid.toString(), value: new TextEncoder().encode(piece) }
    }
    try {
      await this.ledger.append('deal-active', {
        deal: dealId,
        pieceCid: staged.piece.cid,
        pieceCidV1: staged.piece.cidV1,
        payloadCid: proposal.payloadCid,
        payloadSize: BigInt(staged.size),
        blocks: blocks.length
      }, extra())
    } catch (err) {
      // the batch did not commit: the renamed piece is indexed by nothing and must not stay in the store
      if (!sharedPiece) await rm(this.store.path(piece), { force: true }).catch(() => {})
      throw err
    }
    this.options.onUploadPhase?.('recorded', dealId.toString())
    this.options.onDealActive?.({ dealId: dealId.toString(), payloadCid: proposal.payloadCid, pieceCid: staged.piece.cid, blocks: blocks.map(b => b.cid) })
    this.signedAsk = undefined
    // the upper tree layers, so that proofs read only the challenged regions (SPEC §4 "Speed")
    const layers = staged.piece.layers
    if (layers !== undefined) {
      await writeFileAtomic(this.prover.cachePath(piece), layers.encode()).catch((err) => { this.options.onCacheError?.(piece, err) })
    } else {
      await this.prover.build(piece).catch((err) => { this.options.onCacheError?.(piece, err) })
    }
    return await this.status(dealId.toString())
  }

  /** Answers a challenge `{seed, count}` for an active deal with a provider-signed proof (SPEC §4). */
  async prove (dealId: string, body: unknown): Promise<unknown> {
    const id = parseDealId(dealId)
    const challenge = challengeFrom(body, Math.min(this.options.maxChallenges ?? MAX_CHALLENGES, MAX_CHALLENGES))
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    if (deal.state !== 'active' || deal.pieceCid === undefined) throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is ${deal.state}; only active deals are proven`)
    const piece = deal.pieceCid.toString()
    let proof: unknown
    try {
      proof = await answerChallenge(this.prover, this.signer, { dealId: id, pieceCid: deal.pieceCid }, challenge, this.now())
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_PIECE_CORRUPT') {
        // lost or changed bytes are reported and the piece is not served until a proof passes again
        // (start-up recovery re-checks it and fails the deal if it is still wrong)
        if (!this.suspect.has(piece)) this.options.onPieceFailed?.({ deal: dealId, piece, code: 'ERR_PIECE_CORRUPT', reason: (err as Error).message })
        this.suspect.add(piece)
      }
      throw err
    }
    this.suspect.delete(piece)
    this.proofsAnswered++
    return proof
  }

  async status (dealId: string): Promise<unknown> {
    const id = parseDealId(dealId)
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    return signDealStatus(this.signer, { dealId: id, provider: this.signer.did, state: deal.state, at: this.now() })
  }

  // BlockSource: only blocks indexed by an active deal's upload
  async get (cid: CID): Promise<Uint8Array | undefined> {
    const value = await this.db.get(BLOCK_PREFIX + cid.toString())
    if (value === undefined) return undefined
    const at = dagCBOR.decode(value) as BlockLocation
    if (this.suspect.has(at.piece)) return undefined
    const handle = await openFile(this.store.path(at.piece), 'r').catch(() => undefined)
    if (handle === undefined) return undefined
    try {
      const out = new Uint8Array(at.length)
      const { bytesRead } = await handle.read(out, 0, at.length, at.offset)
      // bytes that changed on disk are never served as the block
      return bytesRead === at.length && matches(cid, out) ? out : undefined
    } finally {
      await handle.close()
    }
  }

  /**
   * A stored piece that is exactly the depth-first, duplicate-free CAR of the
   * DAG under `root` (checked at upload), for the gateway to stream whole
   * instead of walking the DAG block by block. Only pieces `open` serves.
   */
  async dag (root: CID): Promise<PieceHandle | undefined> {
    const value = await this.db.get(DAG_PREFIX + root.toString())
    if (value === undefined) return undefined
    return await this.open(CID.parse(new TextDecoder().decode(value)))
  }

  // PieceSource: only pieces stored under a deal
  async open (pieceCid: CID): Promise<PieceHandle | undefined> {
    let v2 = pieceCid.toString()
    if (pieceCid.code === 0xf101) {
      const mapped = await this.db.get(PIECE_V1_PREFIX + v2)
      if (mapped === undefined) return undefined
      v2 = new TextDecoder().decode(mapped)
    }
    if ((await this.db.get(PIECE_PREFIX + v2)) === undefined || this.suspect.has(v2)) return undefined
    const reader = await this.store.open(v2)
    if (reader === undefined) return undefined
    return { size: reader.size, createReadStream: (start, end) => reader.createReadStream(start, end), openFile: reader.openFile }
  }

  // ProviderAdmin
  async status_ (): Promise<ProviderStatus> {
    const { used, byState, bytesStored } = await this.usage()
    let earned = 0n
    for (const b of await this.ledger.balance()) earned += b.earned
    return {
      did: this.signer.did,
      url: this.terms.endpoint,
      capacity: { total: Number(this.terms.capacity), used: Number(used), free: Number(this.terms.capacity > used ? this.terms.capacity - used : 0n) },
      deals: byState,
      bytesStored,
      proofsAnswered: this.proofsAnswered,
      earnings: earned.toString(),
      startedAt: this.startedAt
    }
  }

  async deals (filter: { state?: string }): Promise<DealSummary[]> {
    const out: DealSummary[] = []
    for (const id of await this.dealIds()) {
      const deal = await this.ledger.deal(id)
      if (deal === undefined || (filter.state !== undefined && deal.state !== filter.state)) continue
      out.push({
        id,
        state: deal.state,
        client: deal.client,
        pieceCid: deal.pieceCid?.toString(),
        payloadCid: deal.payloadCid?.toString(),
        pieceSize: deal.pieceSize?.toString(),
        passed: deal.passed,
        failed: deal.failed,
        missed: deal.missed,
        updated: new Date(deal.at).toISOString()
      })
    }
    return out
  }

  /** The admin view (ProviderAdmin) of this provider. */
  admin (): ProviderAdmin {
    return { status: async () => await this.status_(), deals: async (filter) => await this.deals(filter) }
  }
}
