/**
 * The provider's deals as the announcer sees them: which are active (from the
 * provider's deal service) and the blocks of each, read back from its piece —
 * a CARv1 of the deal's DAG, every block verified on the way. Reading a piece
 * back is the slow path: a deal that becomes active hands its blocks to the
 * announcer directly; this serves reconciliation after a restart or a
 * dropped event.
 */
import type { CID } from 'multiformats/cid'
import { indexCar } from '../car/index.js'
import { CairnError } from '../errors.js'
import type { Ledger } from '../ledger/interface.js'
import type { DealSummary } from '../provider/interface.js'
import type { PieceStore } from '../store/pieces.js'
import type { DealSource } from './announcer.js'

export function providerDealSource (deals: { deals: (filter: { state?: string }) => Promise<DealSummary[]> }, ledger: Ledger, store: PieceStore): DealSource {
  return {
    async * activeDeals () {
      for (const deal of await deals.deals({ state: 'active' })) yield deal.id
    },
    async * blocks (dealId: string): AsyncGenerator<CID> {
      const deal = await ledger.deal(dealId)
      if (deal?.state !== 'active' || deal.pieceCid === undefined) throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is ${deal?.state ?? 'unknown'}; only an active deal's blocks are announced`)
      const piece = await store.open(deal.pieceCid.toString())
      if (piece === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `the piece ${deal.pieceCid.toString()} of deal ${dealId} is not in the store`)
      for await (const entry of indexCar(piece.createReadStream() as AsyncIterable<Uint8Array>)) yield entry.cid
    }
  }
}
