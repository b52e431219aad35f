/**
 * The provider's signed ask (docs/protocol.md "Ask"): its terms and the free
 * capacity the ledger's totals leave, re-signed when half its validity has
 * passed or the free capacity changed.
 */
import { signAsk } from '../protocol/ask.js'
import type { Ask, SignedAsk } from '../protocol/interface.js'
import type { Signer } from '../protocol/signing.js'
import type { Ledger } from '../ledger/interface.js'
import type { ProviderTerms } from './terms.js'

export class ProviderAsk {
  private signedAsk: SignedAsk | undefined
  private askSeq = 0

  constructor (
    private readonly ledger: Ledger,
    private readonly signer: Signer,
    private readonly terms: ProviderTerms,
    private readonly now: () => number
  ) {}

  /** The free capacity may have changed: the next `ask()` signs anew. */
  invalidate (): void {
    this.signedAsk = undefined
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
}
