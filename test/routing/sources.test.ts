/**
 * What `cairn get` makes of a router's answer: records in JSON or NDJSON
 * (404 read as none, IPIP-0513), only Trustless Gateway providers with an
 * http(s) address, each URL once, at most `maxProviders`; a router that
 * answers nonsense fails with ERR_INVALID_ROUTER_RESPONSE and the others
 * still count.
 */
import test from 'ava'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CID } from 'multiformats/cid'
import type { CairnError } from '../../src/errors.js'
import { findProviders } from '../../src/routing/http-client.js'
import { routedSources } from '../../src/routing/sources.js'

const ROOT = CID.parse('bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')
const ID = '12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt'

/** A router on loopback answering every request with `status`, `type` and `body`; it records the paths asked. */
async function router (status: number, type: string, body: string): Promise<{ url: string, paths: string[], close: () => Promise<void> }> {
  const paths: string[] = []
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '')
    res.writeHead(status, { 'content-type': type })
    res.end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, paths, close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) } }
}

const record = (addrs: string[], protocols?: string[]): Record<string, unknown> => ({ Schema: 'peer', ID, Addrs: addrs, ...(protocols === undefined ? {} : { Protocols: protocols }) })

test('only gateway providers with an http(s) address become sources, once per URL, in the router\'s order', async (t) => {
  const lines = [
    record(['/ip4/10.0.0.1/tcp/4001'], ['transport-bitswap']),
    record(['/ip4/10.0.0.2/tcp/4001', '/ip4/10.0.0.2/tcp/80/http'], ['transport-ipfs-gateway-http']),
    record(['/dns/p.example/tcp/443/tls/http']),
    record(['/ip4/10.0.0.2/tcp/80/http'], ['transport-bitswap', 'transport-ipfs-gateway-http']),
    record(['not a multiaddr', '/ip4/10.0.0.3/udp/1/quic-v1'], ['transport-ipfs-gateway-http']),
    { Schema: 'peer' },
    record(['/ip6/::1/tcp/8080/http/http-path/gw'], ['transport-ipfs-gateway-http'])
  ]
  const r = await router(200, 'application/x-ndjson', lines.map(l => JSON.stringify(l)).join('\n') + '\n')
  try {
    const sources = await routedSources([r.url], ROOT)
    t.deepEqual(sources.map(s => s.location), ['http://10.0.0.2', 'https://p.example', 'http://[::1]:8080/gw'])
    t.true(sources.every(s => s.kind === 'provider' && s.reason === 'router'))
    t.deepEqual((await routedSources([r.url], ROOT, { maxProviders: 1 })).map(s => s.location), ['http://10.0.0.2'])
    // the CID is asked for as CIDv1, with the protocol filter
    t.regex(r.paths[0] ?? '', new RegExp(`^/routing/v1/providers/${ROOT.toV1().toString()}\\?filter-protocols=transport-ipfs-gateway-http,unknown$`))
  } finally {
    await r.close()
  }
})

test('a JSON answer, an empty one and a 404 all read as records (or none)', async (t) => {
  const json = await router(200, 'application/json', JSON.stringify({ Providers: [record(['/ip4/10.0.0.9/tcp/80/http'], ['transport-ipfs-gateway-http'])] }))
  const empty = await router(200, 'application/json', JSON.stringify({ Providers: null }))
  const missing = await router(404, 'text/plain', 'not found')
  try {
    t.deepEqual((await findProviders(json.url, ROOT)).map(p => p.addrs), [['/ip4/10.0.0.9/tcp/80/http']])
    t.deepEqual(await findProviders(empty.url, ROOT), [])
    t.deepEqual(await findProviders(missing.url, ROOT), [])
  } finally {
    await json.close()
    await empty.close()
    await missing.close()
  }
})

test('a router answering nonsense fails with its code; beside a good one, it is reported and the good one still counts', async (t) => {
  const good = await router(200, 'application/json', JSON.stringify({ Providers: [record(['/ip4/10.0.0.9/tcp/80/http'])] }))
  const cases: Array<[string, number, string, string, string]> = [
    ['an unknown content type', 200, 'text/html', '<html>', 'ERR_INVALID_ROUTER_RESPONSE'],
    ['JSON that does not parse', 200, 'application/json', '{"Providers": [', 'ERR_INVALID_ROUTER_RESPONSE'],
    ['NDJSON that does not parse', 200, 'application/x-ndjson', '{"ID": 1}\n{oops\n', 'ERR_INVALID_ROUTER_RESPONSE'],
    ['Providers that is not a list', 200, 'application/json', '{"Providers": {"a": 1}}', 'ERR_INVALID_ROUTER_RESPONSE'],
    ['a body over 4 MiB', 200, 'application/json', ' '.repeat(5 * 1024 * 1024), 'ERR_INVALID_ROUTER_RESPONSE'],
    ['a server error', 500, 'text/plain', 'boom', 'ERR_UNREACHABLE'],
    ['a coded refusal', 400, 'application/json', JSON.stringify({ error: { code: 'ERR_INVALID_CID', message: 'not a CID' } }), 'ERR_INVALID_CID']
  ]
  try {
    for (const [name, status, type, body, code] of cases) {
      const bad = await router(status, type, body)
      try {
        await t.throwsAsync(findProviders(bad.url, ROOT), { code }, name)
        const failures: string[] = []
        const sources = await routedSources([bad.url, good.url], ROOT, { onRouterError: (url, err: CairnError) => { failures.push(`${url} ${err.code}`) } })
        t.deepEqual(sources.map(s => s.location), ['http://10.0.0.9'], name)
        t.deepEqual(failures, [`${bad.url} ${code}`], name)
      } finally {
        await bad.close()
      }
    }
  } finally {
    await good.close()
  }
})
