/**
 * A provider node on a repo: ledger, piece store, deal service and HTTP
 * service wired together and listening. `cairn provider start`, `cairn demo`
 * and the tests all start a provider this one way.
 */
import { LevelLedger } from '../ledger/level.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { ProviderDeals, type ProviderDealsOptions, type ProviderTerms } from './deals.js'
import type { Logger } from './interface.js'
import { recoverProvider } from './recovery.js'
import { warmUploadCheck } from './upload-check.js'
import { createProviderServer, type HttpService, type ServerLimits } from './server.js'
import { Announcer, type AnnouncerOptions } from '../routing/announcer.js'
import { providerDealSource } from '../routing/deal-source.js'
import { announceAddress } from '../routing/multiaddr.js'

export interface ProviderNode {
  readonly repo: Repo
  readonly ledger: LevelLedger
  readonly store: PieceStore
  readonly node: ProviderDeals
  readonly service: HttpService
  readonly url: string
  readonly terms: ProviderTerms
  /** Announces active deals to indexers, when started with `announce` (docs/routing.md). */
  readonly announcer: Announcer | undefined
  /** Stops serving and flushes the ledger; the repo stays open for the caller. */
  close (): Promise<void>
}

export interface ProviderNodeOptions {
  host?: string
  port?: number
  log?: Logger
  limits?: Partial<ServerLimits>
  deals?: ProviderDealsOptions
  now?: () => number
  /** Clean up what a crash left behind before serving (SPEC §3 "Transfer"). */
  recover?: boolean
  /** Announce what this provider serves to indexers (`provider start --announce-to`). */
  announce?: AnnounceOptions
}

export interface AnnounceOptions extends Omit<AnnouncerOptions, 'addresses' | 'source' | 'log'> {
  /** where clients reach this provider, as http(s) URLs or multiaddrs (default: the URL it listens on) */
  addresses?: readonly string[]
}

export async function startProviderNode (repo: Repo, terms: ProviderTerms, options: ProviderNodeOptions = {}): Promise<ProviderNode> {
  const db = await repo.db()
  const log = options.log ?? (() => {})
  const ledger = await LevelLedger.open(db, repo.identity)
  const store = new PieceStore(repo.piecesDir, repo.tmpDir)
  if (options.recover === true) {
    const recovered = await recoverProvider({ db, ledger, store, log })
    log('provider-recovered', { tempFiles: recovered.tempFilesRemoved, quarantined: recovered.quarantined.length, failed: recovered.failed.length, danglingBlocks: recovered.danglingBlocks, pieces: recovered.piecesChecked })
  }
  // compile the upload check before the first upload needs it, and before the event-loop
  // histogram starts (an optimisation: a failure only costs that)
  await warmUploadCheck().catch((err) => { log('warm-up-failed', { error: (err as Error).message }) })
  // content routing hears of deals through these two seams (set once the announcer runs)
  let announcer: Announcer | undefined
  const dealOptions: ProviderDealsOptions = {
    ...options.deals,
    onDealActive: (deal) => {
      options.deals?.onDealActive?.(deal)
      announcer?.dealActive(deal.dealId, deal.blocks)
    },
    onDealEnded: (dealId) => {
      options.deals?.onDealEnded?.(dealId)
      announcer?.dealEnded(dealId)
    }
  }
  const node = new ProviderDeals(db, ledger, store, repo.identity, terms, options.now, dealOptions)
  const service = createProviderServer({
    deals: node,
    blocks: node,
    pieces: node,
    log,
    limits: options.limits,
    gauges: async () => {
      const s = await node.admin().status()
      return { dealsByState: s.deals, bytesStored: s.bytesStored }
    }
  })
  const url = await service.listen(options.host ?? '127.0.0.1', options.port ?? 0)
  terms.endpoint = url
  const announce = options.announce
  if (announce !== undefined && announce.indexers.length > 0) {
    try {
      const addresses = (announce.addresses ?? [url]).map(announceAddress)
      announcer = await Announcer.start(db, repo.identity, { ...announce, addresses, source: providerDealSource(node, ledger, store), log })
    } catch (err) {
      await service.close()
      throw err
    }
  }
  return {
    repo,
    ledger,
    store,
    node,
    service,
    url,
    terms,
    announcer,
    close: async () => {
      await announcer?.close()
      await service.close()
      await ledger.flush?.()
    }
  }
}
