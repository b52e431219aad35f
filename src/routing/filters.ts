/**
 * Network address and protocol filtering of Delegated Routing answers
 * (IPIP-484, https://specs.ipfs.tech/ipips/ipip-0484/): `?filter-addrs=` keeps
 * the multiaddrs that name one of the listed transports and none of the
 * `!`-negated ones; `?filter-protocols=` keeps the records that support one
 * of the listed transfer protocols. `unknown` lets through records with no
 * addresses or no protocols. Matching is case-insensitive.
 */

/** Multiaddr protocols that take no value, so the next path segment is another protocol. */
const NO_VALUE = new Set(['http', 'https', 'tls', 'quic', 'quic-v1', 'webtransport', 'webrtc', 'webrtc-direct', 'p2p-circuit', 'ws', 'wss', 'utp', 'udt', 'noise', 'plaintextv2'])
const MAX_FILTER_NAMES = 32

/** The names in a comma-separated filter parameter, or undefined when it is absent or empty. */
export function parseFilter (value: string | null): string[] | undefined {
  if (value === null) return undefined
  const names = value.split(',').map(s => s.trim().toLowerCase()).filter(s => s !== '' && s.length <= 64).slice(0, MAX_FILTER_NAMES)
  return names.length === 0 ? undefined : names
}

/** The protocol names of a multiaddr string, e.g. ip4, tcp, http for `/ip4/1.2.3.4/tcp/80/http`. */
export function protocolNames (multiaddr: string): string[] {
  const parts = multiaddr.split('/').slice(1)
  const names: string[] = []
  for (let i = 0; i < parts.length; i++) {
    const name = (parts[i] ?? '').toLowerCase()
    names.push(name)
    if (!NO_VALUE.has(name)) i++
  }
  return names
}

/**
 * The addresses that pass `filter`, or undefined when the record is to be
 * left out (no address passes; or it has none and `unknown` was not asked for).
 */
export function filterAddrs (addrs: readonly string[], filter: readonly string[] | undefined): string[] | undefined {
  if (filter === undefined) return [...addrs]
  if (addrs.length === 0) return filter.includes('unknown') ? [] : undefined
  const negative = filter.filter(f => f.startsWith('!')).map(f => f.slice(1))
  const positive = filter.filter(f => !f.startsWith('!') && f !== 'unknown')
  const kept = addrs.filter(a => {
    const names = protocolNames(a)
    if (negative.some(n => names.includes(n))) return false
    return positive.length === 0 || positive.some(p => names.includes(p))
  })
  return kept.length === 0 ? undefined : kept
}

/** Whether a record with these transfer protocols passes `filter`. */
export function passesProtocols (protocols: readonly string[], filter: readonly string[] | undefined): boolean {
  if (filter === undefined) return true
  if (protocols.length === 0) return filter.includes('unknown')
  return protocols.some(p => filter.includes(p.toLowerCase()))
}
