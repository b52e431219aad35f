/**
 * A provider node on a repo: ledger, piece store, deal service and HTTP
 * service wired together and listening. `cairn provider start`, `cairn demo`
 * and the tests all start a provider this one way.
 */
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { CairnError } from '../errors.js'
import { LevelLedger } from '../ledger/level.js'
import { LevelStore } from '../state/level.js'
import type { StateLedger } from '../ledger/state.js'
import { openClusterState, type ClusterState } from '../cluster/node.js'
import { internalPieceHandler, INTERNAL_PIECE_ROUTE } from '../cluster/pieces.js'
import { internalProofHandler, INTERNAL_PROOF_ROUTE } from '../cluster/proofs.js'
import { ClusterWork, type ClusterWorkOptions } from '../cluster/work.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { ProviderDeals } from './deals.js'
import type { ActiveDeal, ProviderDealsOptions } from './context.js'
import type { ProviderTerms } from './terms.js'
import type { Logger } from './interface.js'
import { LifecycleScheduler, type LifecycleOptions, type LifecycleWork } from './expiry.js'
import { recoverProvider } from './recovery.js'
import { recoverClusterNode } from '../cluster/recovery.js'
import { warmUploadCheck } from './upload-check.js'
import { createProviderServer, type HttpService, type ServerLimits } from './server.js'
import { pdpPieceStore, startPdp, type PdpOptions, type PdpService } from '../pdp/mount.js'
import { dealFromHeldRoute } from '../pdp/deal-from-held.js'
import { SelfCheck, type SelfCheckOptions } from './selfcheck.js'
import type { RoundTripTarget } from './selfcheck-roundtrip.js'
import { PieceProver, proveChallenge } from './proofs.js'

export interface ProviderNode {
  readonly repo: Repo
  /** the repo's LevelDB ledger, or in a cluster the one chain all nodes share */
  readonly ledger: StateLedger
  /** cluster mode (`--db`): the shared state and this node's part in it */
  readonly cluster: { state: ClusterState, work: ClusterWork } | undefined
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
  /** Clean up what a crash left behind before serving (docs/protocol.md "Upload"). */
  recover?: boolean
  /** the expiry and piece-removal schedule (docs/protocol.md "Deal lifecycle"); false: none (tests drive it by hand) */
  lifecycle?: LifecycleOptions | false
  /** park TTL and quotas of the PDP API (docs/pdp.md) */
  pdp?: PdpOptions
  /** prove and verify a sample of its own pieces on a schedule (src/provider/selfcheck.ts) */
  selfCheck?: Omit<SelfCheckOptions, 'log'>
  /** re-hash raw leaves of a stored CAR the gateway streams whole (`provider start --hash-on-read`; docs/protocol.md) */
  hashOnRead?: boolean
  /**
   * Cluster mode (docs/cluster.md "Running a cluster"): the provider's state in
   * the PostgreSQL database at `db`, shared with the other nodes of the cluster.
   * `name` defaults to the node's listen URL's host:port.
   */
  cluster?: { db: string, name?: string } & Partial<Omit<ClusterWorkOptions, 'name' | 'address' | 'ledger' | 'log'>>
}

/** A node's name in its cluster: given, or this host and the port it listens on (stable across restarts, as piece locations need). */
function clusterNodeName (name: string | undefined, host: string | undefined, port: number | undefined): string {
  if (name !== undefined) return name
  if (port === undefined || port === 0) throw new CairnError('ERR_INVALID_ARGUMENT', 'a cluster node listening on any free port needs a name (--node <name>)')
  return `${hostname()}:${port}`
}

export async function startProviderNode (repo: Repo, terms: ProviderTerms, options: ProviderNodeOptions = {}): Promise<ProviderNode> {
  const db = await repo.db()
  const log = options.log ?? (() => {})
  const nodeName = options.cluster === undefined ? undefined : clusterNodeName(options.cluster.name, options.host, options.port)
  const cluster = options.cluster === undefined ? undefined : await openClusterState(options.cluster.db, repo.identity, { onEvent: log })
  const ledger = cluster?.ledger ?? await LevelLedger.open(db, repo.identity)
  const store = new PieceStore(repo.piecesDir, repo.tmpDir)
  // a cluster node recovers its own store and piece locations; the shared indexes are every node's (docs/cluster.md)
  let lost: string[] = []
  if (options.recover === true && cluster === undefined) {
    const recovered = await recoverProvider({ db, ledger, store, log })
    log('provider-recovered', { tempFiles: recovered.tempFilesRemoved, quarantined: recovered.quarantined.length, failed: recovered.failed.length, danglingBlocks: recovered.danglingBlocks, pieces: recovered.piecesChecked })
  } else if (options.recover === true && cluster !== undefined && nodeName !== undefined) {
    const recovered = await recoverClusterNode({ state: cluster.state, store, pdpStore: pdpPieceStore(repo), node: nodeName, log })
    lost = recovered.lost
    log('provider-recovered', { tempFiles: recovered.tempFilesRemoved, quarantined: recovered.quarantined.length, lost: lost.length, pieces: recovered.piecesChecked })
  }
  // compile the upload check before the first upload needs it, and before the event-loop
  // histogram starts (an optimisation: a failure only costs that)
  await warmUploadCheck().catch((err) => { log('warm-up-failed', { error: (err as Error).message }) })
  // the deal service's two seams, passed on as events (a listener must not throw: it runs on the upload's path)
  const events = new EventEmitter<ProviderEvents>()
  // in a cluster the node's name is known once it listens; until then nothing is uploaded
  let work: ClusterWork | undefined
  const dealOptions: ProviderDealsOptions = {
    ...options.deals,
    ...(cluster === undefined
      ? {}
      : {
          node: nodeName,
          fetchPiece: async (piece: string) => await (work?.fetch(piece) ?? Promise.resolve(false)),
          remotePiece: async (piece: string) => await work?.remote(piece),
          remoteProof: async (piece, challenge) => {
            if (work === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${piece} is not on this node, which has not joined its cluster yet`)
            return await work.prove(piece, challenge)
          }
        }),
    onDealActive: (deal) => {
      options.deals?.onDealActive?.(deal)
      work?.stored(deal.pieceCid.toString()).catch((err) => { log('copy-post-failed', { piece: deal.pieceCid.toString(), message: (err as Error).message }) })
      events.emit('deal-active', deal)
    },
    onDealEnded: (dealId) => {
      options.deals?.onDealEnded?.(dealId)
      events.emit('deal-ended', dealId)
    }
  }
  const node = new ProviderDeals(cluster?.state ?? db, ledger, store, repo.identity, terms, options.now, dealOptions)
  // a data set holds capacity and is paid like a deal, at the provider's terms (docs/pdp.md "Data sets as deals")
  const dataSetTerms = { capacity: terms.capacity, pricePerGiBDay: terms.pricePerGiBDay, provingPeriod: terms.provingPeriod }
  // PDP data sets and pieces live where the deals do: on a cluster every node adds to and proves any data set (docs/cluster.md "PDP")
  const pdpCluster = cluster === undefined || nodeName === undefined
    ? undefined
    : {
        node: nodeName,
        remote: async (piece: string, size: number) => await work?.remote(piece, size),
        proveLeaves: async (piece: string, leaves: readonly number[]) => {
          if (work === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${piece} is not on this node, which has not joined its cluster yet`)
          return await work.proveLeaves(piece, leaves)
        },
        // a piece a data set references is copied to a second node, as a deal's piece is once active
        copy: (piece: string) => { work?.stored(piece).catch((err) => { log('copy-post-failed', { piece, message: (err as Error).message }) }) }
      }
  const local = new LevelStore(db)
  const pdp = await startPdp(cluster?.state ?? local, ledger, repo, { payee: terms.payee, now: options.now, ...options.pdp, dataSets: { ...dataSetTerms, ...options.pdp?.dataSets }, cluster: pdpCluster, pullState: local }, log)
  const service = createProviderServer({
    deals: node,
    blocks: pdp.blockSource(node),
    pieces: pdp.pieceSource(node),
    hashOnRead: options.hashOnRead,
    routes: (router, shared) => {
      pdp.mount(router, shared)
      // a deal's piece from one this provider pulled (docs/pdp.md "Repair by pull")
      dealFromHeldRoute(router, node, pdp.pieces, shared.limits)
      // other nodes read this node's pieces here, whatever their deal's state (src/cluster/pieces.ts)
      if (cluster !== undefined) router.on('GET', INTERNAL_PIECE_ROUTE, internalPieceHandler({ auth: cluster.auth, pieces: { open: async (cid) => await store.open(cid.toString()) ?? await pdp.pieces.store.open(cid.toString()) } }))
      // and have this node prove the pieces it holds for them (src/cluster/proofs.ts)
      if (cluster !== undefined) {
        router.on('GET', INTERNAL_PROOF_ROUTE, internalProofHandler({
          auth: cluster.auth,
          // `at` is the asking node's to set: it signs the answer
          // a piece is proven from whichever of this node's stores holds it: deals' pieces, or PDP pieces
          holder: {
            has: async (piece) => await store.has(piece) || await pdp.pieces.store.has(piece),
            prove: async (pieceCid, { dealId, seed, count }) => await proveChallenge(await store.has(pieceCid.toString()) ? node.prover : pdp.prover, { dealId, pieceCid }, { seed, count }, 0),
            proveLeaves: async (piece, leaves) => await (await store.has(piece) ? node.prover : pdp.prover).proveLeaves(piece, leaves)
          }
        }))
      }
    },
    log,
    limits: options.limits,
    gauges: async () => {
      const s = await node.admin().status()
      const { dataSets, earned } = await ledger.stats()
      return { dealsByState: s.deals, bytesStored: s.bytesStored, capacity: s.capacity, dataSets, earned }
    }
  })
  const url = await service.listen(options.host ?? '127.0.0.1', options.port ?? 0)
  terms.endpoint = url
  if (cluster !== undefined && options.cluster !== undefined && nodeName !== undefined) {
    const { db: _db, name: _name, ...rest } = options.cluster
    work = await ClusterWork.start(cluster, store, { ...rest, name: nodeName, address: url, ledger, log, pdpStore: pdp.pieces.store })
    // a copy lost here is made again, on whichever node takes the task
    for (const piece of lost) await work.stored(piece)
  }
  const lifecycle = options.lifecycle === false ? undefined : new LifecycleScheduler(withDataSets(node, pdp), { now: options.now, log, ...options.lifecycle })
  lifecycle?.start()
  const selfCheck = options.selfCheck === undefined ? undefined : new SelfCheck(node, service.metrics.registry, { log, roundTrip: selfCheckTarget(url, pdp), ...options.selfCheck })
  selfCheck?.start()
  const closers: Array<() => Promise<void>> = []
  return {
    repo,
    ledger,
    cluster: cluster === undefined || work === undefined ? undefined : { state: cluster, work },
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
      await work?.stop()
      await ledger.flush?.()
      await cluster?.close()
    }
  }
}

/** The self-check's round trip goes through the PDP ingest path on the node's own listener (src/provider/selfcheck-roundtrip.ts). */
/** The lifecycle's work: the deals' and the PDP data sets' ends on one tick. */
function withDataSets (deals: LifecycleWork, pdp: PdpService): LifecycleWork {
  return {
    expireDue: async (now, limit) => {
      const a = await deals.expireDue(now, limit)
      const b = await pdp.dataSets.expireDue(now, limit)
      return { due: Math.max(a.due, b.due), expired: [...a.expired, ...b.expired] }
    },
    collect: async (now, limit) => await deals.collect(now, limit),
    summary: async (id) => await deals.summary?.(id)
  }
}

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
