/**
 * Where `POST /pdp/piece/pull` may fetch from (docs/pdp.md "Pull"). A pull
 * makes the provider open a connection a stranger named, so without care it
 * is a way into the provider's own network (server-side request forgery): its
 * loopback services, hosts on its private network, a cloud's metadata service
 * at 169.254.169.254. A source's host is therefore resolved first, every
 * address it has is checked against the ranges below, and the connection is
 * then made to the address that was checked, never resolved again, so a name
 * cannot point elsewhere between the check and the connection (DNS rebinding).
 * Redirects are not followed (undici's `request` does not follow them).
 *
 * An operator whose providers pull from each other over a private network
 * allows it with `provider start --pull-sources any`.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { CairnError } from '../errors.js'

/** `public`: refuse the ranges below (the default); `any`: allow every address. */
export type PullSources = 'public' | 'any'

/**
 * Addresses a pull never reaches unless allowed: the IANA special-purpose
 * registries (RFC 6890, https://www.iana.org/assignments/iana-ipv4-special-registry
 * and iana-ipv6-special-registry) less the globally reachable entries.
 */
const FORBIDDEN: ReadonlyArray<[string, number, 'ipv4' | 'ipv6', string]> = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified ("this network")'],
  ['10.0.0.0', 8, 'ipv4', 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'ipv4', 'shared address space (RFC 6598)'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata services live here)'],
  ['172.16.0.0', 12, 'ipv4', 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'ipv4', 'documentation'],
  ['192.168.0.0', 16, 'ipv4', 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['198.51.100.0', 24, 'ipv4', 'documentation'],
  ['203.0.113.0', 24, 'ipv4', 'documentation'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved and broadcast'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['100::', 64, 'ipv6', 'discard-only'],
  ['2001:db8::', 32, 'ipv6', 'documentation'],
  ['fc00::', 7, 'ipv6', 'unique local (private)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['ff00::', 8, 'ipv6', 'multicast']
]

const ranges = FORBIDDEN.map(([address, prefix, family, why]) => {
  const list = new BlockList()
  list.addSubnet(address, prefix, family)
  return { list, family, why }
})

/** An IPv4 address carried in IPv6 (`::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`), as IPv4; otherwise undefined. */
function embeddedIPv4 (address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address)
  if (m === null) return undefined
  if (m[1] !== undefined) return m[1]
  const hi = parseInt(m[2] as string, 16)
  const lo = parseInt(m[3] as string, 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/** Why `address` may not be pulled from, or undefined when it may. */
export function forbiddenRange (address: string): string | undefined {
  const v4 = isIP(address) === 6 ? embeddedIPv4(address) : address
  const [ip, family] = v4 !== undefined && isIP(v4) === 4 ? [v4, 'ipv4' as const] : [address, 'ipv6' as const]
  return ranges.find((r) => r.family === family && r.list.check(ip, family))?.why
}

/** The address a source's host resolves to, checked: connect to this one. */
export interface CheckedSource { address: string, family: 4 | 6 }

/** A host's addresses, as dns.lookup with `all` gives them. */
export type Resolve = (host: string) => Promise<LookupAddress[]>

const systemResolve: Resolve = async (host) => await new Promise((resolve, reject) => {
  dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => { err === null ? resolve(addresses) : reject(err) })
})

/**
 * Resolves the host of `url` and checks every address it has (one bad
 * address is enough to refuse: the connection could land on any of them).
 * Throws ERR_PULL_SOURCE_FORBIDDEN for a forbidden address, ERR_PULL_FAILED
 * for a name that does not resolve.
 */
export async function checkSource (url: string, policy: PullSources, resolve: Resolve = systemResolve): Promise<CheckedSource> {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')
  let addresses: LookupAddress[]
  if (isIP(host) !== 0) {
    addresses = [{ address: host, family: isIP(host) }]
  } else {
    try {
      addresses = await resolve(host)
    } catch (err) {
      throw new CairnError('ERR_PULL_FAILED', `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
    }
    if (addresses.length === 0) throw new CairnError('ERR_PULL_FAILED', `${host} has no address`)
  }
  if (policy === 'public') {
    for (const { address } of addresses) {
      const why = forbiddenRange(address)
      if (why !== undefined) {
        throw new CairnError('ERR_PULL_SOURCE_FORBIDDEN', `${host} is ${address}, a ${why} address: this provider pulls only from public addresses (provider start --pull-sources any allows every one)`)
      }
    }
  }
  const first = addresses[0] as LookupAddress
  return { address: first.address, family: first.family === 6 ? 6 : 4 }
}

/** A `lookup` for net.connect that answers every name with the checked address. */
export function pinnedLookup (checked: CheckedSource): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all === true) (callback as unknown as (err: null, all: LookupAddress[]) => void)(null, [{ address: checked.address, family: checked.family }])
    else callback(null, checked.address, checked.family)
  }
}
