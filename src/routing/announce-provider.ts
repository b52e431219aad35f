/**
 * Announcing for a running provider node (`provider start --announce-to`):
 * the announcer follows the node's deal events (`deal-active` after an
 * upload is recorded, `deal-ended`), reconciles with its deals, and stops
 * when the node closes.
 *
 * Which deals are active comes from the node's deal service; the blocks of a
 * deal are read back from its piece — a CARv1 of the deal's DAG, every block
 * verified on the way — only when an event did not carry them (a
 * reconciliation after a restart or a dropped event).
 */
import type { CID } from 'multiformats/cid'
import { indexCar } from '../car/index.js'
import { CairnError } from '../errors.js'
import type { Ledger } from '../ledger/interface.js'
import type { DealSummary, Logger } from '../provider/interface.js'
import type { ProviderNode } from '../provider/node.js'
import type { PieceStore } from '../store/pieces.js'
import { Announcer, type AnnouncerOptions, type DealSource } from './announcer.js'
import { announceAddress } from './multiaddr.js'

export interface AnnounceOptions extends Omit<AnnouncerOptions, 'addresses' | 'source' | 'log'> {
  /** where clients reach the provider, as http(s) URLs or multiaddrs (default: the URL it listens on) */
  addresses?: readonly string[]
}

/** Starts announcing what `provider` serves; the announcer is closed first when the provider closes. */
export async function announceProvider (provider: ProviderNode, options: AnnounceOptions, log?: Logger): Promise<Announcer> {
  const addresses = (options.addresses ?? [provider.url]).map(announceAddress)
  const announcer = await Announcer.start(await provider.repo.db(), provider.repo.identity, {
    ...options,
    addresses,
    source: providerDealSource(provider.node, provider.ledger, provider.store),
    log
  })
  provider.events.on('deal-active', (deal) => { announcer.dealActive(deal.dealId, deal.blocks) })
  provider.events.on('deal-ended', (dealId) => { announcer.dealEnded(dealId) })
  provider.onClose(async () => { await announcer.close() })
  return announcer
}

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
