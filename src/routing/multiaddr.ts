/**
 * HTTP(S) addresses as multiaddrs, the form content routers carry them in
 * (multiaddr spec, https://github.com/multiformats/multiaddr, and the
 * `http-path` component of libp2p's HTTP spec): `/ip4/127.0.0.1/tcp/7470/http`,
 * `/dns/provider.example/tcp/443/tls/http`, `/ip6/::1/tcp/8080/http/http-path/sub%2Fpath`.
 *
 * Only this subset is read and written: a provider is reached over HTTP, so
 * an address of any other transport (`/udp/…/quic-v1`, `/ws`, a bare `/tcp`)
 * means nothing to `cairn get` and is skipped. Written here rather than
 * pulled from @multiformats/multiaddr (which brings its own multiformats
 * major and every protocol of the table) for these few components; the tests
 * hold it against @multiformats/multiaddr-to-uri and uri-to-multiaddr.
 */
import { isIP } from 'node:net'
import { CairnError } from '../errors.js'

/** The multiaddr of an http(s) base URL, e.g. `http://127.0.0.1:7470` → `/ip4/127.0.0.1/tcp/7470/http`. */
export function multiaddrFromUrl (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `expected an http(s) URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CairnError('ERR_INVALID_ARGUMENT', `expected an http(s) URL, got ${JSON.stringify(value)}`)
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new CairnError('ERR_INVALID_ARGUMENT', `an announced URL carries no credentials, query or fragment: ${JSON.stringify(value)}`)
  }
  const tls = url.protocol === 'https:'
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const family = isIP(host)
  const hostPart = family === 4 ? `/ip4/${host}` : family === 6 ? `/ip6/${host}` : `/dns/${host}`
  const port = url.port !== '' ? url.port : tls ? '443' : '80'
  const path = url.pathname.replace(/\/+$/, '')
  return `${hostPart}/tcp/${port}${tls ? '/tls/http' : '/http'}${path === '' ? '' : `/http-path/${encodeURIComponent(path.slice(1))}`}`
}

/**
 * The http(s) base URL of a multiaddr, or undefined when it is not an HTTP
 * address (another transport). A string that is not a multiaddr at all is
 * ERR_INVALID_MULTIADDR.
 */
export function urlFromMultiaddr (value: string): string | undefined {
  if (typeof value !== 'string' || !value.startsWith('/') || value.length > 1024) {
    throw new CairnError('ERR_INVALID_MULTIADDR', `not a multiaddr: ${JSON.stringify(value)?.slice(0, 100)}`)
  }
  const parts = value.split('/').slice(1)
  let i = 0
  const next = (what: string): string => {
    const part = parts[i++]
    if (part === undefined || part === '') throw new CairnError('ERR_INVALID_MULTIADDR', `${value}: expected ${what}`)
    return part
  }
  const proto = next('a protocol')
  let host: string
  switch (proto) {
    case 'ip4': {
      host = next('an IPv4 address')
      if (isIP(host) !== 4) throw new CairnError('ERR_INVALID_MULTIADDR', `${value}: ${host} is not an IPv4 address`)
      break
    }
    case 'ip6': {
      const ip = next('an IPv6 address')
      if (isIP(ip) !== 6) throw new CairnError('ERR_INVALID_MULTIADDR', `${value}: ${ip} is not an IPv6 address`)
      host = `[${ip}]`
      break
    }
    case 'dns':
    case 'dns4':
    case 'dns6': {
      host = next('a host name')
      if (!/^[A-Za-z0-9.-]{1,253}$/.test(host)) throw new CairnError('ERR_INVALID_MULTIADDR', `${value}: ${host} is not a host name`)
      break
    }
    default:
      return undefined
  }
  if (parts[i] !== 'tcp') return undefined
  i++
  const port = next('a TCP port')
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new CairnError('ERR_INVALID_MULTIADDR', `${value}: ${port} is not a TCP port`)
  let scheme: 'http' | 'https'
  const transport = parts.slice(i)
  if (transport[0] === 'http') { scheme = 'http'; i += 1 } else if (transport[0] === 'https') { scheme = 'https'; i += 1 } else if (transport[0] === 'tls' && transport[1] === 'http') { scheme = 'https'; i += 2 } else return undefined
  let path = ''
  if (parts[i] === 'http-path') {
    i++
    try {
      path = '/' + decodeURIComponent(next('an http-path'))
    } catch (err) {
      if (err instanceof CairnError) throw err
      throw new CairnError('ERR_INVALID_MULTIADDR', `${value}: the http-path is not percent-encoded`)
    }
  }
  // a trailing /p2p/<peer id> names the peer and changes nothing about where it is reached
  if (parts[i] === 'p2p') i += 2
  if (i < parts.length) return undefined
  const defaultPort = scheme === 'https' ? '443' : '80'
  return `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${path.replace(/\/+$/, '')}`
}

/**
 * An address to announce, given as an http(s) URL or multiaddr, as a
 * multiaddr. A wildcard host (0.0.0.0, ::) is where a server listens, not
 * where anyone can reach it, and is refused.
 */
export function announceAddress (value: string): string {
  const multiaddr = value.startsWith('/') ? value : multiaddrFromUrl(value)
  const url = urlFromMultiaddr(multiaddr)
  if (url === undefined) throw new CairnError('ERR_INVALID_MULTIADDR', `${value} is not an http(s) address`)
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '')
  if (host === '0.0.0.0' || host === '::') {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${value} is a wildcard address that clients cannot reach; name the provider's public URL with --announce-address`)
  }
  return multiaddr
}
