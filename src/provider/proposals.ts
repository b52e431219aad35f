/**
 * Proposals (docs/protocol.md "Proposal and acceptance"): each is checked
 * against the ask and the ledger (src/protocol/rules.ts) and its acceptance
 * recorded as `deal-accepted`, one at a time.
 */
import { CairnError } from '../errors.js'
import { signAcceptance } from '../protocol/acceptance.js'
import type { SignedAcceptance } from '../protocol/interface.js'
import { checkProposal } from '../protocol/rules.js'
import type { Signed } from '../protocol/signing.js'
import { record } from '../protocol/validate.js'
import type { LedgerEntry } from '../ledger/interface.js'
import { admissionGuard } from '../ledger/admission.js'
import type { DealContext } from './context.js'
import { DEFAULT_MAX_START_DELAY, DEFAULT_UPLOAD_WINDOW, uploadDeadline } from './terms.js'

export class ProposalDesk {
  /**
   * Proposals are checked and recorded one at a time: the capacity and replay
   * checks read the ledger, and two proposals checked before either is recorded
   * could both take the last free bytes or the same nonce.
   */
  private proposals: Promise<unknown> = Promise.resolve()

  constructor (private readonly c: DealContext) {}

  async propose (body: unknown): Promise<SignedAcceptance> {
    const m = record(body, 'signed proposal', ['payload', 'signer', 'signature'])
    const envelope: Signed<unknown> = { payload: m.payload, signer: m.signer as string, signature: m.signature as Uint8Array }
    const turn = this.proposals.then(async () => await this.accept(envelope))
    this.proposals = turn.catch(() => {})
    return await turn
  }

  /** Checks a proposal against the ask and the ledger and records it: one proposal at a time (see `proposals`). */
  private async accept (envelope: Signed<unknown>): Promise<SignedAcceptance> {
    const ask = (await this.c.ask.ask()).payload
    const checked = await checkProposal(envelope, ask, {
      freeCapacity: ask.freeCapacity,
      hasDeal: async (id) => (await this.c.ledger.deal(id)) !== undefined,
      hasNonce: async (client, nonce) => await this.c.ledger.nonceUsed(client, nonce)
    }, { now: this.c.now(), maxStartDelay: this.c.terms.maxStartDelay ?? DEFAULT_MAX_START_DELAY })
    const p = checked.signed.payload
    if (p.head === undefined) {
      throw new CairnError('ERR_UNSUPPORTED_VERSION', 'the proposal carries no ledger head (deal-proposal/v1); this provider takes deal-proposal/v2 (docs/protocol.md)')
    }
    const acceptedAt = this.c.now()
    const uploadBy = uploadDeadline(acceptedAt, p.start, this.c.terms.uploadWindow ?? DEFAULT_UPLOAD_WINDOW)
    // checked again with the ledger head held: on a cluster another node may have taken the bytes meanwhile
    const guard = admissionGuard({ dealId: checked.dealId, client: p.client, nonce: p.nonce, pieceSize: p.pieceSize, capacity: this.c.terms.capacity })
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
    const [entry] = await this.c.ledger.appendAll([{ kind: 'deal-accepted', fields, guard }]) as [LedgerEntry]
    this.c.ask.invalidate()
    return signAcceptance(this.c.signer, { dealId: checked.dealId, client: p.client, provider: p.provider, pieceCid: p.pieceCid, acceptedAt, uploadBy, head: { seq: entry.seq, cid: entry.cid } })
  }
}
