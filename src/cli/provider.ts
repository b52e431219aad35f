/**
 * `cairn provider start|status|deals` (SPEC §2 Provider). `start` runs the
 * provider in the foreground until SIGINT/SIGTERM; `status` and `deals` ask
 * the running provider over its loopback admin API.
 */
import { CairnError } from '../errors.js'
import { AdminClient, startAdmin } from '../provider/admin.js'
import type { ProviderTerms, UploadPhase } from '../provider/deals.js'
import { normaliseUrl } from '../client/provider-client.js'
import { startProviderNode } from '../provider/node.js'
import { PDP_DEFAULTS, type PdpOptions } from '../pdp/mount.js'
import { CALIBRATION } from '../pdp/eip712.js'
import { announceProvider } from '../routing/announce-provider.js'
import { announceAddress } from '../routing/multiaddr.js'
import { stderrLogger } from '../provider/server.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { formatBytes, Output, type GlobalOptions } from './output.js'

interface StartOptions extends GlobalOptions {
  listen?: string
  price?: string
  collateral?: string
  minPieceSize?: string
  maxPieceSize?: string
  capacity?: string
  maxDuration?: string
  provingPeriod?: string
  challenges?: string
  payee?: string
  chainId?: string
  fwssAddress?: string
  parkTtl?: string
  parkQuota?: string
  parkQuotaPerClient?: string
  announceTo?: string[]
  announceAddress?: string[]
}

const UNITS: Record<string, bigint> = { '': 1n, b: 1n, kib: 1n << 10n, mib: 1n << 20n, gib: 1n << 30n, tib: 1n << 40n, kb: 1000n, mb: 1000n ** 2n, gb: 1000n ** 3n, tb: 1000n ** 4n }

/** A byte size such as `1048576`, `512MiB` or `2TiB`. */
export function parseSize (value: string | undefined, flag: string, fallback: bigint): bigint {
  if (value === undefined) return fallback
  const m = /^(\d+)\s*([kmgt]i?b|b)?$/i.exec(value.trim())
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()]
  if (m === null || unit === undefined) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a size in bytes such as 1048576, 512MiB or 2TiB, got ${JSON.stringify(value)}`)
  return BigInt(m[1] as string) * unit
}

const SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 }

/** A duration such as `3600`, `24h` or `180d`, in seconds. */
export function parseDuration (value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const m = /^(\d+)\s*([smhdw])?$/i.exec(value.trim())
  const unit = SECONDS[(m?.[2] ?? '').toLowerCase()]
  if (m === null || unit === undefined || Number(m[1]) <= 0) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a duration such as 3600, 24h or 180d, got ${JSON.stringify(value)}`)
  return Number(m[1]) * unit
}

function parseAmount (value: string | undefined, flag: string, fallback: bigint): bigint {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value.trim())) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a whole number of base units, got ${JSON.stringify(value)}`)
  return BigInt(value.trim())
}

export function parseListen (value: string): { host: string, port: number } {
  const m = /^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value)
  const port = Number(m?.[2])
  if (m === null || port > 65535) throw new CairnError('ERR_INVALID_ARGUMENT', `--listen must be host:port such as 127.0.0.1:7470, got ${JSON.stringify(value)}`)
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port }
}

function parseAddress (value: string, flag: string): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(value.trim())) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(value)}`)
  return value.trim().toLowerCase()
}

/** The PDP API's flags (docs/pdp.md): the payee, the EIP-712 domain, the park TTL and quotas. */
export function pdpOptionsFrom (options: StartOptions): { payee?: string, pdp: PdpOptions } {
  const chainId = parseAmount(options.chainId, '--chain-id', CALIBRATION.chainId)
  if (chainId === 0n) throw new CairnError('ERR_INVALID_ARGUMENT', '--chain-id must be a positive chain id')
  return {
    payee: options.payee === undefined ? undefined : parseAddress(options.payee, '--payee'),
    pdp: {
      domain: { chainId, verifyingContract: parseAddress(options.fwssAddress ?? CALIBRATION.fwssAddress, '--fwss-address') },
      parkTtl: parseDuration(options.parkTtl, '--park-ttl', PDP_DEFAULTS.parkTtl),
      parkQuota: parseSize(options.parkQuota, '--park-quota', PDP_DEFAULTS.parkQuota),
      parkQuotaPerClient: parseSize(options.parkQuotaPerClient, '--park-quota-per-client', PDP_DEFAULTS.parkQuotaPerClient)
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
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:7470')
  const minPieceSize = parseSize(options.minPieceSize, '--min-piece-size', 128n)
  const maxPieceSize = parseSize(options.maxPieceSize, '--max-piece-size', 32n << 30n)
  if (minPieceSize > maxPieceSize) throw new CairnError('ERR_INVALID_ARGUMENT', `--min-piece-size ${minPieceSize} bytes exceeds --max-piece-size ${maxPieceSize} bytes`)
  const { payee, pdp } = pdpOptionsFrom(options)
  const terms: ProviderTerms = {
    endpoint: '',
    pricePerGiBDay: parseAmount(options.price, '--price', 40n),
    collateralPerGiB: parseAmount(options.collateral, '--collateral', 0n),
    minPieceSize,
    maxPieceSize,
    capacity: parseSize(options.capacity, '--capacity', 100n << 30n),
    maxDuration: parseDuration(options.maxDuration, '--max-duration', 540 * 86400),
    provingPeriod: parseDuration(options.provingPeriod, '--proving-period', 86400),
    challenges: Number(parseAmount(options.challenges, '--challenges', 16n)),
    askTtl: 3600,
    ...(payee === undefined ? {} : { payee })
  }

  const announceTo = (options.announceTo ?? []).map(normaliseUrl)
  if (options.announceAddress !== undefined && announceTo.length === 0) throw new CairnError('ERR_USAGE', '--announce-address says where clients reach the provider; it needs --announce-to')
  const announceAddresses = options.announceAddress?.map(announceAddress)
  if (announceTo.length > 0 && announceAddresses === undefined && (host === '0.0.0.0' || host === '::')) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--listen ${options.listen ?? ''} is a wildcard address that clients cannot reach; name the provider's public URL with --announce-address`)
  }

  const repo = await Repo.open(resolveRepoPath(options.repo))
  const log = stderrLogger
  try {
    const provider = await startProviderNode(repo, terms, {
      host,
      port,
      log,
      recover: true,
      pdp,
      limits: { maxUploadBytes: Number(maxPieceSize) },
      deals: {
        onPieceFailed: (failure) => { log('piece-corrupt', { ...failure }) },
        onUploadPhase: crashHook(process.env.CAIRN_TEST_CRASH_AT)
      }
    })
    const { node, url } = provider
    if (announceTo.length > 0) {
      await announceProvider(provider, { indexers: announceTo, addresses: announceAddresses }, log).catch(async (err) => {
        await provider.close()
        throw err
      })
    }
    const admin = await startAdmin(repo.path, node.admin(), log)
    log('provider-started', { did: repo.identity.did, url, admin: admin.url, repo: repo.path })
    out.result({ did: repo.identity.did, url, admin: admin.url }, () => options.quiet === true ? url : `provider ${repo.identity.did} listening on ${url}`)

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

export default start
