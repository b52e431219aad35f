/**
 * The indexer over HTTP: ingest at POST /ingest/v1/advertisements and the
 * Delegated Routing V1 answer at GET /routing/v1/providers/{cid} (JSON,
 * NDJSON when asked, an empty 200 when nobody provides, a coded 400 for a bad
 * CID, IPIP-484 filters, bounded results, CORS).
 */
import test from 'ava'
import { CID } from 'multiformats/cid'
import type { HttpService } from '../../src/provider/server.js'
import type { IndexStore } from '../../src/routing/interface.js'
import { LevelIndexStore } from '../../src/routing/level-index.js'
import { peerIdCid, peerIdFromPublicKey } from '../../src/routing/peer-id.js'
import { createIndexerServer, type IndexerLimits } from '../../src/routing/server.js'
import { advertisement, dealIdBytes, newIdentity, randomCids, tempDb, type Made } from './helpers.js'

interface Indexer { url: string, store: IndexStore, service: HttpService, close: () => Promise<void> }

async function startIndexer (limits: Partial<IndexerLimits> = {}): Promise<Indexer> {
  const { db, cleanup } = await tempDb()
  const store = await LevelIndexStore.open(db)
  const service = createIndexerServer({ store, limits, log: () => {} })
  const url = await service.listen('127.0.0.1', 0)
  return { url, store, service, close: async () => { await service.close(); await store.close(); await cleanup() } }
}

async function post (indexer: Indexer, made: Made, type = 'application/vnd.ipld.car; version=1'): Promise<Response> {
  return await fetch(`${indexer.url}/ingest/v1/advertisements`, { method: 'POST', headers: { 'content-type': type }, body: made.car })
}

async function errorCode (res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code
}

test('a provider announced over HTTP is found by CID: one peer record with its peer ID, http multiaddr and protocol', async (t) => {
  const indexer = await startIndexer()
  try {
    const signer = newIdentity()
    const cids = randomCids(5)
    const res = await post(indexer, advertisement(signer, null, { context: dealIdBytes(), add: cids.map(c => c.multihash.bytes) }))
    t.is(res.status, 200)
    t.like(await res.json(), { provider: peerIdFromPublicKey(signer.publicKey), applied: true, multihashes: 5 })

    const found = await fetch(`${indexer.url}/routing/v1/providers/${cids[2]?.toString() ?? ''}`)
    t.is(found.status, 200)
    t.is(found.headers.get('content-type'), 'application/json')
    t.is(found.headers.get('vary'), 'Accept')
    t.is(found.headers.get('access-control-allow-origin'), '*')
    t.regex(found.headers.get('cache-control') ?? '', /max-age=300/)
    t.truthy(found.headers.get('last-modified'))
    t.deepEqual(await found.json(), { Providers: [{ Schema: 'peer', ID: peerIdFromPublicKey(signer.publicKey), Addrs: ['/ip4/127.0.0.1/tcp/7470/http'], Protocols: ['transport-ipfs-gateway-http'] }] })

    // the lookup goes by multihash: the same block named as dag-pb CIDv0 and CIDv1 is found too
    const digest = (cids[2] as CID).multihash
    for (const other of [CID.createV0(digest as never), CID.createV1(0x70, digest)]) {
      const again = await fetch(`${indexer.url}/routing/v1/providers/${other.toString()}`)
      t.is(((await again.json()) as { Providers: unknown[] }).Providers.length, 1, other.toString())
    }

    // NDJSON when asked: one record per line
    const stream = await fetch(`${indexer.url}/routing/v1/providers/${cids[0]?.toString() ?? ''}`, { headers: { accept: 'application/x-ndjson' } })
    t.is(stream.headers.get('content-type'), 'application/x-ndjson')
    const lines = (await stream.text()).split('\n').filter(l => l !== '')
    t.is(lines.length, 1)
    t.is((JSON.parse(lines[0] as string) as { ID: string }).ID, peerIdFromPublicKey(signer.publicKey))
    // not streamed when NDJSON is refused (q=0)
    const refused = await fetch(`${indexer.url}/routing/v1/providers/${cids[0]?.toString() ?? ''}`, { headers: { accept: 'application/x-ndjson;q=0, application/json' } })
    t.is(refused.headers.get('content-type'), 'application/json')

    // the peer record by peer ID, in either string form
    for (const id of [peerIdFromPublicKey(signer.publicKey), peerIdCid(signer.publicKey)]) {
      const peer = await fetch(`${indexer.url}/routing/v1/peers/${id}`)
      t.deepEqual(((await peer.json()) as { Peers: Array<{ ID: string }> }).Peers.map(p => p.ID), [peerIdFromPublicKey(signer.publicKey)])
    }
  } finally {
    await indexer.close()
  }
})

test('nobody provides: an empty 200 (IPIP-0513), JSON and NDJSON, with a short cache life', async (t) => {
  const indexer = await startIndexer()
  try {
    const cid = randomCids(1)[0] as CID
    const json = await fetch(`${indexer.url}/routing/v1/providers/${cid.toString()}`)
    t.is(json.status, 200)
    t.regex(json.headers.get('cache-control') ?? '', /max-age=15\b/)
    t.deepEqual(await json.json(), { Providers: [] })
    const stream = await fetch(`${indexer.url}/routing/v1/providers/${cid.toString()}`, { headers: { accept: 'application/x-ndjson' } })
    t.is(stream.status, 200)
    t.is(await stream.text(), '')
    const peer = await fetch(`${indexer.url}/routing/v1/peers/${peerIdFromPublicKey(newIdentity().publicKey)}`)
    t.deepEqual(await peer.json(), { Peers: [] })
  } finally {
    await indexer.close()
  }
})

test('bad requests get coded errors: a CID that does not parse (400), a bad peer ID (400), IPNS and DHT (501), unknown routing paths (400)', async (t) => {
  const indexer = await startIndexer()
  try {
    const bad = await fetch(`${indexer.url}/routing/v1/providers/not-a-cid`)
    t.is(bad.status, 400)
    t.is(await errorCode(bad), 'ERR_INVALID_CID')
    const badPeer = await fetch(`${indexer.url}/routing/v1/peers/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N`)
    t.is(badPeer.status, 400)
    t.is(await errorCode(badPeer), 'ERR_INVALID_PEER_ID')
    for (const path of ['/routing/v1/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8', '/routing/v1/dht/closest/peers/bafkqaaa']) {
      const res = await fetch(indexer.url + path)
      t.is(res.status, 501, path)
      t.is(await errorCode(res), 'ERR_NOT_IMPLEMENTED')
    }
    const unknown = await fetch(`${indexer.url}/routing/v1/whatever`)
    t.is(unknown.status, 400)
    t.is(await errorCode(unknown), 'ERR_BAD_REQUEST')
    const preflight = await fetch(`${indexer.url}/routing/v1/providers/bafkqaaa`, { method: 'OPTIONS' })
    t.is(preflight.status, 204)
    t.is(preflight.headers.get('access-control-allow-methods'), 'GET, OPTIONS')
  } finally {
    await indexer.close()
  }
})

test('IPIP-484 filters: by transfer protocol and by address transport, negated or not', async (t) => {
  const indexer = await startIndexer()
  try {
    const cid = randomCids(1)[0] as CID
    await post(indexer, advertisement(newIdentity(), null, { context: dealIdBytes(), add: [cid.multihash.bytes], addresses: ['/ip4/127.0.0.1/tcp/7470/http', '/dns/p.example/tcp/443/tls/http'] }))
    const ask = async (query: string): Promise<Array<{ Addrs: string[] }>> => ((await (await fetch(`${indexer.url}/routing/v1/providers/${cid.toString()}?${query}`)).json()) as { Providers: Array<{ Addrs: string[] }> }).Providers
    t.is((await ask('filter-protocols=transport-ipfs-gateway-http')).length, 1)
    t.is((await ask('filter-protocols=unknown,transport-bitswap')).length, 0)
    t.deepEqual((await ask('filter-addrs=tls'))[0]?.Addrs, ['/dns/p.example/tcp/443/tls/http'])
    t.deepEqual((await ask('filter-addrs=!tls'))[0]?.Addrs, ['/ip4/127.0.0.1/tcp/7470/http'])
    t.deepEqual((await ask('filter-addrs=TCP'))[0]?.Addrs.length, 2)
    t.is((await ask('filter-addrs=webrtc-direct,!ip4')).length, 0)
  } finally {
    await indexer.close()
  }
})

test('answers are bounded: at most maxJsonResults providers in JSON, maxStreamResults in NDJSON', async (t) => {
  const indexer = await startIndexer({ maxJsonResults: 2, maxStreamResults: 3 })
  try {
    const cid = randomCids(1)[0] as CID
    for (let i = 0; i < 5; i++) t.is((await post(indexer, advertisement(newIdentity(), null, { context: dealIdBytes(), add: [cid.multihash.bytes] }))).status, 200)
    const json = await fetch(`${indexer.url}/routing/v1/providers/${cid.toString()}`)
    t.is(((await json.json()) as { Providers: unknown[] }).Providers.length, 2)
    const stream = await fetch(`${indexer.url}/routing/v1/providers/${cid.toString()}`, { headers: { accept: 'application/x-ndjson' } })
    t.is((await stream.text()).split('\n').filter(l => l !== '').length, 3)
  } finally {
    await indexer.close()
  }
})

test('ingest refusals over HTTP: wrong content type (400), too large (413), a gap (409 with the head), a corrupt CAR (422), GET (405)', async (t) => {
  const indexer = await startIndexer({ maxAdvertisementBytes: 64 * 1024 })
  try {
    const signer = newIdentity()
    const first = advertisement(signer, null, { context: dealIdBytes(), add: randomCids(2).map(c => c.multihash.bytes) })
    const wrongType = await post(indexer, first, 'application/json')
    t.is(wrongType.status, 400)
    t.is(await errorCode(wrongType), 'ERR_BAD_REQUEST')
    const big = advertisement(signer, null, { context: dealIdBytes(), add: randomCids(3000).map(c => c.multihash.bytes) })
    const tooLarge = await post(indexer, big)
    t.is(tooLarge.status, 413)
    t.is(await errorCode(tooLarge), 'ERR_PAYLOAD_TOO_LARGE')
    t.is((await post(indexer, first)).status, 200)
    const stray = advertisement(signer, randomCids(1)[0] as CID, { context: dealIdBytes(), add: randomCids(1).map(c => c.multihash.bytes) })
    const gap = await post(indexer, stray)
    t.is(gap.status, 409)
    const body = (await gap.json()) as { error: { code: string, details: { head: string } } }
    t.is(body.error.code, 'ERR_AD_CHAIN_GAP')
    t.is(body.error.details.head, first.cid.toString())
    const corrupt = Uint8Array.from(first.car)
    corrupt[60] ^= 0xff
    const mangled = await fetch(`${indexer.url}/ingest/v1/advertisements`, { method: 'POST', headers: { 'content-type': 'application/vnd.ipld.car' }, body: corrupt })
    t.is(mangled.status, 422)
    const get = await fetch(`${indexer.url}/ingest/v1/advertisements`)
    t.is(get.status, 405)
    t.is(await errorCode(get), 'ERR_METHOD_NOT_ALLOWED')
  } finally {
    await indexer.close()
  }
})
