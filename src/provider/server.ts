/**
 * The provider's HTTP service (SPEC §3.1): deal routes over a DealService, the
 * Trustless Gateway over a BlockSource, piece retrieval over a PieceSource,
 * health and metrics. Every limit a hostile or broken client could push on is
 * bounded: header size and time, JSON body size, upload length, idle time and
 * minimum upload rate. A failure is a coded 4xx/5xx, never a crash.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { CairnError, isCairnError } from '../errors.js'
import { gatewayHandler } from '../gateway/gateway.js'
import { parseCid } from '../gateway/request.js'
import { errorBody, guardedBody, readJSONBody, Router, sendError, sendJSON, toCairnError, httpStatusOf, type Context } from './http.js'
import type { BlockSource, DealLogFields, DealService, Logger, PieceSource } from './interface.js'
import { Metrics, type GaugeSnapshot } from './metrics.js'
import { pieceHandler } from './piece.js'
import { createLogger } from './log.js'

export interface ServerLimits {
  /** Time allowed to send the request headers. */
  headersTimeoutMs: number
  /** Socket inactivity that ends a connection; an upload stalled this long gets ERR_TIMEOUT. */
  idleTimeoutMs: number
  /** An upload averaging less than this over `uploadRateWindowMs` gets ERR_UPLOAD_TOO_SLOW. */
  minUploadBytesPerSecond: number
  uploadRateWindowMs: number
  maxHeaderSize: number
  maxJSONBodyBytes: number
  /** Largest Content-Length accepted for a piece upload. */
  maxUploadBytes: number
  keepAliveTimeoutMs: number
  /** How long a stop waits for requests in flight before cutting connections. */
  shutdownGraceMs: number
  /** Time allowed to send a JSON body whole (a floor on its rate: 64 KiB in 10 s); ERR_TIMEOUT beyond. */
  bodyTimeoutMs: number
  /** Connections open at once, in total and from one address; more are answered 503 ERR_TOO_MANY_CONNECTIONS and closed. */
  maxConnections: number
  maxConnectionsPerPeer: number
}

export const defaultLimits: ServerLimits = {
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  minUploadBytesPerSecond: 64 * 1024,
  uploadRateWindowMs: 10_000,
  maxHeaderSize: 16 * 1024,
  maxJSONBodyBytes: 64 * 1024,
  maxUploadBytes: 64 * 1024 ** 3,
  keepAliveTimeoutMs: 5_000,
  shutdownGraceMs: 5_000,
  bodyTimeoutMs: 10_000,
  maxConnections: 4096,
  maxConnectionsPerPeer: 1024
}

let defaultLogger: Logger | undefined

/** The default log: text lines on stderr, info and above (src/provider/log.ts). */
export const stderrLogger: Logger = (event, fields) => { (defaultLogger ??= createLogger())(event, fields) }

/** True when a request's signal was aborted because its client went away (not by a stop). */
function clientGone (signal: AbortSignal): boolean {
  return signal.aborted && isCairnError(signal.reason) && signal.reason.code === 'ERR_UNREACHABLE'
}

/** Why a listener could not start, as a code a user can act on. */
function listenError (err: NodeJS.ErrnoException, host: string, port: number): CairnError {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
  switch (err.code) {
    case 'EADDRINUSE': return new CairnError('ERR_ADDRESS_IN_USE', `${where} is already in use by another process; choose another --listen port or stop it`, { cause: err })
    case 'EACCES': return new CairnError('ERR_PERMISSION_DENIED', `not allowed to listen on ${where} (ports below 1024 need privileges)`, { cause: err })
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return new CairnError('ERR_INVALID_ARGUMENT', `cannot listen on ${where}: ${host} is not an address of this machine`, { cause: err })
    default: return new CairnError('ERR_IO', `cannot listen on ${where}: ${err.message}`, { cause: err })
  }
}

/** Answers a raw socket with a coded error and closes it (no request was parsed, or none will be). */
function refuseSocket (socket: Socket, err: CairnError): void {
  const body = JSON.stringify(errorBody(err))
  const status = httpStatusOf(err.code)
  socket.on('error', () => {})
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  socket.setTimeout(1000, () => socket.destroy())
}

export interface HttpService {
  readonly server: Server
  readonly metrics: Metrics
  /** Listens on host:port (port 0 picks one) and resolves to the base URL. */
  listen (host: string, port: number): Promise<string>
  readonly url: string
  /** Stops accepting, aborts transfers in flight, waits for connections to end. */
  close (): Promise<void>
}

interface ServeOptions {
  router: Router
  limits: ServerLimits
  log: Logger
  metrics: Metrics
  /** Runs before routing; may throw a coded error (the admin API checks its token here). */
  guard?: (req: IncomingMessage) => void
}

/** A node:http server around a router, with the limits, error bodies and graceful stop every cairn listener shares. */
export function createHttpService ({ router, limits, log, metrics, guard }: ServeOptions): HttpService {
  const inFlight = new Set<AbortController>()
  let closing = false
  let url = ''

  const server = createServer({
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headersTimeoutMs,
    // uploads may take hours; liveness is enforced by idle time and minimum rate instead
    requestTimeout: 0,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4)))
  }, (req, res) => { void handle(req, res) })
  server.timeout = limits.idleTimeoutMs

  // connections per address, and in total: a peer opening thousands of slow connections holds
  // file handles and memory until it is cut off, so past the caps new ones are turned away at once
  const perPeer = new Map<string, number>()
  let open = 0
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? 'unknown'
    const mine = (perPeer.get(peer) ?? 0) + 1
    if (open >= limits.maxConnections || mine > limits.maxConnectionsPerPeer) {
      const err = new CairnError('ERR_TOO_MANY_CONNECTIONS', open >= limits.maxConnections
        ? `the provider has ${open} connections open, its limit`
        : `${mine - 1} connections from ${peer} are open, the limit per address is ${limits.maxConnectionsPerPeer}`)
      metrics.errors.inc({ code: err.code })
      refuseSocket(socket, err)
      return
    }
    open++
    perPeer.set(peer, mine)
    socket.once('close', () => {
      open--
      const left = (perPeer.get(peer) ?? 1) - 1
      if (left === 0) perPeer.delete(peer)
      else perPeer.set(peer, left)
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController()
    inFlight.add(controller)
    let route = 'unmatched'
    res.on('close', () => {
      inFlight.delete(controller)
      if (!res.writableFinished) controller.abort(new CairnError('ERR_UNREACHABLE', 'client went away'))
    })
    res.on('finish', () => { metrics.requests.inc({ route, status: `${Math.floor(res.statusCode / 100)}xx` }) })
    try {
      if (closing) throw new CairnError('ERR_SHUTTING_DOWN', 'the provider is shutting down')
      let parsed: URL
      try {
        parsed = new URL(req.url ?? '/', 'http://localhost')
      } catch {
        throw new CairnError('ERR_BAD_REQUEST', 'request target is not a valid path')
      }
      guard?.(req)
      const match = router.match(req.method ?? 'GET', parsed.pathname)
      route = match.route
      const ctx: Context = { req, res, url: parsed, params: match.params, signal: controller.signal }
      await match.handler(ctx)
    } catch (thrown) {
      const err = toCairnError(thrown)
      // a client that went away mid-request (hung up, or its body cut short) is owed no answer and is no
      // error of ours: one line at debug, counted apart from errors, never ERR_INTERNAL
      const gone = (err.code === 'ERR_INTERNAL' || err.code === 'ERR_UNREACHABLE') && clientGone(controller.signal)
      if (!closing && (gone || err.code === 'ERR_CLIENT_ABORTED' || res.destroyed || req.socket?.destroyed === true)) {
        metrics.requestsAborted.inc({ route })
        log('request-aborted', { method: req.method, path: req.url?.slice(0, 200), route, received: err.details?.received, reason: err.details?.reason ?? (isCairnError(thrown) ? err.code : undefined) })
        req.destroy()
        return
      }
      metrics.errors.inc({ code: err.code })
      if (err.code === 'ERR_INTERNAL') {
        log('error', { method: req.method, path: req.url, code: err.code, message: (thrown as Error)?.message, stack: (thrown as Error)?.stack?.split('\n')[1]?.trim() })
      } else {
        log('request-rejected', { method: req.method, path: req.url?.slice(0, 200), status: httpStatusOf(err.code), code: err.code, message: err.message })
      }
      // a request whose body was not read to the end cannot be followed by another on this connection
      const unread = !req.complete
      sendError(res, err, unread || closing)
      if (unread) res.once('finish', () => setImmediate(() => req.destroy()))
    }
  }

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage
    // a client that went away mid-request (reset, or the stream ended inside a body): the request in
    // flight, if any, logs it once as aborted
    if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent === true || (err.code === 'HPE_INVALID_EOF_STATE' && pending !== undefined)) { socket.destroy(); return }
    let cairn: CairnError
    if (err.code === 'HPE_HEADER_OVERFLOW') cairn = new CairnError('ERR_HEADERS_TOO_LARGE', `request headers exceed ${limits.maxHeaderSize} bytes`)
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') cairn = new CairnError('ERR_TIMEOUT', `request headers not received within ${limits.headersTimeoutMs} ms`)
    else cairn = new CairnError('ERR_BAD_REQUEST', `malformed HTTP request (${err.code ?? 'parse error'})`)
    metrics.errors.inc({ code: cairn.code })
    log('request-rejected', { status: httpStatusOf(cairn.code), code: cairn.code, message: cairn.message })
    refuseSocket(socket, cairn)
  })

  return {
    server,
    metrics,
    get url () { return url },
    async listen (host: string, port: number): Promise<string> {
      await new Promise<void>((resolve, reject) => {
        const failed = (err: NodeJS.ErrnoException): void => { reject(listenError(err, host, port)) }
        server.once('error', failed)
        server.listen(port, host, () => { server.off('error', failed); resolve() })
      })
      const address = server.address() as AddressInfo
      url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      return url
    },
    async close (): Promise<void> {
      if (closing) return
      closing = true
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      for (const controller of inFlight) controller.abort(new CairnError('ERR_SHUTTING_DOWN', 'the provider is shutting down'))
      const grace = setTimeout(() => server.closeAllConnections(), limits.shutdownGraceMs)
      grace.unref()
      await closed
      clearTimeout(grace)
    }
  }
}

export interface ProviderServerOptions {
  deals: DealService
  blocks: BlockSource
  pieces: PieceSource
  limits?: Partial<ServerLimits>
  log?: Logger
  /** Deals by state, bytes stored and capacity, sampled when /metrics is scraped (a function, so its source can change). */
  gauges?: () => Promise<GaugeSnapshot>
  /** Mounts more routes (the PDP API, src/pdp/mount.ts) on the same service, limits and metrics. */
  routes?: (router: Router, shared: { limits: ServerLimits, log: Logger, metrics: Metrics }) => void
}

/** client, piece and size of a proposal body, for its log line; nothing from a body that is not one. */
function proposalLogFields (body: unknown): DealLogFields {
  const p = (body as { payload?: Record<string, unknown> } | null)?.payload
  if (p === null || typeof p !== 'object') return {}
  const size = p.pieceSize
  return {
    client: typeof p.client === 'string' ? p.client.slice(0, 100) : undefined,
    pieceCid: p.pieceCid !== undefined && p.pieceCid !== null ? String(p.pieceCid).slice(0, 100) : undefined,
    pieceSize: typeof size === 'number' || typeof size === 'bigint' ? Number(size) : undefined
  }
}

function dealIdParam (ctx: Context): string {
  const id = ctx.params.id ?? ''
  parseCid(id)
  return id
}

/** The provider's public HTTP API (SPEC §3.1). */
export function createProviderServer (options: ProviderServerOptions): HttpService {
  const limits = { ...defaultLimits, ...options.limits }
  const log = options.log ?? stderrLogger
  const metrics = new Metrics(options.gauges, { processMetrics: true })
  const { deals } = options
  const router = new Router()

  router.on('GET', '/healthz', ({ res }) => { sendJSON(res, 200, { status: 'ok' }, { 'Cache-Control': 'no-store' }) })
  router.on('GET', '/metrics', async ({ res }) => {
    const body = await metrics.render()
    res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' })
    res.end(body)
  })

  router.on('GET', '/v1/ask', async ({ res }) => { sendJSON(res, 200, await deals.ask(), { 'Cache-Control': 'no-store' }) })

  router.on('POST', '/v1/deals', async ({ req, res }) => {
    const started = Date.now()
    const body = await readJSONBody(req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs)
    const proposed = proposalLogFields(body)
    try {
      const acceptance = await deals.propose(body) as { payload?: { dealId?: unknown } }
      log('deal-accepted', { deal: String(acceptance?.payload?.dealId), ...proposed, from: req.socket.remoteAddress, ms: Date.now() - started, status: 201 })
      sendJSON(res, 201, acceptance)
    } catch (err) {
      const e = toCairnError(err)
      if (e.code !== 'ERR_INTERNAL') log('deal-rejected', { ...proposed, from: req.socket.remoteAddress, status: httpStatusOf(e.code), code: e.code, message: e.message })
      throw err
    }
  })

  router.on('GET', '/v1/deals/:id', async (ctx) => {
    sendJSON(ctx.res, 200, await deals.status(dealIdParam(ctx)), { 'Cache-Control': 'no-store' })
  })

  router.on('PUT', '/v1/deals/:id/piece', async (ctx) => {
    const { req, res, signal } = ctx
    const dealId = dealIdParam(ctx)
    const declared = req.headers['content-length']
    if (declared === undefined) throw new CairnError('ERR_LENGTH_REQUIRED', 'a piece upload needs a Content-Length header (the piece\'s payloadSize)')
    if (!/^\d{1,16}$/.test(declared)) throw new CairnError('ERR_CONTENT_LENGTH', `Content-Length must be a whole number of bytes, got ${JSON.stringify(declared)}`)
    const contentLength = Number(declared)
    if (contentLength > limits.maxUploadBytes) {
      throw new CairnError('ERR_PAYLOAD_TOO_LARGE', `upload of ${contentLength} bytes is over the limit of ${limits.maxUploadBytes} bytes`)
    }
    const guard = guardedBody(ctx, contentLength, {
      idleTimeoutMs: limits.idleTimeoutMs,
      minBytesPerSecond: limits.minUploadBytesPerSecond,
      windowMs: limits.uploadRateWindowMs
    })
    const about = await deals.summary?.(dealId).catch(() => undefined)
    log('upload-started', { deal: dealId, ...about, bytes: contentLength })
    const started = Date.now()
    try {
      const result = await deals.upload({ dealId, contentLength, body: guard, authorization: req.headers.authorization, signal })
      metrics.uploads.inc({ result: 'stored' })
      metrics.uploadBytes.inc({}, guard.bytes)
      log('upload-stored', { deal: dealId, ...about, bytes: guard.bytes, ms: Date.now() - started, status: 200 })
      sendJSON(res, 200, result)
    } catch (thrown) {
      // the guard's reason (stall, slow, short body) is the truer account than the reader's
      // (only a coded reason: a reader that stopped early leaves a plain AbortError there)
      const err = isCairnError(guard.errored) ? guard.errored : toCairnError(thrown)
      metrics.uploads.inc({ result: 'failed' })
      req.unpipe(guard)
      guard.destroy()
      // a client that went away is logged once, as an aborted request, by the service
      if (res.destroyed || req.socket?.destroyed === true) throw new CairnError('ERR_CLIENT_ABORTED', err.message, { details: { received: guard.bytes, reason: err.code } })
      log('upload-failed', { deal: dealId, ...about, bytes: guard.bytes, ms: Date.now() - started, status: httpStatusOf(err.code), code: err.code, message: err.message })
      throw err
    }
  })

  router.on('POST', '/v1/deals/:id/proofs', async (ctx) => {
    const dealId = dealIdParam(ctx)
    if (deals.prove === undefined) throw new CairnError('ERR_NOT_IMPLEMENTED', 'proof challenges are not answered yet')
    const started = Date.now()
    const body = await readJSONBody(ctx.req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs)
    const about = await deals.summary?.(dealId).catch(() => undefined)
    const count = (body as { payload?: { count?: unknown } } | null)?.payload?.count
    try {
      const proof = await deals.prove(dealId, body)
      metrics.proof(dealId, 'answered', Date.now() - started)
      log('proof-answered', { deal: dealId, ...about, challenges: count, ms: Date.now() - started, status: 200 })
      sendJSON(ctx.res, 200, proof)
    } catch (err) {
      const e = toCairnError(err)
      metrics.proof(dealId, e.code === 'ERR_PIECE_CORRUPT' ? 'corrupt' : e.code === 'ERR_INTERNAL' || e.code === 'ERR_IO' ? 'error' : 'refused', Date.now() - started)
      if (e.code !== 'ERR_INTERNAL') log('proof-refused', { deal: dealId, ...about, challenges: count, ms: Date.now() - started, status: httpStatusOf(e.code), code: e.code, message: e.message })
      throw err
    }
  })

  router.on('POST', '/v1/deals/:id/cancel', async (ctx) => {
    const dealId = dealIdParam(ctx)
    if (deals.cancel === undefined) throw new CairnError('ERR_NOT_IMPLEMENTED', 'deals cannot be cancelled here')
    const body = await readJSONBody(ctx.req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs)
    const about = await deals.summary?.(dealId).catch(() => undefined)
    const status = await deals.cancel(dealId, body)
    log('deal-cancelled', { deal: dealId, ...about, status: 200 })
    sendJSON(ctx.res, 200, status)
  })

  // a successful retrieval is logged at info once it is sent: what, how many bytes, how long
  const served = new AsyncLocalStorage<{ kind?: string, bytes?: number, signal: AbortSignal }>()
  const retrieval = (handler: (ctx: Context) => Promise<void>) => async (ctx: Context): Promise<void> => {
    const started = Date.now()
    const record: { kind?: string, bytes?: number, signal: AbortSignal } = { signal: ctx.signal }
    await served.run(record, async () => { await handler(ctx) })
    if (record.kind !== undefined) {
      log('retrieval', { kind: record.kind, path: ctx.url.pathname.slice(0, 200), bytes: record.bytes, ms: Date.now() - started, status: ctx.res.statusCode, from: ctx.req.socket.remoteAddress })
    }
  }
  const retrieved = (kind: string, bytes: number): void => {
    metrics.retrievals.inc({ kind })
    metrics.retrievalBytes.inc({ kind }, bytes)
    const record = served.getStore()
    if (record !== undefined) { record.kind = kind; record.bytes = (record.bytes ?? 0) + bytes }
  }
  const gateway = gatewayHandler(options.blocks, {
    retrieval: retrieved,
    aborted: (err) => {
      const record = served.getStore()
      if (record !== undefined && clientGone(record.signal)) {
        // the client hung up mid-stream: counted apart, never as an error of ours
        metrics.requestsAborted.inc({ route: '/ipfs/:cid/*path' })
        log('request-aborted', { path: '/ipfs', message: err.message })
        return
      }
      metrics.errors.inc({ code: toCairnError(err).code })
      log('retrieval-aborted', { level: 'warn', code: toCairnError(err).code, message: err.message })
    }
  })
  router.on(['GET', 'HEAD'], '/ipfs/:cid/*path', retrieval(gateway))
  router.on(['GET', 'HEAD'], '/piece/:pieceCid', retrieval(pieceHandler(options.pieces, (bytes) => { retrieved('piece', bytes) })))

  options.routes?.(router, { limits, log, metrics })

  return createHttpService({ router, limits, log, metrics })
}
