/**
 * HTTP(S) addresses as multiaddrs, held against the reference converters
 * @multiformats/uri-to-multiaddr and @multiformats/multiaddr-to-uri on
 * random URLs (IPv4, IPv6, DNS names, ports, http-path).
 */
import test from 'ava'
import fc from 'fast-check'
import { multiaddr } from '@multiformats/multiaddr'
import { multiaddrToUri } from '@multiformats/multiaddr-to-uri'
import { uriToMultiaddr } from '@multiformats/uri-to-multiaddr'
import { announceAddress, multiaddrFromUrl, urlFromMultiaddr } from '../../src/routing/multiaddr.js'
import { throwsCode } from '../helpers/errors.js'

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map(p => p.join('.'))
const ipv6 = fc.ipV6().filter(ip => !ip.includes('.')).map(ip => `[${ip}]`)
// a label with `--` at positions 3-4 ("xn--…") is an IDNA A-label, which WHATWG URL refuses unless it is valid Punycode
const dns = fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/).filter(label => label.slice(2, 4) !== '--'), fc.constantFrom('example', 'cairn.test', 'a.b.c')).map(([a, b]) => `${a}.${b}`)
const urls = fc.record({
  scheme: fc.constantFrom('http', 'https'),
  host: fc.oneof(ipv4, ipv6, dns),
  port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  path: fc.array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { maxLength: 3 })
}).map(({ scheme, host, port, path }) => `${scheme}://${host}${port === undefined ? '' : `:${port}`}${path.map(p => `/${p}`).join('')}`)

/** The URL as WHATWG URL normalises it, without a trailing slash (default ports dropped, IPv6 compressed). */
function normal (url: string): string {
  return new URL(url).href.replace(/\/$/, '')
}

test('multiaddrFromUrl writes what uri-to-multiaddr writes', (t) => {
  fc.assert(fc.property(urls, (url) => {
    t.is(multiaddrFromUrl(url), uriToMultiaddr(normal(url)).toString(), url)
  }), { numRuns: 300 })
})

test('urlFromMultiaddr reads back what multiaddr-to-uri reads, for every address multiaddrFromUrl writes', (t) => {
  fc.assert(fc.property(urls, (url) => {
    const ma = multiaddrFromUrl(url)
    const ours = urlFromMultiaddr(ma)
    t.is(ours, normal(multiaddrToUri(multiaddr(ma))), ma)
    t.is(ours, normal(url))
  }), { numRuns: 300 })
})

test('the other http(s) spellings: /https, /dns4, /dns6, a trailing /p2p', (t) => {
  const id = '12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt'
  for (const ma of ['/ip4/1.2.3.4/tcp/443/https', '/dns4/a.example/tcp/8080/http', '/dns6/a.example/tcp/443/tls/http', `/ip4/1.2.3.4/tcp/80/http/p2p/${id}`]) {
    t.is(urlFromMultiaddr(ma), normal(multiaddrToUri(multiaddr(ma))), ma)
  }
})

test('addresses of other transports are not HTTP: undefined, not an error', (t) => {
  for (const ma of ['/ip4/1.2.3.4/tcp/4001', '/ip4/1.2.3.4/udp/4001/quic-v1', '/dns/a.example/tcp/443/wss', '/ip4/1.2.3.4/tcp/80/http/extra/thing', '/unix/tmp%2Fsock', '/p2p-circuit']) {
    t.is(urlFromMultiaddr(ma), undefined, ma)
  }
})

test('strings that are not multiaddrs are refused with ERR_INVALID_MULTIADDR', (t) => {
  for (const bad of ['ip4/1.2.3.4/tcp/80/http', '/ip4/1.2.3.400/tcp/80/http', '/ip4/1.2.3.4/tcp/99999/http', '/ip4', '/ip6/not-an-ip/tcp/80/http', '/dns/bad host/tcp/80/http', '/ip4/1.2.3.4/tcp/80/http/http-path/%zz', '/' + 'a/'.repeat(600)]) {
    throwsCode(t, () => urlFromMultiaddr(bad), 'ERR_INVALID_MULTIADDR', bad)
  }
})

test('announceAddress takes URLs and multiaddrs, and refuses wildcard hosts and other transports', (t) => {
  t.is(announceAddress('http://127.0.0.1:7470'), '/ip4/127.0.0.1/tcp/7470/http')
  t.is(announceAddress('/dns/provider.example/tcp/443/tls/http'), '/dns/provider.example/tcp/443/tls/http')
  throwsCode(t, () => announceAddress('http://0.0.0.0:7470'), 'ERR_INVALID_ARGUMENT')
  throwsCode(t, () => announceAddress('http://[::]:7470'), 'ERR_INVALID_ARGUMENT')
  throwsCode(t, () => announceAddress('/ip4/1.2.3.4/tcp/4001'), 'ERR_INVALID_MULTIADDR')
  throwsCode(t, () => announceAddress('ftp://example.com'), 'ERR_INVALID_ARGUMENT')
  throwsCode(t, () => announceAddress('http://user:pw@example.com'), 'ERR_INVALID_ARGUMENT')
})
