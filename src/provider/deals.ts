/**
 * The provider's deal side over the repo: it signs its ask, checks proposals
 * against it (src/protocol/rules.ts) and records acceptances in the ledger, takes
 * piece uploads — verifying while they stream — and serves what it holds under
 * a deal to the gateway and the piece route.
 *
 * An upload is all or nothing (docs/protocol.md "Upload"): the body goes to a
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
import { signAcceptance } from '../protocol/acceptance.js'
import { signDealStatus } from '../protocol/acceptance.js'
import { signAsk } from '../protocol/ask.js'
import type { Ask, Proposal, SignedAcceptance, SignedAsk, SignedDealStatus, SignedProofRequest } from '../protocol/interface.js'
import { parseDealId, proposalFrom } from '../protocol/proposal.js'
import { checkProposal } from '../protocol/rules.js'
import type { Signed, Signer } from '../protocol/signing.js'
import { record } from '../protocol/validate.js'
import type { ExtraOp, Ledger, LedgerEntry } from '../ledger/interface.js'
import { admissionGuard } from '../ledger/admission.js'
import type { Database } from '../repo/repo.js'
import { LevelStore } from '../state/level.js'
import type { StateStore } from '../state/interface.js'
import { spaces } from '../state/spaces.js'
import type { PieceStore } from '../store/pieces.js'
import { verifyUploadAuthorization } from '../protocol/auth.js'
import { checkUploadCar, type UploadCheck } from './upload-check.js'
import { DEFAULT_CACHE_LEVEL } from '../../proofs/index.js'
import { writeFileAtomic } from '../fs/atomic.js'
import { pieceCidV1FromV2 } from '../../proofs/index.js'
import { DEFAULT_CLOCK_SKEW } from '../protocol/rules.js'
import { secondsKey } from '../ledger/indexes.js'
import { carBlockCids, matches } from '../car/index.js'
import { KeyedQueue } from './serial.js'
import { verifyCancellation } from '../protocol/cancel.js'
import { MAX_CHALLENGES, REQUEST_CLOCK_SKEW, verifyProofRequest } from '../protocol/proof-request.js'
import { PieceProver, proveChallenge, signProof, type PieceProverOptions, type ProofPayload, type SignedProof } from './proofs.js'
import { RateLimiter, type RateLimit } from './rate-limit.js'
import type { BlockSource, DealLogFields, FailedPiece, DealService, DealSummary, PieceHandle, PieceSource, ProviderAdmin, ProviderStatus, UploadRequest } from './interface.js'

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
  /** seconds an accepted deal may take to be uploaded (never past its start) before it expires; default 1 h */
  uploadWindow?: number
  /** how far ahead a proposal's start may lie, seconds; default 7 d */
  maxStartDelay?: number
  /** seconds a piece no active deal holds is kept before its file is removed; default 24 h */
  retentionGrace?: number
  /** the Ethereum address announced as `payee` in the ask (PDP, docs/pdp.md), lower-case */
  payee?: string
}

/**
 * Terms with `provider start`'s defaults (src/provider/options.ts) for what is
 * not given: for a provider run in process (the demo, benches, tests).
 */
export function providerTerms (given: Partial<ProviderTerms> = {}): ProviderTerms {
  return {
    endpoint: '',
    pricePerGiBDay: 40n,
    collateralPerGiB: 0n,
    minPieceSize: 128n,
    maxPieceSize: 32n << 30n,
    capacity: 100n << 30n,
    maxDuration: 540 * 86400,
    provingPeriod: 86400,
    challenges: 16,
    askTtl: 3600,
    ...given
  }
}

/**
 * When an accepted deal must be uploaded by: within the upload window and not
 * after the deal starts (the deal's proving begins then), except that a deal
 * starting about now still gets the clock skew a start may lie in the past
 * (60 s) rather than no time at all.
 */
export function uploadDeadline (acceptedAt: number, start: number, uploadWindow: number): number {
  return Math.min(acceptedAt + uploadWindow, Math.max(start, acceptedAt + DEFAULT_CLOCK_SKEW))
}

export const DEFAULT_UPLOAD_WINDOW = 3600
export const DEFAULT_MAX_START_DELAY = 7 * 86400
export const DEFAULT_RETENTION_GRACE = 86400

export const BLOCK_PREFIX = 'blocks!'
export const PIECE_PREFIX = 'pieces!'
export const PIECE_V1_PREFIX = 'pieces-v1!'
/** root CID → the piece that is exactly the DFS, duplicate-free CAR of its DAG (what the gateway may stream whole) */
export const DAG_PREFIX = 'dags!'
/** `<unix s>/<pieceCid>`: a piece no active deal holds any more, whose file goes once its retention grace ends */
export const GC_PREFIX = 'gc!'

/** The highest layer the piece hasher collects (its chunk's level: 1 MiB of fr32 quads). */
const MAX_HASHER_LAYER_LEVEL = 15

interface BlockLocation { piece: string, offset: number, length: number }

export interface ProviderDealsOptions extends PieceProverOptions {
  /** proof requests per deal: `burst` at once, then `perSecond` (ERR_RATE_LIMITED beyond); default 8, then one per 15 s */
  proofRate?: RateLimit
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
  /**
   * A deal ended — expired (at its end, or never uploaded in its window) or
   * cancelled by its client — told once its ledger entry has committed;
   * content routing withdraws its blocks (a deal never announced is nothing to
   * withdraw). A deal failed by start-up recovery is found ended by the
   * announcer's reconciliation instead. Must not throw or block.
   */
  onDealEnded?: (dealId: string) => void
  /**
   * Cluster mode (src/cluster/node.ts): this node's name, recorded as the
   * location of each piece it stores, in the same commit as the deal going active.
   */
  node?: string
  /**
   * Cluster mode: makes a piece another node holds local (src/cluster/work.ts
   * `fetch`); called when a piece the indexes name is not in this node's store.
   */
  fetchPiece?: (pieceCid: string) => Promise<boolean>
  /**
   * Cluster mode: a piece another node holds, read from it as it is served
   * (src/cluster/work.ts `remote`); tried before `fetchPiece` by `open`.
   */
  remotePiece?: (pieceCid: string) => Promise<PieceHandle | undefined>
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

/** An honest client asks once per proving period; a few retries and manual audits fit in the burst. */
export const DEFAULT_PROOF_RATE: RateLimit = { burst: 8, perSecond: 1 / 15 }

export class ProviderDeals implements DealService, BlockSource, PieceSource {
  private signedAsk: SignedAsk | undefined
  private askSeq = 0
  /**
   * Proposals are checked and recorded one at a time: the capacity and replay
   * checks read the ledger, and two proposals checked before either is recorded
   * could both take the last free bytes or the same nonce.
   */
  private proposals: Promise<unknown> = Promise.resolve()
  /** uploads in flight, each abortable when its deal expires */
  private readonly uploading = new Map<string, AbortController>()
  /** pieces renamed into the store whose ledger batch has not committed yet: never collected */
  private readonly committing = new Set<string>()
  /** what reads a deal's state and appends on it (upload commit, expiry, proofs) runs one at a time per deal */
  private readonly lanes = new KeyedQueue()
  /** pieces a proof found corrupt: neither the gateway nor the piece route serves them */
  private readonly suspect = new Set<string>()
  private readonly startedAt = new Date().toISOString()
  /** layer caches and proofs of the stored pieces (docs/protocol.md "Proofs") */
  readonly prover: PieceProver
  /** where the provider's indexes live: blocks, pieces, DAGs, retained pieces */
  private readonly state: StateStore
  private readonly proofRate: RateLimiter

  constructor (
    state: StateStore | Database,
    private readonly ledger: Ledger,
    private readonly store: PieceStore,
    private readonly signer: Signer,
    readonly terms: ProviderTerms,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    private readonly options: ProviderDealsOptions = {}
  ) {
    // the repo's LevelDB (one node), or the cluster's state store (PostgreSQL, docs/cluster.md)
    this.state = 'transaction' in state ? state : new LevelStore(state)
    this.prover = new PieceProver(store, options)
    this.proofRate = new RateLimiter(options.proofRate ?? DEFAULT_PROOF_RATE)
  }

  /** Deal ids the ledger knows, newest first. */
  private async dealIds (): Promise<string[]> {
    const ids = new Set<string>()
    for await (const entry of this.ledger.log({ kind: 'deal-accepted' })) ids.add(String(entry.fields.deal))
    return [...ids]
  }

  /** Padded bytes still free: capacity less what accepted and active deals hold (the ledger's totals, O(1)). */
  private async freeCapacity (): Promise<bigint> {
    const { reserved, used } = await this.ledger.stats()
    const held = reserved + used
    return this.terms.capacity > held ? this.terms.capacity - held : 0n
  }

  async ask (): Promise<SignedAsk> {
    const now = this.now()
    const free = await this.freeCapacity()
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

  async propose (body: unknown): Promise<SignedAcceptance> {
    const m = record(body, 'signed proposal', ['payload', 'signer', 'signature'])
    const envelope: Signed<unknown> = { payload: m.payload, signer: m.signer as string, signature: m.signature as Uint8Array }
    const turn = this.proposals.then(async () => await this.accept(envelope))
    this.proposals = turn.catch(() => {})
    return await turn
  }

  /** Checks a proposal against the ask and the ledger and records it: one proposal at a time (see `proposals`). */
  private async accept (envelope: Signed<unknown>): Promise<SignedAcceptance> {
    const ask = (await this.ask()).payload
    const checked = await checkProposal(envelope, ask, {
      freeCapacity: ask.freeCapacity,
      hasDeal: async (id) => (await this.ledger.deal(id)) !== undefined,
      hasNonce: async (client, nonce) => await this.ledger.nonceUsed(client, nonce)
    }, { now: this.now(), maxStartDelay: this.terms.maxStartDelay ?? DEFAULT_MAX_START_DELAY })
    const p = checked.signed.payload
    if (p.head === undefined) {
      throw new CairnError('ERR_UNSUPPORTED_VERSION', 'the proposal carries no ledger head (deal-proposal/v1); this provider takes deal-proposal/v2 (docs/protocol.md)')
    }
    const acceptedAt = this.now()
    const uploadBy = uploadDeadline(acceptedAt, p.start, this.terms.uploadWindow ?? DEFAULT_UPLOAD_WINDOW)
    // checked again with the ledger head held: on a cluster another node may have taken the bytes meanwhile
    const guard = admissionGuard({ dealId: checked.dealId, client: p.client, nonce: p.nonce, pieceSize: p.pieceSize, capacity: this.terms.capacity })
    const fields = {
      deal: checked.dealId,
      client: p.client,
      provider: p.provider,
      nonce: p.nonce,
      pieceCid: p.pieceCid,
      payloadCid: p.payloadCid,
      pieceSize: p.pieceSize,
      payloadSize: p.payloadSize,
      start: p.start,
      end: p.end,
      uploadBy,
      challenges: p.challenges,
      proposal: { payload: p, signer: checked.signed.signer, signature: checked.signed.signature }
    }
    const [entry] = await this.ledger.appendAll([{ kind: 'deal-accepted', fields, guard }]) as [LedgerEntry]
    this.signedAsk = undefined
    return signAcceptance(this.signer, { dealId: checked.dealId, client: p.client, provider: p.provider, pieceCid: p.pieceCid, acceptedAt, uploadBy, head: { seq: entry.seq, cid: entry.cid } })
  }

  /** The accepted proposal of a deal, from its `deal-accepted` entry. */
  private async proposalOf (dealId: CID): Promise<Proposal | undefined> {
    for await (const entry of this.ledger.log({ deal: dealId, kind: 'deal-accepted', limit: 1 })) {
      const signed = entry.fields.proposal as { payload: unknown } | undefined
      if (signed !== undefined) return proposalFrom(signed.payload)
    }
    return undefined
  }

  async upload (request: UploadRequest): Promise<SignedDealStatus> {
    const dealId = parseDealId(request.dealId)
    const deal = await this.ledger.deal(dealId)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId.toString()} at this provider`)
    const proposal = await this.proposalOf(dealId)
    if (proposal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no accepted proposal here`)
    verifyUploadAuthorization(request.authorization, proposal.client, dealId)
    if (deal.state !== 'accepted') throw new CairnError('ERR_DEAL_STATE', `deal ${dealId.toString()} is ${deal.state}; a piece is taken only for an accepted deal`)
    if (deal.uploadBy !== undefined && this.now() > deal.uploadBy) {
      throw new CairnError('ERR_DEAL_EXPIRED', `deal ${dealId.toString()} had to be uploaded by ${deal.uploadBy} (unix seconds); it is now ${this.now()}`)
    }
    if (BigInt(request.contentLength) !== proposal.payloadSize) {
      throw new CairnError('ERR_CONTENT_LENGTH', `Content-Length is ${request.contentLength} bytes; the deal's payloadSize is ${proposal.payloadSize} bytes`)
    }
    const key = dealId.toString()
    if (this.uploading.has(key)) throw new CairnError('ERR_UPLOAD_IN_PROGRESS', `an upload for deal ${key} is already in progress`)
    // an upload still running at the deal's upload deadline is cut off by its expiry
    const expiry = new AbortController()
    this.uploading.set(key, expiry)
    try {
      return await this.receive(dealId, proposal, { ...request, signal: AbortSignal.any([request.signal, expiry.signal]) })
    } catch (err) {
      if (expiry.signal.aborted) throw expiry.signal.reason
      throw err
    } finally {
      this.uploading.delete(key)
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
    const node = this.options.node
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
    await this.lanes.run(dealId.toString(), async () => {
      const now = await this.ledger.deal(dealId)
      if (now?.state !== 'accepted' || request.signal.aborted) {
        await staged.abort()
        if (request.signal.aborted) throw request.signal.reason
        throw new CairnError('ERR_DEAL_STATE', `deal ${dealId.toString()} became ${now?.state ?? 'unknown'} during its upload`)
      }
      // another active deal may already hold these very bytes under the same name
      const sharedPiece = (await this.state.get(spaces.pieces, piece)) !== undefined
      this.committing.add(piece)
      try {
        await staged.commit()
        this.options.onUploadPhase?.('committed', dealId.toString())
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
      } finally {
        this.committing.delete(piece)
      }
    })
    this.options.onUploadPhase?.('recorded', dealId.toString())
    this.options.onDealActive?.({ dealId: dealId.toString(), payloadCid: proposal.payloadCid, pieceCid: staged.piece.cid, blocks: blocks.map(b => b.cid) })
    this.signedAsk = undefined
    // the upper tree layers, so that proofs read only the challenged regions (docs/performance.md)
    const layers = staged.piece.layers
    if (layers !== undefined) {
      await writeFileAtomic(this.prover.cachePath(piece), layers.encode()).catch((err) => { this.options.onCacheError?.(piece, err) })
    } else {
      await this.prover.build(piece).catch((err) => { this.options.onCacheError?.(piece, err) })
    }
    return await this.status(dealId.toString())
  }

  /**
   * Answers the deal's client's signed proof request (docs/protocol.md "Proof
   * requests") with a provider-signed proof: only the client's key,
   * at most the deal's own challenges, a request signed within the last few
   * minutes, and a few per deal at a time. The answered request is recorded
   * (`proof-answered`) and the proof carries the head that records it.
   */
  async prove (dealId: string, body: unknown): Promise<SignedProof> {
    const id = parseDealId(dealId)
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    const client = deal.client ?? (await this.proposalOf(id))?.client
    if (client === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId} has no accepted proposal here`)
    const request = verifyProofRequest(body, client)
    const r = request.payload
    if (!r.dealId.equals(id)) throw new CairnError('ERR_INVALID_ARGUMENT', `the request is for deal ${r.dealId.toString()}, sent to deal ${dealId}`)
    if (deal.state !== 'active' || deal.pieceCid === undefined) throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is ${deal.state}; only active deals are proven`)
    const allowed = Math.min(deal.challenges ?? (await this.proposalOf(id))?.challenges ?? this.terms.challenges, MAX_CHALLENGES)
    if (r.count > allowed) {
      throw new CairnError('ERR_TOO_MANY_CHALLENGES', `${r.count} challenges asked; deal ${dealId} was made for ${allowed} per proof`, { details: { offered: r.count, max: allowed } })
    }
    const now = this.now()
    if (deal.end !== undefined && now >= deal.end) throw new CairnError('ERR_DEAL_EXPIRED', `deal ${dealId} ended at ${deal.end} (unix seconds); it is no longer proven`)
    if (Math.abs(now - r.at) > REQUEST_CLOCK_SKEW) {
      throw new CairnError('ERR_REQUEST_EXPIRED', `the proof request was signed at ${r.at}, it is now ${now} (unix seconds); requests are taken within ${REQUEST_CLOCK_SKEW} s`)
    }
    const wait = this.proofRate.take(id.toString())
    if (wait !== undefined) throw new CairnError('ERR_RATE_LIMITED', `too many proof requests for deal ${dealId}; try again in ${wait} s`, { details: { retryAfter: wait } })
    return await this.lanes.run(id.toString(), async () => {
      // the deal may have expired while this request waited for its turn
      if ((await this.ledger.deal(id))?.state !== 'active') throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is no longer active`)
      return await this.answer(id, deal.pieceCid as CID, client, request)
    })
  }

  /**
   * Cancels a deal not yet active on its client's signed request
   * (docs/protocol.md "Cancelling a deal"): an upload in flight is cut off,
   * `deal-terminated` records the request and the reservation is freed. A
   * deal already cancelled answers the same; an active one cannot be.
   */
  async cancel (dealId: string, body: unknown): Promise<SignedDealStatus> {
    const id = parseDealId(dealId)
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    const client = deal.client ?? (await this.proposalOf(id))?.client
    if (client === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId} has no accepted proposal here`)
    const signed = verifyCancellation(body, client)
    if (!signed.payload.dealId.equals(id)) throw new CairnError('ERR_INVALID_ARGUMENT', `the cancellation is for deal ${signed.payload.dealId.toString()}, sent to deal ${dealId}`)
    const now = this.now()
    if (Math.abs(now - signed.payload.at) > REQUEST_CLOCK_SKEW) {
      throw new CairnError('ERR_REQUEST_EXPIRED', `the cancellation was signed at ${signed.payload.at}, it is now ${now} (unix seconds); it is taken within ${REQUEST_CLOCK_SKEW} s`)
    }
    const key = id.toString()
    await this.lanes.run(key, async () => {
      const current = await this.ledger.deal(id)
      if (current?.state === 'terminated') return
      if (current?.state !== 'accepted' && current?.state !== 'transferring') {
        throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is ${current?.state ?? 'unknown'}; only a deal not yet active can be cancelled`)
      }
      this.uploading.get(key)?.abort(new CairnError('ERR_DEAL_STATE', `deal ${dealId} was cancelled by its client`))
      await this.ledger.append('deal-terminated', {
        deal: id,
        provider: this.signer.did,
        reason: 'cancelled by the client',
        cancel: { payload: signed.payload, signer: signed.signer, signature: signed.signature }
      })
      this.signedAsk = undefined
      this.options.onDealEnded?.(key)
    })
    return await this.status(dealId)
  }

  /**
   * Expires up to `limit` deals the ledger's schedule says are due by `now`
   * (docs/protocol.md "Deal lifecycle"): an accepted deal past its upload
   * deadline (an upload still running is cut off) and an active deal past its
   * end. An ended deal's piece stops being served in the same batch, unless
   * another active deal holds it, and is queued for removal after the grace.
   */
  async expireDue (now: number, limit: number): Promise<{ due: number, expired: string[] }> {
    const due = await this.ledger.due(now, limit)
    const expired: string[] = []
    for (const { deal } of due) {
      if (await this.lanes.run(deal, async () => await this.expire(deal, now))) expired.push(deal)
    }
    if (expired.length > 0) this.signedAsk = undefined
    return { due: due.length, expired }
  }

  private async expire (deal: string, now: number): Promise<boolean> {
    const record = await this.ledger.deal(deal)
    const id = parseDealId(deal)
    if (record === undefined) return false
    if (record.state === 'accepted' || record.state === 'transferring') {
      if (record.uploadBy === undefined || record.uploadBy > now) return false
      this.uploading.get(deal)?.abort(new CairnError('ERR_DEAL_EXPIRED', `deal ${deal} had to be uploaded by ${record.uploadBy} (unix seconds)`))
      await this.ledger.append('deal-expired', { deal: id, provider: this.signer.did, reason: 'upload-window', uploadBy: record.uploadBy })
      this.options.onDealEnded?.(deal)
      return true
    }
    if (record.state !== 'active' || record.end === undefined || record.end > now) return false
    const extra: ExtraOp[] = []
    const piece = record.pieceCid?.toString()
    if (piece !== undefined && (await this.ledger.holders(piece)).every(d => d === deal)) {
      extra.push(...await this.unserve(piece, record.payloadCid))
      extra.push({ type: 'put', key: `${GC_PREFIX}${secondsKey(now + (this.terms.retentionGrace ?? DEFAULT_RETENTION_GRACE))}/${piece}`, value: new Uint8Array(0) })
    }
    await this.ledger.append('deal-expired', { deal: id, provider: this.signer.did, reason: 'end', end: record.end }, extra)
    this.options.onDealEnded?.(deal)
    return true
  }

  /**
   * The index deletions that stop a piece being served: its piece entries, its
   * whole-DAG entry, and every block entry that points into it (listed from
   * the piece file's frame headers, without reading the blocks).
   */
  private async unserve (piece: string, payloadCid: CID | undefined): Promise<ExtraOp[]> {
    const ops: ExtraOp[] = [{ type: 'del', key: PIECE_PREFIX + piece }, { type: 'del', key: PIECE_V1_PREFIX + pieceCidV1FromV2(CID.parse(piece)).toString() }]
    if (payloadCid !== undefined) {
      const dag = await this.state.get(spaces.dags, payloadCid.toString())
      if (dag !== undefined && new TextDecoder().decode(dag) === piece) ops.push({ type: 'del', key: DAG_PREFIX + payloadCid.toString() })
    }
    const cids = await carBlockCids(this.store.path(piece)).catch(() => [])
    for (const cid of cids) {
      const key = BLOCK_PREFIX + cid.toString()
      const at = await this.state.get(spaces.blocks, cid.toString())
      // a block another piece indexed last stays (it is that piece's to serve)
      if (at !== undefined && (dagCBOR.decode(at) as BlockLocation).piece === piece) ops.push({ type: 'del', key })
    }
    return ops
  }

  /** Removes up to `limit` piece files whose retention grace ended by `now` and that no deal holds again. */
  async collect (now: number, limit: number): Promise<{ due: number, removed: string[] }> {
    const removed: string[] = []
    const keys: string[] = []
    for await (const [key] of this.state.iterate(spaces.retained, { lt: secondsKey(now + 1), limit })) keys.push(key)
    for (const key of keys) {
      const piece = key.slice(key.indexOf('/') + 1)
      // a new deal for the same piece may have stored it again meanwhile
      const held = (await this.state.get(spaces.pieces, piece)) !== undefined || this.committing.has(piece) || (await this.ledger.holders(piece)).length > 0
      if (!held) {
        await rm(this.store.path(piece), { force: true })
        await rm(this.prover.cachePath(piece), { force: true })
        this.prover.forget(piece)
        this.suspect.delete(piece)
        removed.push(piece)
      }
      await this.state.batch([{ type: 'del', space: spaces.retained, key }])
    }
    return { due: keys.length, removed }
  }

  /** `open()` of a local piece; in a cluster, a piece another node holds is fetched first (`fetchPiece`). */
  private async local<T> (piece: string, open: () => Promise<T | undefined>): Promise<T | undefined> {
    const found = await open()
    if (found !== undefined || this.options.fetchPiece === undefined) return found
    return await this.options.fetchPiece(piece) ? await open() : undefined
  }

  private async answer (id: CID, pieceCid: CID, client: string, request: SignedProofRequest): Promise<SignedProof> {
    const piece = pieceCid.toString()
    if (this.options.fetchPiece !== undefined && !await this.store.has(piece)) await this.options.fetchPiece(piece)
    const { seed, count } = request.payload
    let payload: ProofPayload
    try {
      payload = await proveChallenge(this.prover, { dealId: id, pieceCid }, { seed, count }, this.now())
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_PIECE_CORRUPT') {
        // lost or changed bytes are reported and the piece is not served until a proof passes again
        // (start-up recovery re-checks it and fails the deal if it is still wrong)
        if (!this.suspect.has(piece)) this.options.onPieceFailed?.({ deal: id.toString(), piece, code: 'ERR_PIECE_CORRUPT', reason: (err as Error).message })
        this.suspect.add(piece)
      }
      throw err
    }
    this.suspect.delete(piece)
    const entry = await this.ledger.append('proof-answered', {
      deal: id,
      client,
      seed,
      count,
      request: { payload: request.payload, signer: request.signer, signature: request.signature }
    })
    return signProof(this.signer, { ...payload, head: { seq: entry.seq, cid: entry.cid } })
  }

  async summary (dealId: string): Promise<DealLogFields | undefined> {
    const deal = await this.ledger.deal(dealId).catch(() => undefined)
    if (deal === undefined) return undefined
    return { client: deal.client, pieceCid: deal.pieceCid?.toString(), pieceSize: deal.pieceSize === undefined ? undefined : Number(deal.pieceSize) }
  }

  async status (dealId: string): Promise<SignedDealStatus> {
    const id = parseDealId(dealId)
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    return signDealStatus(this.signer, { dealId: id, provider: this.signer.did, state: deal.state, at: this.now() })
  }

  // BlockSource: only blocks indexed by an active deal's upload
  async get (cid: CID): Promise<Uint8Array | undefined> {
    const value = await this.state.get(spaces.blocks, cid.toString())
    if (value === undefined) return undefined
    const at = dagCBOR.decode(value) as BlockLocation
    if (this.suspect.has(at.piece)) return undefined
    const handle = await this.local(at.piece, async () => await openFile(this.store.path(at.piece), 'r').catch(() => undefined))
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
    const value = await this.state.get(spaces.dags, root.toString())
    if (value === undefined) return undefined
    return await this.open(CID.parse(new TextDecoder().decode(value)))
  }

  // PieceSource: only pieces stored under a deal
  async open (pieceCid: CID): Promise<PieceHandle | undefined> {
    let v2 = pieceCid.toString()
    if (pieceCid.code === 0xf101) {
      const mapped = await this.state.get(spaces.piecesV1, v2)
      if (mapped === undefined) return undefined
      v2 = new TextDecoder().decode(mapped)
    }
    if ((await this.state.get(spaces.pieces, v2)) === undefined || this.suspect.has(v2)) return undefined
    const reader: PieceHandle | undefined = await this.store.open(v2) ?? await this.options.remotePiece?.(v2) ?? await this.local(v2, async () => await this.store.open(v2))
    if (reader === undefined) return undefined
    return { size: reader.size, createReadStream: (start, end) => reader.createReadStream(start, end), openFile: reader.openFile }
  }

  // ProviderAdmin
  async providerStatus (): Promise<ProviderStatus> {
    const stats = await this.ledger.stats()
    const used = stats.reserved + stats.used
    return {
      did: this.signer.did,
      url: this.terms.endpoint,
      capacity: { total: Number(this.terms.capacity), used: Number(used), free: Number(this.terms.capacity > used ? this.terms.capacity - used : 0n) },
      deals: { ...stats.deals },
      bytesStored: Number(stats.stored),
      proofsAnswered: stats.proofsAnswered,
      earnings: stats.earned.toString(),
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
        // docs/json.md: one name per concept (root), sizes as numbers of bytes
        root: deal.payloadCid?.toString(),
        pieceCid: deal.pieceCid?.toString(),
        pieceSize: deal.pieceSize === undefined ? undefined : Number(deal.pieceSize),
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
    return { status: async () => await this.providerStatus(), deals: async (filter) => await this.deals(filter) }
  }
}
