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

export interface ProviderNode {
  readonly repo: Repo
  readonly ledger: LevelLedger
  readonly store: PieceStore
  readonly node: ProviderDeals
  readonly service: HttpService
  readonly url: string
  readonly terms: ProviderTerms
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
  const node = new ProviderDeals(db, ledger, store, repo.identity, terms, options.now, options.deals)
  const service = createProviderServer({
    deals: node,
    blocks: node,
    pieces: node,
    log,
    limits: options.limits,
    gauges: async () => {
      const s = await node.admin().status()
      return { dealsByState: s.deals, bytesStored: s.bytesStored, capacity: s.capacity }
    }
  })
  const url = await service.listen(options.host ?? '127.0.0.1', options.port ?? 0)
  terms.endpoint = url
  return {
    repo,
    ledger,
    store,
    node,
    service,
    url,
    terms,
    close: async () => {
      await service.close()
      await ledger.flush?.()
    }
  }
}
