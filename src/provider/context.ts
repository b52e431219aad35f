/**
 * What the provider's jobs (ask, proposals, uploads, proof requests, serving,
 * lifecycle) share: the ledger, the piece store and the state store they work
 * over, the signer and terms, and the little in-memory state that must be one
 * for all of them — the per-deal lanes, the uploads in flight, the pieces
 * being committed and the pieces a proof found corrupt.
 */
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { dealView, proposalOf } from '../ledger/deals.js'
import type { DealRecord, Ledger } from '../ledger/interface.js'
import { signDealStatus } from '../protocol/acceptance.js'
import type { Proposal, SignedDealStatus } from '../protocol/interface.js'
import type { LeafProofMessage } from '../protocol/proof.js'
import { parseDealId } from '../protocol/proposal.js'
import type { Signer } from '../protocol/signing.js'
import type { StateStore } from '../state/interface.js'
import type { PieceStore } from '../store/pieces.js'
import type { ProviderAsk } from './ask.js'
import type { FailedPiece, PieceHandle } from './interface.js'
import type { PieceProver, PieceProverOptions } from './proofs.js'
import type { RateLimit } from './rate-limit.js'
import { KeyedQueue } from './serial.js'
import type { ProviderTerms } from './terms.js'

/** Where a block lies in a stored piece (the `blocks` space's value). */
export interface BlockLocation { piece: string, offset: number, length: number }

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
  /**
   * Cluster mode: the leaf proofs of a challenge for a piece another node
   * holds, computed there and checked here against the piece CID
   * (src/cluster/work.ts `prove`); a proof request for a piece not in this
   * node's store is answered with them, without copying the piece.
   */
  remoteProof?: (pieceCid: string, challenge: { dealId: CID, seed: Uint8Array, count: number }) => Promise<LeafProofMessage[]>
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

export class DealContext {
  /** uploads in flight, each abortable when its deal expires */
  readonly uploading = new Map<string, AbortController>()
  /** pieces renamed into the store whose ledger batch has not committed yet: never collected */
  readonly committing = new Set<string>()
  /** what reads a deal's state and appends on it (upload commit, expiry, proofs) runs one at a time per deal */
  readonly lanes = new KeyedQueue()
  /** pieces a proof found corrupt: neither the gateway nor the piece route serves them */
  readonly suspect = new Set<string>()

  constructor (
    /** where the provider's indexes live: blocks, pieces, DAGs, retained pieces */
    readonly state: StateStore,
    readonly ledger: Ledger,
    readonly store: PieceStore,
    readonly signer: Signer,
    readonly terms: ProviderTerms,
    readonly now: () => number,
    readonly options: ProviderDealsOptions,
    /** layer caches and proofs of the stored pieces (docs/protocol.md "Proofs") */
    readonly prover: PieceProver,
    /** the signed ask, re-signed after anything that changes the free capacity */
    readonly ask: ProviderAsk
  ) {}

  /** The accepted proposal of a deal, from its `deal-accepted` entry. */
  async proposalOf (dealId: CID): Promise<Proposal | undefined> {
    const view = await dealView(this.ledger, dealId)
    return view === undefined ? undefined : proposalOf(view)
  }

  /** A deal this provider holds and the client whose signature acts on it, or ERR_DEAL_NOT_FOUND. */
  async dealOfClient (dealId: string): Promise<{ id: CID, deal: DealRecord, client: string }> {
    const id = parseDealId(dealId)
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    const client = deal.client ?? (await this.proposalOf(id))?.client
    if (client === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId} has no accepted proposal here`)
    return { id, deal, client }
  }

  /** The provider-signed status of a deal, or ERR_DEAL_NOT_FOUND. */
  async status (dealId: string): Promise<SignedDealStatus> {
    const id = parseDealId(dealId)
    const deal = await this.ledger.deal(id)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId} at this provider`)
    return signDealStatus(this.signer, { dealId: id, provider: this.signer.did, state: deal.state, at: this.now() })
  }
}
