/**
 * @helia/verified-fetch as a retrieval oracle, pointed at one provider only.
 *
 * The Node 20 set (verified-fetch 4.0.3, @helia/http 3.0.10) calls
 * `Promise.withResolvers` (Node ≥ 22), so the polyfill goes in before the
 * Helia modules load — hence the dynamic imports. The node is built by hand:
 * no libp2p services (no delegated routing to delegated-ipfs.dev), the
 * provider as the only gateway router, and the trustless-gateway broker
 * allowed to use an http loopback address.
 */
import { Socket } from 'node:net'
import type { CID } from 'multiformats/cid'

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/**
 * Refuses, and records, every TCP connection this process tries to open to
 * anything but loopback while the oracle runs, so a test can assert the
 * reference client asked the provider and nobody else.
 */
function guardConnections (refused: string[]): () => void {
  const original = Socket.prototype.connect
  Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
    let first = args[0]
    if (Array.isArray(first)) first = first[0]
    let host: string | undefined
    if (typeof first === 'object' && first !== null) {
      const o = first as { host?: string, path?: string }
      host = o.path !== undefined ? undefined : (o.host ?? 'localhost')
    } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      host = typeof args[1] === 'string' ? args[1] : 'localhost'
    }
    if (host !== undefined && !LOOPBACK.has(host.replace(/^\[|\]$/g, ''))) {
      refused.push(host)
      this.destroy(new Error(`interop oracle: connection to non-loopback ${host} refused`))
      return this
    }
    return (original as (...a: unknown[]) => Socket).apply(this, args)
  } as typeof Socket.prototype.connect
  return () => { Socket.prototype.connect = original }
}

function installWithResolvers (): void {
  const P = Promise as unknown as { withResolvers?: unknown }
  if (typeof P.withResolvers === 'function') return
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> () {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new Promise<T>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
      return { promise, resolve, reject }
    }
  })
}

export interface Oracle {
  /** Non-loopback hosts the process tried to reach while the oracle ran (and was refused). */
  refused: string[]
  fetch: (resource: string | CID, init?: RequestInit) => Promise<Response>
  stop: () => Promise<void>
}

/**
 * verified-fetch over a node that knows no gateway and holds only `blocks`:
 * it answers only if those blocks alone let it verify the path and content,
 * which makes it the judge of whether a CAR response is self-sufficient.
 */
export async function offlineVerifiedFetch (blocks: Iterable<{ cid: CID, bytes: Uint8Array }>): Promise<Oracle> {
  installWithResolvers()
  const refused: string[] = []
  const unguard = guardConnections(refused)
  const { createHeliaHTTP } = await import('@helia/http')
  const { createVerifiedFetch } = await import('@helia/verified-fetch')
  const helia = await createHeliaHTTP({ routers: [], blockBrokers: [], libp2p: { services: {} } as never })
  for (const { cid, bytes } of blocks) await helia.blockstore.put(cid, bytes)
  const verifiedFetch = await createVerifiedFetch(helia)
  return {
    refused,
    // no session: a session asks block brokers for providers, and there are none
    fetch: async (resource, init) => await verifiedFetch(resource as string, { ...init, session: false }),
    stop: async () => {
      try { await verifiedFetch.stop() } finally { unguard() }
    }
  }
}

type Routers = typeof import('@helia/routers')

/**
 * verified-fetch over a Helia node with the routers `routers` makes and the
 * trustless-gateway block broker, which may use http loopback addresses;
 * `url` (the gateway or router) must be on loopback.
 */
async function gatewayOracle (url: string, routers: (modules: Routers) => unknown[]): Promise<Oracle> {
  const { hostname } = new URL(url)
  // the oracle must never reach past loopback
  if (!LOOPBACK.has(hostname.replace(/^\[|\]$/g, ''))) throw new RangeError(`oracle gateway or router must be loopback, got ${url}`)
  installWithResolvers()
  const refused: string[] = []
  const unguard = guardConnections(refused)
  const { createHeliaHTTP } = await import('@helia/http')
  const { trustlessGateway } = await import('@helia/block-brokers')
  const { createVerifiedFetch } = await import('@helia/verified-fetch')
  const helia = await createHeliaHTTP({
    routers: routers(await import('@helia/routers')) as never,
    blockBrokers: [trustlessGateway({ allowInsecure: true, allowLocal: true })],
    libp2p: { services: {} } as never
  })
  const verifiedFetch = await createVerifiedFetch(helia)
  return {
    refused,
    fetch: async (resource, init) => await verifiedFetch(resource as string, init),
    // stops the Helia node too
    stop: async () => {
      try { await verifiedFetch.stop() } finally { unguard() }
    }
  }
}

/** verified-fetch with the provider at `gateway` as its only gateway. */
export async function verifiedFetchOf (gateway: string): Promise<Oracle> {
  return await gatewayOracle(gateway, ({ httpGatewayRouting }) => [httpGatewayRouting({ gateways: [gateway] })])
}

/**
 * verified-fetch over a Helia node that knows no gateway: its only router is
 * Helia's delegated routing client (@helia/routers `delegatedHTTPRouting`,
 * on @helia/delegated-routing-v1-http-api-client) pointed at `router`, so
 * every provider it fetches from was found there.
 */
export async function routedVerifiedFetch (router: string): Promise<Oracle> {
  return await gatewayOracle(router, ({ delegatedHTTPRouting }) => [delegatedHTTPRouting(router, { filterProtocols: ['transport-ipfs-gateway-http'], filterAddrs: ['http', 'https'] })])
}

/** Helia's delegated routing client on its own, pointed at `router`, with the Node 20 polyfill in place. */
export async function delegatedRoutingClient (router: string): Promise<import('@helia/delegated-routing-v1-http-api-client').DelegatedRoutingV1HttpApiClient> {
  installWithResolvers()
  const { createDelegatedRoutingV1HttpApiClient } = await import('@helia/delegated-routing-v1-http-api-client')
  return createDelegatedRoutingV1HttpApiClient(router, { cacheTTL: 0 })
}
