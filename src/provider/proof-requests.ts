/**
 * A deal's proof requests (docs/protocol.md "Proof requests"): checked against
 * the deal and its client's key, rate-limited per deal, answered from the
 * piece's layer cache (./proofs.ts) and recorded as `proof-answered`.
 */
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import type { SignedProofRequest } from '../protocol/interface.js'
import { MAX_CHALLENGES, REQUEST_CLOCK_SKEW, verifyProofRequest } from '../protocol/proof-request.js'
import type { DealContext } from './context.js'
import { proveChallenge, signProof, type ProofPayload, type SignedProof } from './proofs.js'
import { RateLimiter, type RateLimit } from './rate-limit.js'

/** An honest client asks once per proving period; a few retries and manual audits fit in the burst. */
export const DEFAULT_PROOF_RATE: RateLimit = { burst: 8, perSecond: 1 / 15 }

export class ProofRequests {
  private readonly proofRate: RateLimiter

  constructor (private readonly c: DealContext) {
    this.proofRate = new RateLimiter(c.options.proofRate ?? DEFAULT_PROOF_RATE)
  }

  /**
   * Answers the deal's client's signed proof request (docs/protocol.md "Proof
   * requests") with a provider-signed proof: only the client's key,
   * at most the deal's own challenges, a request signed within the last few
   * minutes, and a few per deal at a time. The answered request is recorded
   * (`proof-answered`) and the proof carries the head that records it.
   */
  async prove (dealId: string, body: unknown): Promise<SignedProof> {
    const { id, deal, client } = await this.c.dealOfClient(dealId)
    const request = verifyProofRequest(body, client)
    const r = request.payload
    if (!r.dealId.equals(id)) throw new CairnError('ERR_INVALID_ARGUMENT', `the request is for deal ${r.dealId.toString()}, sent to deal ${dealId}`)
    if (deal.state !== 'active' || deal.pieceCid === undefined) throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is ${deal.state}; only active deals are proven`)
    const allowed = Math.min(deal.challenges ?? (await this.c.proposalOf(id))?.challenges ?? this.c.terms.challenges, MAX_CHALLENGES)
    if (r.count > allowed) {
      throw new CairnError('ERR_TOO_MANY_CHALLENGES', `${r.count} challenges asked; deal ${dealId} was made for ${allowed} per proof`, { details: { offered: r.count, max: allowed } })
    }
    const now = this.c.now()
    if (deal.end !== undefined && now >= deal.end) throw new CairnError('ERR_DEAL_EXPIRED', `deal ${dealId} ended at ${deal.end} (unix seconds); it is no longer proven`)
    if (Math.abs(now - r.at) > REQUEST_CLOCK_SKEW) {
      throw new CairnError('ERR_REQUEST_EXPIRED', `the proof request was signed at ${r.at}, it is now ${now} (unix seconds); requests are taken within ${REQUEST_CLOCK_SKEW} s`)
    }
    const wait = this.proofRate.take(id.toString())
    if (wait !== undefined) throw new CairnError('ERR_RATE_LIMITED', `too many proof requests for deal ${dealId}; try again in ${wait} s`, { details: { retryAfter: wait } })
    return await this.c.lanes.run(id.toString(), async () => {
      // the deal may have expired while this request waited for its turn
      if ((await this.c.ledger.deal(id))?.state !== 'active') throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is no longer active`)
      return await this.answer(id, deal.pieceCid as CID, client, request)
    })
  }

  private async answer (id: CID, pieceCid: CID, client: string, request: SignedProofRequest): Promise<SignedProof> {
    const { seed, count } = request.payload
    const remote = this.c.options.remoteProof
    // in a cluster, a node without the piece has a holder prove it and checks the proof against the piece CID
    // (src/cluster/proofs.ts), rather than copy the whole piece into its store on a read
    const payload = remote !== undefined && !await this.c.store.has(pieceCid.toString())
      ? { dealId: id, pieceCid, seed, count, at: this.c.now(), proofs: await remote(pieceCid.toString(), { dealId: id, seed, count }) }
      : await this.proveLocal(id, pieceCid, { seed, count })
    const entry = await this.c.ledger.append('proof-answered', {
      deal: id,
      client,
      seed,
      count,
      request: { payload: request.payload, signer: request.signer, signature: request.signature }
    })
    return signProof(this.c.signer, { ...payload, head: { seq: entry.seq, cid: entry.cid } })
  }

  /** A proof from this node's own copy; ERR_PIECE_CORRUPT marks the piece suspect. */
  private async proveLocal (id: CID, pieceCid: CID, challenge: { seed: Uint8Array, count: number }): Promise<ProofPayload> {
    const piece = pieceCid.toString()
    let payload: ProofPayload
    try {
      payload = await proveChallenge(this.c.prover, { dealId: id, pieceCid }, challenge, this.c.now())
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_PIECE_CORRUPT') {
        // lost or changed bytes are reported and the piece is not served until a proof passes again
        // (start-up recovery re-checks it and fails the deal if it is still wrong)
        if (!this.c.suspect.has(piece)) this.c.options.onPieceFailed?.({ deal: id.toString(), piece, code: 'ERR_PIECE_CORRUPT', reason: (err as Error).message })
        this.c.suspect.add(piece)
      }
      throw err
    }
    this.c.suspect.delete(piece)
    return payload
  }
}
