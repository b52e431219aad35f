/**
 * The HTTP side of content routing over undici: announcing an advertisement
 * to an indexer (docs/routing.md, "Ingest") and asking a Delegated Routing V1
 * router who provides a CID. Network failures become ERR_UNREACHABLE or
 * ERR_TIMEOUT here, and an indexer's coded error body its own code.
 */
import type { Dispatcher } from 'undici'
import { request } from '../lazy/undici.js'
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { readBounded } from '../http/body.js'
import { networkError, providerError } from '../http/errors.js'

export interface RoutingHttpOptions {
  signal?: AbortSignal
  /** connect and response headers, ms */
  headersTimeoutMs?: number
  /** longest silence while a body streams, ms */
  bodyTimeoutMs?: number
  dispatcher?: Dispatcher
}

/** What an indexer answers to an advertisement it took (or had taken before). */
export interface AnnounceAck {
  provider: string
  head: string
  applied: boolean
}

async function send (role: string, url: string, init: { method: Dispatcher.HttpMethod, headers: Record<string, string>, body?: Uint8Array }, options: RoutingHttpOptions): Promise<Dispatcher.ResponseData> {
  try {
    return await request(url, {
      ...init,
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      bodyTimeout: options.bodyTimeoutMs ?? 30_000,
      signal: options.signal,
      dispatcher: options.dispatcher
    })
  } catch (err) {
    throw networkError(err, `${role} ${url}`)
  }
}

async function text (role: string, url: string, res: Dispatcher.ResponseData, limit: number): Promise<string> {
  try {
    const bytes = await readBounded(res.body, { limit, tooLarge: () => new CairnError('ERR_INVALID_ROUTER_RESPONSE', `${role} ${url} sent more than ${limit} bytes`) })
    return new TextDecoder().decode(bytes)
  } catch (err) {
    throw networkError(err, `${role} ${url}`)
  }
}

/** Sends one advertisement CAR to an indexer; resolves to its acknowledgement or throws its coded refusal. */
export async function announce (indexer: string, car: Uint8Array, options: RoutingHttpOptions = {}): Promise<AnnounceAck> {
  const url = `${indexer}/ingest/v1/advertisements`
  const res = await send('indexer', url, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.ipld.car; version=1', accept: 'application/json' },
    body: car
  }, options)
  const body = await text('indexer', indexer, res, 64 * 1024)
  if (res.statusCode !== 200) throw providerError(indexer, res.statusCode, body)
  let ack: Partial<AnnounceAck>
  try {
    ack = JSON.parse(body)
  } catch {
    throw new CairnError('ERR_INVALID_ROUTER_RESPONSE', `indexer ${indexer} acknowledged with a body that is not JSON`)
  }
  if (typeof ack.head !== 'string' || typeof ack.provider !== 'string' || typeof ack.applied !== 'boolean') {
    throw new CairnError('ERR_INVALID_ROUTER_RESPONSE', `indexer ${indexer} acknowledged without {provider, head, applied}`)
  }
  return { provider: ack.provider, head: ack.head, applied: ack.applied }
}

/** One record of a Delegated Routing answer, as far as cairn reads it. */
export interface RoutedProvider {
  id: string
  addrs: string[]
  protocols: string[]
}

const MAX_ROUTER_BODY = 4 * 1024 * 1024
const MAX_RECORDS = 1000

function recordOf (value: unknown): RoutedProvider | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const r = value as { Schema?: unknown, ID?: unknown, Addrs?: unknown, Protocols?: unknown, Protocol?: unknown }
  // unknown schemas are skipped; legacy ones (bitswap, graphsync) read like `peer`
  if (typeof r.ID !== 'string') return undefined
  const addrs = Array.isArray(r.Addrs) ? r.Addrs.filter((a): a is string => typeof a === 'string') : []
  const protocols = Array.isArray(r.Protocols) ? r.Protocols.filter((p): p is string => typeof p === 'string') : []
  if (typeof r.Protocol === 'string') protocols.push(r.Protocol)
  return { id: r.ID, addrs, protocols }
}

/**
 * `GET {router}/routing/v1/providers/{cid}`: the records it gives (at most
 * 1000), asking for NDJSON and reading JSON too. A 404 is an empty answer
 * (IPIP-0513: clients must read it so).
 */
export async function findProviders (router: string, cid: CID, options: RoutingHttpOptions & { filterProtocols?: string[] } = {}): Promise<RoutedProvider[]> {
  const query = options.filterProtocols === undefined ? '' : `?filter-protocols=${options.filterProtocols.join(',')}`
  const url = `${router}/routing/v1/providers/${cid.toV1().toString()}${query}`
  const res = await send('router', url, { method: 'GET', headers: { accept: 'application/x-ndjson, application/json;q=0.8' } }, options)
  if (res.statusCode === 404) {
    res.body.resume()
    return []
  }
  const body = await text('router', router, res, MAX_ROUTER_BODY)
  if (res.statusCode !== 200) throw providerError(router, res.statusCode, body)
  const type = String(res.headers['content-type'] ?? '')
  let values: unknown[]
  try {
    if (type.startsWith('application/x-ndjson')) values = body.split('\n').filter(line => line.trim() !== '').map(line => JSON.parse(line))
    else if (type.startsWith('application/json')) values = (JSON.parse(body) as { Providers?: unknown }).Providers as unknown[] ?? []
    else throw new CairnError('ERR_INVALID_ROUTER_RESPONSE', `router ${router} answered with Content-Type ${JSON.stringify(type)}`)
  } catch (err) {
    if (err instanceof CairnError) throw err
    throw new CairnError('ERR_INVALID_ROUTER_RESPONSE', `router ${router} answered with a body that is not ${type}: ${(err as Error).message}`)
  }
  if (!Array.isArray(values)) throw new CairnError('ERR_INVALID_ROUTER_RESPONSE', `router ${router}: "Providers" is not a list`)
  return values.slice(0, MAX_RECORDS).map(recordOf).filter((r): r is RoutedProvider => r !== undefined)
}
