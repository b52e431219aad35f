/**
 * The provider's deal side over the repo, composed of one module per job:
 * the signed ask (./ask.ts), proposals (./proposals.ts), piece uploads
 * (./uploads.ts), proof requests (./proof-requests.ts), serving blocks and
 * pieces (./serving.ts) and how deals end (./lifecycle.ts), all sharing one
 * DealContext (./context.ts). ProviderDeals is the facade the HTTP routes,
 * the gateway and the node hold: DealService, BlockSource and PieceSource.
 */
import type { CID } from 'multiformats/cid'
import type { SignedAcceptance, SignedAsk, SignedDealStatus } from '../protocol/interface.js'
import { dealIdsWith } from '../ledger/deals.js'
import type { Ledger } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'
import { LevelStore } from '../state/level.js'
import type { StateStore } from '../state/interface.js'
import type { PieceStore } from '../store/pieces.js'
import type { Signer } from '../protocol/signing.js'
import { ProviderAsk } from './ask.js'
import { DealContext, type ProviderDealsOptions } from './context.js'
import { Lifecycle } from './lifecycle.js'
import { ProofRequests } from './proof-requests.js'
import { PieceProver, type SignedProof } from './proofs.js'
import { ProposalDesk } from './proposals.js'
import { Serving } from './serving.js'
import type { ProviderTerms } from './terms.js'
import { Uploads } from './uploads.js'
import type { BlockSource, DealLogFields, DealService, DealSummary, PieceHandle, PieceSource, ProviderAdmin, ProviderStatus, UploadRequest } from './interface.js'

export class ProviderDeals implements DealService, BlockSource, PieceSource {
  private readonly startedAt = new Date().toISOString()
  /** layer caches and proofs of the stored pieces (docs/protocol.md "Proofs") */
  readonly prover: PieceProver
  private readonly c: DealContext
  private readonly proposals: ProposalDesk
  private readonly uploads: Uploads
  private readonly proofs: ProofRequests
  private readonly serving: Serving
  private readonly lifecycle: Lifecycle

  constructor (
    state: StateStore | Database,
    private readonly ledger: Ledger,
    store: PieceStore,
    private readonly signer: Signer,
    readonly terms: ProviderTerms,
    now: () => number = () => Math.floor(Date.now() / 1000),
    options: ProviderDealsOptions = {}
  ) {
    this.prover = new PieceProver(store, options)
    // the repo's LevelDB (one node), or the cluster's state store (PostgreSQL, docs/cluster.md)
    const stateStore = 'transaction' in state ? state : new LevelStore(state)
    this.c = new DealContext(stateStore, ledger, store, signer, terms, now, options, this.prover, new ProviderAsk(ledger, signer, terms, now))
    this.proposals = new ProposalDesk(this.c)
    this.uploads = new Uploads(this.c)
    this.proofs = new ProofRequests(this.c)
    this.serving = new Serving(this.c)
    this.lifecycle = new Lifecycle(this.c)
  }

  async ask (): Promise<SignedAsk> {
    return await this.c.ask.ask()
  }

  async propose (body: unknown): Promise<SignedAcceptance> {
    return await this.proposals.propose(body)
  }

  async upload (request: UploadRequest): Promise<SignedDealStatus> {
    return await this.uploads.upload(request)
  }

  async prove (dealId: string, body: unknown): Promise<SignedProof> {
    return await this.proofs.prove(dealId, body)
  }

  async cancel (dealId: string, body: unknown): Promise<SignedDealStatus> {
    return await this.lifecycle.cancel(dealId, body)
  }

  async expireDue (now: number, limit: number): Promise<{ due: number, expired: string[] }> {
    return await this.lifecycle.expireDue(now, limit)
  }

  async collect (now: number, limit: number): Promise<{ due: number, removed: string[] }> {
    return await this.lifecycle.collect(now, limit)
  }

  async summary (dealId: string): Promise<DealLogFields | undefined> {
    const deal = await this.ledger.deal(dealId).catch(() => undefined)
    if (deal === undefined) return undefined
    return { client: deal.client, pieceCid: deal.pieceCid?.toString(), pieceSize: deal.pieceSize === undefined ? undefined : Number(deal.pieceSize) }
  }

  async status (dealId: string): Promise<SignedDealStatus> {
    return await this.c.status(dealId)
  }

  // BlockSource: only blocks indexed by an active deal's upload
  async get (cid: CID): Promise<Uint8Array | undefined> {
    return await this.serving.get(cid)
  }

  async dag (root: CID): Promise<PieceHandle | undefined> {
    return await this.serving.dag(root)
  }

  // PieceSource: only pieces stored under a deal
  async open (pieceCid: CID): Promise<PieceHandle | undefined> {
    return await this.serving.open(pieceCid)
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
    for (const dealId of await dealIdsWith(this.ledger, 'deal-accepted')) {
      const id = dealId.toString()
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
