/**
 * `cairn provider start|config|status|deals` (README "Provider"). `start` runs
 * the provider in the foreground until SIGINT/SIGTERM with the settings of
 * src/provider/options.ts (flags over config file over defaults), which
 * `config` prints; `status` and `deals` ask the running provider over its
 * loopback admin API.
 */
import { AdminClient, startAdmin } from '../provider/admin.js'
import { DEFAULT_PROOF_RATE } from '../provider/proof-requests.js'
import type { ProviderTerms } from '../provider/terms.js'
import type { UploadPhase } from '../provider/context.js'
import { startProviderNode } from '../provider/node.js'
import { createLogger } from '../provider/log.js'
import { effectiveSettings, settingsJSON, type ProviderOptionName, type ProviderSettings, type RawOptions } from '../provider/options.js'
import type { PdpOptions } from '../pdp/mount.js'
import { announceProvider } from '../routing/announce-provider.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { formatBytes, Output, type GlobalOptions } from './output.js'
import { localReads, mountReads } from './reads.js'
import { isDashboardAsset, mountDashboard } from '../provider/dashboard.js'

type StartOptions = GlobalOptions & RawOptions & { config?: string }

export { parseDuration, parseSize } from '../config/values.js'

/** The terms a provider with these settings offers (docs/protocol.md "Ask"). */
export function termsFrom (settings: ProviderSettings): ProviderTerms {
  return {
    endpoint: '',
    pricePerGiBDay: settings.price,
    collateralPerGiB: settings.collateral,
    minPieceSize: settings.minPieceSize,
    maxPieceSize: settings.maxPieceSize,
    capacity: settings.capacity,
    maxDuration: settings.maxDuration,
    provingPeriod: settings.provingPeriod,
    challenges: settings.challenges,
    askTtl: 3600,
    uploadWindow: settings.uploadWindow,
    maxStartDelay: settings.maxStartDelay,
    retentionGrace: settings.retentionGrace,
    ...(settings.payee === undefined ? {} : { payee: settings.payee })
  }
}

/** The PDP API's settings (docs/pdp.md): the payee, the EIP-712 domain, the park TTL and quotas. */
export function pdpOptionsFrom (settings: ProviderSettings): { payee?: string, pdp: PdpOptions } {
  return {
    payee: settings.payee,
    pdp: {
      domain: { chainId: settings.chainId, verifyingContract: settings.fwssAddress },
      parkTtl: settings.parkTtl,
      parkQuota: settings.parkQuota,
      parkQuotaPerClient: settings.parkQuotaPerClient,
      dataSets: { term: settings.dataSetTerm },
      pull: { sources: settings.pullSources }
    }
  }
}

/**
 * Test-only (test/hardening): `CAIRN_TEST_CRASH_AT=committed` makes the
 * process kill itself with SIGKILL at that durable step of the next upload,
 * so crash tests can land exactly between two writes.
 */
function crashHook (phase: string | undefined): ((p: UploadPhase) => void) | undefined {
  if (phase === undefined || phase === '') return undefined
  return (p) => { if (p === phase) process.kill(process.pid, 'SIGKILL') }
}

export async function start (_positional: string[], options: StartOptions): Promise<void> {
  const out = new Output(options)
  const repoPath = resolveRepoPath(options.repo)
  const { settings } = await effectiveSettings(repoPath, options)
  const { host, port } = settings.listen
  const terms = termsFrom(settings)
  const maxPieceSize = settings.maxPieceSize
  const { pdp } = pdpOptionsFrom(settings)

  const repo = await Repo.open(repoPath)
  const log = createLogger({ format: settings.logFormat, level: settings.logLevel })
  try {
    const provider = await startProviderNode(repo, terms, {
      host,
      port,
      log,
      recover: true,
      pdp,
      hashOnRead: settings.hashOnRead,
      selfCheck: settings.selfCheck > 0 ? { intervalMs: settings.selfCheck * 1000, sample: settings.selfCheckSample } : undefined,
      ...(settings.db === undefined ? {} : { cluster: { db: settings.db, name: settings.node, deadAfterMs: settings.deadAfter * 1000, copies: settings.copies } }),
      limits: { maxUploadBytes: Number(maxPieceSize), maxConnections: settings.maxConnections, maxConnectionsPerPeer: settings.maxConnectionsPerPeer },
      deals: {
        proofRate: { ...DEFAULT_PROOF_RATE, burst: settings.proofBurst },
        onPieceFailed: (failure) => { log('piece-corrupt', { ...failure }) },
        onUploadPhase: crashHook(process.env.CAIRN_TEST_CRASH_AT)
      }
    })
    const { node, url } = provider
    if (settings.announceTo.length > 0) {
      const addresses = settings.announceAddress.length > 0 ? settings.announceAddress : undefined
      await announceProvider(provider, { indexers: settings.announceTo, addresses }, log).catch(async (err) => {
        await provider.close()
        throw err
      })
    }
    // read commands on this repo (ledger, deals, providers ls, get) come here while it runs
    const reads = localReads(repo, await repo.db(), provider.ledger)
    const admin = await startAdmin(repo.path, node.admin(), log, settings.adminPort, {
      mount: (router) => {
        mountReads(router, reads)
        mountDashboard(router, { admin: node.admin(), metrics: provider.service.metrics, selfCheck: () => provider.selfCheck?.last })
      },
      isPublic: isDashboardAsset
    })
    log('provider-started', { did: repo.identity.did, url, admin: admin.url, repo: repo.path })
    out.result({ did: repo.identity.did, url, admin: admin.url, dashboard: `${admin.url}/dashboard/` }, () => options.quiet === true ? url : `provider ${repo.identity.did} listening on ${url}\ndashboard ${admin.url}/dashboard/ (loopback; token in ${repo.path}/admin.json)`)

    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'))
      process.once('SIGTERM', () => resolve('SIGTERM'))
    })
    log('provider-stopping', { signal })
    await admin.close()
    await provider.close()
    log('provider-stopped')
  } finally {
    await repo.close()
  }
}

export async function status (_positional: string[], options: GlobalOptions): Promise<void> {
  const out = new Output(options)
  const s = await (await AdminClient.forRepo(resolveRepoPath(options.repo))).status()
  out.result(s, () => [
    `provider  ${s.did}`,
    `endpoint  ${s.url}`,
    `capacity  ${formatBytes(s.capacity.used)} used, ${formatBytes(s.capacity.free)} free of ${formatBytes(s.capacity.total)}`,
    `stored    ${formatBytes(s.bytesStored)}`,
    `deals     ${Object.entries(s.deals).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `proofs    ${s.proofsAnswered} answered`,
    `earnings  ${s.earnings}`,
    `since     ${s.startedAt}`
  ].join('\n'))
}

export async function deals (_positional: string[], options: GlobalOptions & { state?: string }): Promise<void> {
  const out = new Output(options)
  const list = await (await AdminClient.forRepo(resolveRepoPath(options.repo))).deals(options.state === undefined ? {} : { state: options.state })
  out.result(list, () => list.length === 0
    ? ''
    : list.map((d) => `${d.id}  ${d.state.padEnd(11)} ${String(d.pieceCid ?? '-')}  ${String(d.client ?? '-')}`).join('\n'))
}

/** `cairn provider config`: the settings `provider start` would run with, and where each came from. */
export async function config (_positional: string[], options: StartOptions): Promise<void> {
  const out = new Output(options)
  const { settings, sources, file } = await effectiveSettings(resolveRepoPath(options.repo), options)
  const values = settingsJSON(settings)
  out.result({ file: file ?? null, provider: values, sources }, () => [
    `# ${file === undefined ? 'no config file; defaults and flags' : `from ${file}, defaults and flags`}`,
    ...Object.entries(values).map(([name, value]) => `${name.padEnd(14)} ${String(value).padEnd(24)} ${sources[name as ProviderOptionName]}`)
  ].join('\n'))
}

export default start
