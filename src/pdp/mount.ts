/**
 * The PDP service on a provider (docs/pdp.md): its piece registry and data
 * sets in the provider's state store (the repo's LevelDB, or a cluster's
 * PostgreSQL database, docs/cluster.md "PDP") and its own piece store, the routes mounted on the
 * provider's HTTP service by one call, and the sweep of expired parked pieces.
 * The deal side's piece and block sources are composed with the registry, so
 * `/piece/` and `/ipfs/` serve both through their one route each.
 */
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import type { Router } from '../http/server.js'
import type { BlockSource, Logger, PieceHandle, PieceSource } from '../provider/interface.js'
import type { Metrics } from '../provider/metrics.js'
import type { ServerLimits } from '../provider/server.js'
import type { Ledger } from '../ledger/interface.js'
import { PieceProver } from '../provider/proofs.js'
import type { StateStore } from '../state/interface.js'
import { PieceStore } from '../store/pieces.js'
import type { PdpDeps } from './context.js'
import { CALIBRATION, type Eip712Domain } from './eip712.js'
import { DataSets, type DataSetsOptions } from './datasets.js'
import { dataSetRoutes } from './handlers-datasets.js'
import { pieceRoutes } from './handlers-piece.js'
import { Pulls, type PullOptions } from './pull.js'
import { pingRoutes } from './handlers-ping.js'
import { streamingRoutes } from './handlers-streaming.js'
import { PdpPieces, type PdpPiecesOptions } from './pieces.js'
import { ParkQuota } from './quota.js'
import { defaultSessionLimits, UploadSessions, type SessionLimits } from './uploads.js'

export interface PdpOptions {
  /** the EIP-712 domain client signatures are checked under (default: calibration, eip712.ts) */
  domain?: Eip712Domain
  /** seconds an unreferenced piece stays parked (default 24 h) */
  parkTtl?: number
  /** parked bytes in total (default 64 GiB) */
  parkQuota?: bigint
  /** parked bytes per client (default 8 GiB) */
  parkQuotaPerClient?: bigint
  sessions?: Partial<SessionLimits>
  /** how often the sweep runs (default one minute) */
  sweepIntervalMs?: number
  now?: () => number
  onCommitted?: (piece: string) => void
  /** the provider's payee (`provider start --payee`): without one, no data set can be created */
  payee?: string
  /** POST /pdp/piece/pull's limits (pull.ts) */
  pull?: Partial<PullOptions>
  /** a data set's capacity, term and payments (datasets.ts, docs/pdp.md "Data sets as deals") */
  dataSets?: Pick<DataSetsOptions, 'capacity' | 'term' | 'pricePerGiBDay' | 'provingPeriod'>
  /** on a cluster: this node's name and the read of a piece another node holds (pieces.ts) */
  cluster?: PdpPiecesOptions['cluster']
  /**
   * Where pulls are kept (default: the state store). A cluster node keeps its
   * own in its repo: a pull runs on the node that was asked, and resuming
   * another live node's pulls at start would run them twice.
   */
  pullState?: StateStore
}

export const PDP_DEFAULTS = { parkTtl: 24 * 3600, parkQuota: 64n << 30n, parkQuotaPerClient: 8n << 30n, sweepIntervalMs: 60_000 } as const

export interface PdpService {
  readonly domain: Eip712Domain
  readonly pieces: PdpPieces
  /** proofs of the PDP pieces in this node's store (with their layer caches beside them) */
  readonly prover: PieceProver
  readonly sessions: UploadSessions
  readonly dataSets: DataSets
  /** Mounts the `/pdp` routes on a provider's router. */
  mount (router: Router, shared: { limits: ServerLimits, log: Logger, metrics: Metrics }): void
  /** The deal side's sources with the PDP pieces behind them. */
  pieceSource (first: PieceSource): PieceSource
  blockSource (first: BlockSource): BlockSource
  /** One sweep round now (the timer runs them too). */
  sweep (): Promise<number>
  close (): void
}

/** A repo's PDP piece store, `pdp/pieces/` (a cluster node's start-up recovery checks it too, src/cluster/recovery.ts). */
export function pdpPieceStore (repo: { path: string, tmpDir: string }): PieceStore {
  return new PieceStore(join(repo.path, 'pdp', 'pieces'), repo.tmpDir)
}

/**
 * Opens the PDP service on a provider's state store and repo: removes orphaned
 * files, loads the quota, sweeps once, starts the sweep timer.
 */
export async function startPdp (state: StateStore, ledger: Ledger, repo: { path: string, tmpDir: string }, options: PdpOptions = {}, log: Logger = () => {}): Promise<PdpService> {
  const store = pdpPieceStore(repo)
  const quota = new ParkQuota({ total: options.parkQuota ?? PDP_DEFAULTS.parkQuota, perClient: options.parkQuotaPerClient ?? PDP_DEFAULTS.parkQuotaPerClient })
  const ttl = options.parkTtl ?? PDP_DEFAULTS.parkTtl
  const pieces = new PdpPieces(state, store, quota, { ttlSeconds: ttl, now: options.now, onCommitted: options.onCommitted, cluster: options.cluster })
  await pieces.load()
  const orphans = await pieces.removeOrphans()
  const sessions = new UploadSessions({ ...defaultSessionLimits, receivedMs: ttl * 1000, ...options.sessions })
  const domain = options.domain ?? { chainId: CALIBRATION.chainId, verifyingContract: CALIBRATION.fwssAddress }
  const dataSets = new DataSets(state, ledger, pieces, { domain, payee: options.payee, now: options.now, ...options.dataSets })
  const recovered = await dataSets.recover()
  if (recovered > 0) log('pdp-recovered', { txIndexed: recovered })
  const prover = new PieceProver(store)
  const pulls = new Pulls(options.pullState ?? state, pieces, dataSets, options.pull, log)
  await pulls.load()
  let sweeping: Promise<number> | undefined
  const sweep = async (): Promise<number> => {
    // one round at a time; a round still running when the timer fires again is left to finish
    sweeping ??= pieces.sweep().finally(() => { sweeping = undefined })
    return await sweeping
  }
  const first = await sweep()
  if (orphans > 0 || first > 0) log('pdp-swept', { orphans, expired: first })
  const timer = setInterval(() => {
    sweep().then((n) => { if (n > 0) log('pdp-swept', { expired: n }) }, (err) => { log('pdp-sweep-failed', { message: (err as Error).message }) })
  }, options.sweepIntervalMs ?? PDP_DEFAULTS.sweepIntervalMs)
  timer.unref()

  return {
    domain,
    pieces,
    prover,
    sessions,
    dataSets,
    mount (router, shared) {
      const deps: PdpDeps = { pieces, sessions, ...shared }
      pingRoutes(router)
      pieceRoutes(router, deps)
      streamingRoutes(router, deps)
      dataSetRoutes(router, deps, dataSets, prover)
      pulls.routes(router, shared.limits)
    },
    pieceSource (first) {
      return { open: async (cid: CID) => await first.open(cid) ?? await pieces.open(cid) }
    },
    blockSource (first) {
      return {
        get: async (cid: CID) => await first.get(cid) ?? await pieces.get(cid),
        dag: async (root: CID): Promise<PieceHandle | undefined> => await first.dag?.(root) ?? await pieces.dag(root)
      }
    },
    sweep,
    close () {
      clearInterval(timer)
      pulls.close()
    }
  }
}
