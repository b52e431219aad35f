/**
 * A provider node on a repo: ledger, piece store, deal service and HTTP
 * service wired together and listening. `cairn provider start`, `cairn demo`
 * and the tests all start a provider this one way.
 */
import { EventEmitter } from 'node:events'
import { LevelLedger } from '../ledger/level.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { ProviderDeals, type ActiveDeal, type ProviderDealsOptions, type ProviderTerms } from './deals.js'
import type { Logger } from './interface.js'
import { LifecycleScheduler, type LifecycleOptions } from './expiry.js'
import { recoverProvider } from './recovery.js'
import { warmUploadCheck } from './upload-check.js'
import { createProviderServer, type HttpService, type ServerLimits } from './server.js'
import { startPdp, type PdpOptions, type PdpService } from '../pdp/mount.js'
import { SelfCheck, type SelfCheckOptions } from './selfcheck.js'
import type { RoundTripTarget } from './selfcheck-roundtrip.js'
import { PieceProver } from './proofs.js'

export interface ProviderNode {
  readonly repo: Repo
  readonly ledger: LevelLedger
  readonly store: PieceStore
  readonly node: ProviderDeals
  readonly service: HttpService
  readonly url: string
  readonly terms: ProviderTerms
  /** expires deals and removes pieces as they fall due (undefined when started without it) */
  readonly lifecycle: LifecycleScheduler | undefined
  /** the PDP API's pieces and sessions (docs/pdp.md) */
  readonly pdp: PdpService
  /** the scheduled self-check (`--self-check`), when started with one */
  readonly selfCheck: SelfCheck | undefined
  /** Deals becoming active or ending, for the parts of a node that follow them (content routing, docs/routing.md). */
  readonly events: EventEmitter<ProviderEvents>
  /** Runs `fn` first when the node closes, before it stops serving (e.g. to stop announcing). */
  onClose (fn: () => Promise<void>): void
  /** Stops serving and flushes the ledger; the repo stays open for the caller. */
  close (): Promise<void>
}

export interface ProviderEvents {
  'deal-active': [ActiveDeal]
  'deal-ended': [string]
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
  /** the expiry and piece-removal schedule (docs/protocol.md "Deal lifecycle"); false: none (tests drive it by hand) */
  lifecycle?: LifecycleOptions | false
  /** park TTL and quotas of the PDP API (docs/pdp.md) */
  pdp?: PdpOptions
  /** prove and verify a sample of its own pieces on a schedule (src/provider/selfcheck.ts) */
  selfCheck?: Omit<SelfCheckOptions, 'log'>
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
  // the deal service's two seams, passed on as events (a listener must not throw: it runs on the upload's path)
  const events = new EventEmitter<ProviderEvents>()
  const dealOptions: ProviderDealsOptions = {
    ...options.deals,
    onDealActive: (deal) => {
      options.deals?.onDealActive?.(deal)
      events.emit('deal-active', deal)
    },
    onDealEnded: (dealId) => {
      options.deals?.onDealEnded?.(dealId)
      events.emit('deal-ended', dealId)
    }
  }
  const node = new ProviderDeals(db, ledger, store, repo.identity, terms, options.now, dealOptions)
  const pdp = await startPdp(db, ledger, repo, { payee: terms.payee, ...options.pdp }, log)
  const service = createProviderServer({
    deals: node,
    blocks: pdp.blockSource(node),
    pieces: pdp.pieceSource(node),
    routes: (router, shared) => { pdp.mount(router, shared) },
    log,
    limits: options.limits,
    gauges: async () => {
      const s = await node.admin().status()
      return { dealsByState: s.deals, bytesStored: s.bytesStored, capacity: s.capacity }
    }
  })
  const url = await service.listen(options.host ?? '127.0.0.1', options.port ?? 0)
  terms.endpoint = url
  const lifecycle = options.lifecycle === false ? undefined : new LifecycleScheduler(node, { now: options.now, log, ...options.lifecycle })
  lifecycle?.start()
  const selfCheck = options.selfCheck === undefined ? undefined : new SelfCheck(node, service.metrics.registry, { log, roundTrip: selfCheckTarget(url, pdp), ...options.selfCheck })
  selfCheck?.start()
  const closers: Array<() => Promise<void>> = []
  return {
    repo,
    ledger,
    store,
    node,
    service,
    url,
    terms,
    lifecycle,
    pdp,
    selfCheck,
    events,
    onClose: (fn) => { closers.push(fn) },
    close: async () => {
      for (const fn of closers.splice(0)) await fn()
      await selfCheck?.stop()
      await lifecycle?.stop()
      pdp.close()
      await service.close()
      await ledger.flush?.()
    }
  }
}

/** The self-check's round trip goes through the PDP ingest path on the node's own listener (src/provider/selfcheck-roundtrip.ts). */
export function selfCheckTarget (url: string, pdp: PdpService): RoundTripTarget {
  const prover = new PieceProver(pdp.pieces.store)
  return {
    url,
    prover,
    discard: async (piece) => {
      prover.forget(piece)
      await pdp.pieces.discard(piece)
    }
  }
}
