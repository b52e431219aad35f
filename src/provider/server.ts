/**
 * The provider's HTTP service (docs/protocol.md): deal routes over a DealService, the
 * Trustless Gateway over a BlockSource, piece retrieval over a PieceSource,
 * health and metrics. Every limit a hostile or broken client could push on is
 * bounded: header size and time, JSON body size, upload length, idle time and
 * minimum upload rate. A failure is a coded 4xx/5xx, never a crash.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { CairnError, isCairnError } from '../errors.js'
import { gatewayHandler } from '../gateway/gateway.js'
import { parseCid } from '../gateway/request.js'
import { guardedBody, httpStatusOf, readJSONBody, Router, sendJSON, toCairnError, type Context } from '../http/server.js'
import { clientGone, createHttpService, defaultLimits, type HttpService as Service, type ServerLimits } from '../http/service.js'

// the shared service's names, still imported from here by the PDP and cluster routes
export { createHttpService, defaultLimits, type ServerLimits }

/** A listener of this process, with the provider's metrics. */
export type HttpService = Service<Metrics>
import type { BlockSource, DealLogFields, DealService, Logger, PieceSource } from './interface.js'
import { Metrics, type GaugeSnapshot } from './metrics.js'
import { pieceHandler } from './piece.js'
import { createLogger } from './log.js'

let defaultLogger: Logger | undefined

/** The default log: text lines on stderr, info and above (src/provider/log.ts). */
export const stderrLogger: Logger = (event, fields) => { (defaultLogger ??= createLogger())(event, fields) }

export interface ProviderServerOptions {
  deals: DealService
  blocks: BlockSource
  pieces: PieceSource
  /** re-hash raw leaves of a stored CAR streamed by the gateway (`provider start --hash-on-read`) */
  hashOnRead?: boolean
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

/** The provider's public HTTP API (docs/protocol.md). */
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
  }, { hashOnRead: options.hashOnRead })
  router.on(['GET', 'HEAD'], '/ipfs/:cid/*path', retrieval(gateway))
  router.on(['GET', 'HEAD'], '/piece/:pieceCid', retrieval(pieceHandler(options.pieces, (bytes) => { retrieved('piece', bytes) })))

  options.routes?.(router, { limits, log, metrics })

  return createHttpService({ router, limits, log, metrics })
}
