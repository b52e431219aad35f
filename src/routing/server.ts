/**
 * The indexer's HTTP service (`cairn indexer start`): providers announce
 * advertisements to `POST /ingest/v1/advertisements` (docs/routing.md), and
 * anyone asks who serves a CID at `GET /routing/v1/providers/{cid}`, the
 * Delegated Routing V1 HTTP API (https://specs.ipfs.tech/routing/http-routing-v1/)
 * that Helia, kubo and lassie speak.
 *
 * Lookups go by the CID's multihash alone (as IPNI's do), so a block is found
 * whichever codec or CID version names it. Each provider is one `peer` record
 * (its peer ID, its http(s) multiaddrs, the transfer protocols its
 * advertisements name), filtered as IPIP-484 says. An answer is JSON unless
 * the client accepts `application/x-ndjson`, in which case records stream one
 * per line. No provider is an empty 200 answer (IPIP-0513), a CID that does
 * not parse a coded 400.
 */
import type { ServerResponse } from 'node:http'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { Router, sendJSON, type Context } from '../http/server.js'
import type { Logger } from '../provider/interface.js'
import { Metrics } from '../provider/metrics.js'
import { boundedChunks } from '../http/body.js'
import { createHttpService, defaultLimits, type ServerLimits } from '../http/service.js'
import { stderrLogger, type HttpService } from '../provider/server.js'
import { protocolsOf } from './advertisement.js'
import { filterAddrs, parseFilter, passesProtocols } from './filters.js'
import { Ingester } from './ingest.js'
import type { IndexedProvider, IndexStore } from './interface.js'
import { publicKeyFromPeerId, peerIdFromPublicKey } from './peer-id.js'

export interface IndexerLimits extends ServerLimits {
  /** largest advertisement CAR taken (an advertisement and up to MAX_CHUNKS_PER_AD entry chunks) */
  maxAdvertisementBytes: number
  /** providers in one JSON answer (the spec's SHOULD: 100) */
  maxJsonResults: number
  /** providers in one streamed (NDJSON) answer */
  maxStreamResults: number
}

export const defaultIndexerLimits: IndexerLimits = {
  ...defaultLimits,
  maxAdvertisementBytes: 24 * 1024 * 1024,
  maxJsonResults: 100,
  maxStreamResults: 1000
}

/** The record a Delegated Routing client reads (the spec's "Peer Schema"). */
export interface PeerRecord {
  Schema: 'peer'
  ID: string
  Addrs: string[]
  Protocols: string[]
}

export interface IndexerServerOptions {
  store: IndexStore
  limits?: Partial<IndexerLimits>
  log?: Logger
  now?: () => number
}

const NDJSON = 'application/x-ndjson'
/** Cache lifetimes the spec suggests: longer for answers with records, short for empty ones. */
const CACHE_FOUND = 'public, max-age=300, stale-while-revalidate=3600, stale-if-error=3600'
const CACHE_EMPTY = 'public, max-age=15, stale-while-revalidate=3600, stale-if-error=3600'
const CORS = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Methods': 'GET, OPTIONS' }

function wantsStream (ctx: Context): boolean {
  const accept = String(ctx.req.headers.accept ?? '')
  return accept.split(',').some(part => {
    const [type, ...params] = part.trim().split(';').map(s => s.trim())
    return type?.toLowerCase() === NDJSON && !params.some(p => /^q=0(\.0*)?$/.test(p))
  })
}

function parseRoutingCid (value: string): CID {
  let text: string
  try {
    text = decodeURIComponent(value)
    return CID.parse(text)
  } catch {
    throw new CairnError('ERR_INVALID_CID', `not a CID: ${JSON.stringify(value.slice(0, 120))}`)
  }
}

/** The providers of `cid`'s multihash as peer records, at most `limit`, each provider once, filtered. */
async function * providerRecords (store: IndexStore, cid: CID, limit: number, url: URL): AsyncGenerator<PeerRecord> {
  const addrFilter = parseFilter(url.searchParams.get('filter-addrs'))
  const protocolFilter = parseFilter(url.searchParams.get('filter-protocols'))
  // a provider holding the block under many deals has one hit per deal: read ahead to fill `limit` providers
  const records = new Map<string, { provider: IndexedProvider, protocols: Set<string> }>()
  const order: string[] = []
  for await (const hit of store.find(cid.multihash.bytes, limit * 8)) {
    let r = records.get(hit.provider.peerId)
    if (r === undefined) {
      if (order.length >= limit) continue
      r = { provider: hit.provider, protocols: new Set() }
      records.set(hit.provider.peerId, r)
      order.push(hit.provider.peerId)
    }
    for (const p of protocolsOf(hit.metadata)) r.protocols.add(p)
  }
  for (const id of order) {
    const r = records.get(id) as { provider: IndexedProvider, protocols: Set<string> }
    const record = peerRecord(r.provider, [...r.protocols], addrFilter, protocolFilter)
    if (record !== undefined) yield record
  }
}

function peerRecord (provider: IndexedProvider, protocols: string[], addrFilter: string[] | undefined, protocolFilter: string[] | undefined): PeerRecord | undefined {
  if (!passesProtocols(protocols, protocolFilter)) return undefined
  const addrs = filterAddrs(provider.addresses, addrFilter)
  if (addrs === undefined) return undefined
  return { Schema: 'peer', ID: provider.peerId, Addrs: addrs, Protocols: protocols }
}

/** Answers with `records` as JSON `{[key]: [...]}` or, when asked, NDJSON streamed line by line. */
async function answer (ctx: Context, key: 'Providers' | 'Peers', records: AsyncIterable<PeerRecord>, now: number): Promise<void> {
  const iterator = records[Symbol.asyncIterator]()
  const first = await iterator.next()
  const headers = {
    ...CORS,
    Vary: 'Accept',
    'Last-Modified': new Date(now).toUTCString(),
    'Cache-Control': first.done === true ? CACHE_EMPTY : CACHE_FOUND,
    'X-Content-Type-Options': 'nosniff'
  }
  if (!wantsStream(ctx)) {
    const all: PeerRecord[] = []
    for (let r = first; r.done !== true; r = await iterator.next()) all.push(r.value)
    const body = Buffer.from(JSON.stringify({ [key]: all }))
    ctx.res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(body.length) })
    ctx.res.end(body)
    return
  }
  ctx.res.writeHead(200, { ...headers, 'Content-Type': NDJSON })
  for (let r = first; r.done !== true; r = await iterator.next()) {
    if (ctx.signal.aborted) break
    if (!ctx.res.write(JSON.stringify(r.value) + '\n')) await drained(ctx.res, ctx.signal)
  }
  ctx.res.end()
}

async function drained (res: ServerResponse, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { res.off('drain', done); signal.removeEventListener('abort', done); resolve() }
    res.once('drain', done)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The advertisement CAR of a request, counted against the limit as it arrives. */
function limitedBody (ctx: Context, limit: number): AsyncGenerator<Uint8Array> {
  return boundedChunks(ctx.req, {
    limit,
    declared: ctx.req.headers['content-length'],
    tooLarge: (declared) => new CairnError('ERR_PAYLOAD_TOO_LARGE', declared === undefined ? `advertisement CAR is over the limit of ${limit} bytes` : `advertisement CAR is ${declared} bytes; the limit is ${limit} bytes`)
  })
}

export function createIndexerServer (options: IndexerServerOptions): HttpService {
  const limits: IndexerLimits = { ...defaultIndexerLimits, ...options.limits }
  const log = options.log ?? stderrLogger
  const now = options.now ?? Date.now
  const { store } = options
  const ingester = new Ingester(store, now)
  const router = new Router()
  const metrics = new Metrics()

  router.on('GET', '/healthz', async ({ res }) => { sendJSON(res, 200, { status: 'ok', ...await store.stats() }, { 'Cache-Control': 'no-store' }) })

  router.on('POST', '/ingest/v1/advertisements', async (ctx) => {
    const type = String(ctx.req.headers['content-type'] ?? '')
    if (!/^application\/vnd\.ipld\.car\b/i.test(type)) {
      throw new CairnError('ERR_BAD_REQUEST', `an advertisement is sent as Content-Type application/vnd.ipld.car, got ${JSON.stringify(type)}`)
    }
    const result = await ingester.ingest(limitedBody(ctx, limits.maxAdvertisementBytes))
    if (result.applied) log('advertisement-applied', { provider: result.provider, ad: result.head.toString(), multihashes: result.multihashes, removed: result.removed || undefined })
    sendJSON(ctx.res, 200, { provider: result.provider, head: result.head.toString(), applied: result.applied, multihashes: result.multihashes }, { 'Cache-Control': 'no-store' })
  })

  router.on('GET', '/routing/v1/providers/:cid', async (ctx) => {
    const cid = parseRoutingCid(ctx.params.cid ?? '')
    const limit = wantsStream(ctx) ? limits.maxStreamResults : limits.maxJsonResults
    await answer(ctx, 'Providers', providerRecords(store, cid, limit, ctx.url), now())
  })

  router.on('GET', '/routing/v1/peers/:peerId', async (ctx) => {
    const raw = decodeURIComponent(ctx.params.peerId ?? '')
    const peerId = peerIdFromPublicKey(publicKeyFromPeerId(raw))
    const provider = await store.provider(peerId)
    async function * one (): AsyncGenerator<PeerRecord> {
      // the protocols are not kept per provider; a client learns them from a providers answer
      const record = provider === undefined ? undefined : peerRecord(provider, [], parseFilter(ctx.url.searchParams.get('filter-addrs')), undefined)
      if (record !== undefined) yield record
    }
    await answer(ctx, 'Peers', one(), now())
  })

  router.on('OPTIONS', '/routing/v1/*rest', ({ res }) => {
    res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Accept', 'Access-Control-Max-Age': '86400' })
    res.end()
  })
  router.on(['GET', 'PUT'], '/routing/v1/ipns/*rest', () => { throw new CairnError('ERR_NOT_IMPLEMENTED', 'this router answers content routing only; IPNS is not supported') })
  router.on('GET', '/routing/v1/dht/*rest', () => { throw new CairnError('ERR_NOT_IMPLEMENTED', 'this router is an indexer, not a DHT node') })
  // the spec: an unknown path under the API is a 400
  router.on('GET', '/routing/v1/*rest', (ctx) => { throw new CairnError('ERR_BAD_REQUEST', `unknown routing path ${ctx.url.pathname}`) })

  return createHttpService({ router, limits, log, metrics })
}
