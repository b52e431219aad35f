/**
 * Providers of a CID found through delegated routers, as sources `cairn get`
 * tries in turn (src/client/retrieve.ts): every router is asked at once, each
 * record that names the Trustless Gateway protocol (or no protocols) and an
 * http(s) address becomes one source, once per URL, in the routers' order.
 * A router that fails is reported and the others still count.
 */
import type { CID } from 'multiformats/cid'
import { CairnError, isCairnError } from '../errors.js'
import type { Source } from '../client/retrieve.js'
import { findProviders } from './http-client.js'
import { urlFromMultiaddr } from './multiaddr.js'

export interface RoutedSourcesOptions {
  /** how long each router may take, ms */
  timeoutMs?: number
  /** providers tried at most */
  maxProviders?: number
  onRouterError?: (router: string, err: CairnError) => void
}

const GATEWAY = 'transport-ipfs-gateway-http'

export async function routedSources (routers: readonly string[], root: CID, options: RoutedSourcesOptions = {}): Promise<Source[]> {
  const answers = await Promise.all(routers.map(async (router) => {
    try {
      return await findProviders(router, root, { signal: AbortSignal.timeout(options.timeoutMs ?? 15_000), filterProtocols: [GATEWAY, 'unknown'] })
    } catch (err) {
      options.onRouterError?.(router, isCairnError(err) ? err : new CairnError('ERR_INTERNAL', (err as Error).message, { cause: err }))
      return []
    }
  }))
  const sources: Source[] = []
  const seen = new Set<string>()
  for (const record of answers.flat()) {
    if (record.protocols.length > 0 && !record.protocols.includes(GATEWAY)) continue
    const url = record.addrs.map(httpUrl).find(u => u !== undefined)
    if (url === undefined || seen.has(url)) continue
    seen.add(url)
    sources.push({ kind: 'provider', location: url, reason: 'router' })
    if (sources.length >= (options.maxProviders ?? 10)) break
  }
  return sources
}

/** The URL of an http(s) multiaddr; undefined for other transports and for strings that are not multiaddrs. */
function httpUrl (multiaddr: string): string | undefined {
  try {
    return urlFromMultiaddr(multiaddr)
  } catch {
    return undefined
  }
}
