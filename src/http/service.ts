/**
 * The node:http service every cairn listener shares (provider, indexer,
 * admin API): server limits, connection caps, coded error answers, and a
 * graceful stop that aborts transfers in flight.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { CairnError, isCairnError } from '../errors.js'
import { errorBody, httpStatusOf, sendError, toCairnError, type Context, type Router } from './server.js'

/** A structured log line: an event name and its fields. */
export type Logger = (event: string, fields?: Record<string, unknown>) => void

interface Counter { inc: (labels: Record<string, string>) => void }

/** The counters the service keeps (src/provider/metrics.ts has them, among others). */
export interface ServiceMetrics {
  readonly requests: Counter
  readonly requestsAborted: Counter
  readonly errors: Counter
}

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

/** True when a request's signal was aborted because its client went away (not by a stop). */
export function clientGone (signal: AbortSignal): boolean {
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

export interface HttpService<M extends ServiceMetrics = ServiceMetrics> {
  readonly server: Server
  readonly metrics: M
  /** Listens on host:port (port 0 picks one) and resolves to the base URL. */
  listen (host: string, port: number): Promise<string>
  readonly url: string
  /** Stops accepting, aborts transfers in flight, waits for connections to end. */
  close (): Promise<void>
}

interface ServeOptions<M extends ServiceMetrics> {
  router: Router
  limits: ServerLimits
  log: Logger
  metrics: M
  /** Runs before routing; may throw a coded error (the admin API checks its token here). */
  guard?: (req: IncomingMessage) => void
}

/** A node:http server around a router, with the limits, error bodies and graceful stop every cairn listener shares. */
export function createHttpService<M extends ServiceMetrics> ({ router, limits, log, metrics, guard }: ServeOptions<M>): HttpService<M> {
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
