/**
 * The small HTTP toolkit the provider's routes share: a method + path router,
 * coded error responses (`{"error": {"code", "message"}}`, docs/protocol.md), bounded
 * JSON bodies and a guard that cuts off stalled or too-slow uploads.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import * as dagJSON from '@ipld/dag-json'
import { CairnError, codes, isCairnError, type ErrorCode } from '../errors.js'
import { checkDeclared, readBounded, type BoundedBody } from './body.js'

/** HTTP statuses of codes whose kind alone does not say enough. */
const statusOverrides: Partial<Record<ErrorCode, number>> = {
  ERR_INTERNAL: 500,
  ERR_IO: 500,
  ERR_NO_SPACE: 507,
  ERR_NOT_IMPLEMENTED: 501,
  ERR_UNAUTHORIZED: 401,
  ERR_PERMISSION_DENIED: 403,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_NOT_ACCEPTABLE: 406,
  ERR_TIMEOUT: 408,
  ERR_UPLOAD_TOO_SLOW: 408,
  ERR_LENGTH_REQUIRED: 411,
  ERR_PRECONDITION_FAILED: 412,
  ERR_INVALID_MESSAGE: 400,
  ERR_UPLOAD_IN_PROGRESS: 409,
  ERR_DEAL_STATE: 409,
  ERR_DEAL_EXPIRED: 410,
  ERR_REPLAYED_DEAL: 409,
  ERR_REPLAYED_NONCE: 409,
  ERR_AD_CHAIN_GAP: 409,
  ERR_PAYLOAD_TOO_LARGE: 413,
  // the PDP API's statuses (Curio's pdp/handlers_upload.go; docs/pdp.md)
  ERR_UPLOAD_DONE: 409,
  ERR_UPLOAD_PENDING: 409,
  ERR_PIECE_CID_MISMATCH: 400,
  ERR_PARK_QUOTA: 429,
  ERR_PARK_QUOTA_CLIENT: 429,
  ERR_TOO_MANY_UPLOADS: 429,
  ERR_REPLAYED_DATA_SET: 409,
  // another cluster node's write got in first, every time it was run again: the client may send it again
  ERR_STATE_CHANGED: 409,
  ERR_DATA_SET_TERMINATED: 409,
  ERR_NO_PAYEE: 503,
  ERR_PULL_FAILED: 502,
  ERR_RANGE_NOT_SATISFIABLE: 416,
  ERR_HEADERS_TOO_LARGE: 431,
  ERR_RATE_LIMITED: 429,
  ERR_SHUTTING_DOWN: 503,
  ERR_TOO_MANY_CONNECTIONS: 503,
  ERR_UNREACHABLE: 503
}

const statusByKind = {
  internal: 500,
  usage: 400,
  verification: 422,
  notFound: 404,
  refused: 403
} as const

/** The HTTP status a coded error is answered with. */
export function httpStatusOf (code: string): number {
  if (!Object.hasOwn(codes, code)) return 500
  return statusOverrides[code as ErrorCode] ?? statusByKind[codes[code as ErrorCode]]
}

export interface Context {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  params: Record<string, string>
  /** Aborted when the client disconnects or the server stops. */
  signal: AbortSignal
}

export type Handler = (ctx: Context) => Promise<void> | void

interface Route {
  path: string
  method: string
  pattern: RegExp
  names: string[]
  handler: Handler
}

/**
 * Routes by method and a path pattern such as `/v1/deals/:id/piece`; a trailing
 * `*name` captures the rest of the path (used by `/ipfs/:cid/*path`).
 */
export class Router {
  private readonly routes: Route[] = []

  on (methods: string | string[], path: string, handler: Handler): this {
    const names: string[] = []
    const source = path.split('/').map((part) => {
      if (part.startsWith(':')) { names.push(part.slice(1)); return '([^/]+)' }
      if (part.startsWith('*')) { names.push(part.slice(1)); return '?(.*)' }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    }).join('/')
    const pattern = new RegExp(`^${source}$`)
    for (const method of Array.isArray(methods) ? methods : [methods]) this.routes.push({ path, method, pattern, names, handler })
    return this
  }

  /** The handler for a request, or a coded 404/405. */
  match (method: string, pathname: string): { handler: Handler, params: Record<string, string>, route: string } {
    let pathMatched = false
    for (const route of this.routes) {
      const m = route.pattern.exec(pathname)
      if (m === null) continue
      pathMatched = true
      if (route.method !== method) continue
      const params: Record<string, string> = {}
      route.names.forEach((name, i) => { params[name] = m[i + 1] ?? '' })
      return { handler: route.handler, params, route: route.path }
    }
    if (pathMatched) throw new CairnError('ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}`)
    throw new CairnError('ERR_NOT_FOUND', `no such endpoint: ${method} ${pathname}`)
  }
}

export function sendJSON (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(dagJSON.stringify(value))
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(body.length),
    'X-Content-Type-Options': 'nosniff',
    ...headers
  })
  res.end(body)
}

/** The JSON body of a coded error, as the client side parses it. */
export function errorBody (err: CairnError): { error: { code: string, message: string, details?: Record<string, unknown> } } {
  return { error: err.toJSON() }
}

/** Answers with a coded error if the response can still carry one, else cuts the connection. */
export function sendError (res: ServerResponse, err: CairnError, closeConnection = false): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = Buffer.from(JSON.stringify(errorBody(err), (_k, v) => typeof v === 'bigint' ? v.toString() : v))
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(body.length),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store'
  }
  if (closeConnection) headers.Connection = 'close'
  res.writeHead(httpStatusOf(err.code), headers)
  res.end(body)
}

/** A thrown value as a coded error: CairnErrors as they are, anything else internal. */
export function toCairnError (err: unknown): CairnError {
  if (isCairnError(err)) return err
  return new CairnError('ERR_INTERNAL', 'internal error', { cause: err })
}

/**
 * Reads a DAG-JSON body of at most `limit` bytes (docs/protocol.md: JSON bodies are
 * DAG-JSON) within `deadlineMs` (a floor on its rate: a body sent a byte at a
 * time is cut off, ERR_TIMEOUT). A declared or actual size over the limit is
 * ERR_PAYLOAD_TOO_LARGE; a client that goes away mid-body ERR_CLIENT_ABORTED.
 */
export async function readJSONBody (req: IncomingMessage, limit: number, deadlineMs = 10_000): Promise<unknown> {
  const type = req.headers['content-type']
  let size = 0
  const bounds: BoundedBody = {
    limit,
    declared: req.headers['content-length'],
    tooLarge: (length) => new CairnError('ERR_PAYLOAD_TOO_LARGE', length === undefined ? `JSON body is over the limit of ${limit} bytes` : `JSON body is ${length} bytes; the limit is ${limit} bytes`),
    progress: (n) => { size = n }
  }
  checkDeclared(bounds)
  if (type !== undefined && !/^application\/(json|vnd\.ipld\.dag-json)\b/i.test(type)) {
    throw new CairnError('ERR_BAD_REQUEST', `expected Content-Type application/json or application/vnd.ipld.dag-json, got ${type}`)
  }
  const reading = readBounded(req, bounds)
  // what is still being read when the deadline passes is dropped with the connection (the caller closes it)
  reading.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  let bytes: Uint8Array = new Uint8Array(0)
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new CairnError('ERR_TIMEOUT', `JSON body not received within ${deadlineMs} ms (${size} bytes came)`)) }, deadlineMs)
  })
  try {
    bytes = await Promise.race([reading, late])
  } catch (err) {
    if (isCairnError(err)) throw err
    throw new CairnError('ERR_CLIENT_ABORTED', `the client went away after ${size} bytes of its body`, { details: { received: size } })
  } finally {
    clearTimeout(timer)
  }
  if (bytes.length === 0) throw new CairnError('ERR_INVALID_JSON', 'expected a JSON body, got an empty one')
  try {
    return dagJSON.decode(bytes)
  } catch (err) {
    throw new CairnError('ERR_INVALID_JSON', `body is not valid DAG-JSON: ${(err as Error).message}`)
  }
}

export interface UploadLimits {
  /** No byte for this long cuts the upload off (ERR_TIMEOUT). */
  idleTimeoutMs: number
  /** Bytes per second the upload must average over each window (ERR_UPLOAD_TOO_SLOW). */
  minBytesPerSecond: number
  windowMs: number
}

/**
 * Passes an upload body through while enforcing its declared length and the
 * liveness limits (docs/protocol.md "Limits": slow or stalled clients are cut off). Fails with
 * a coded error instead of letting a client hold a transfer slot forever.
 */
export class UploadGuard extends Transform {
  private received = 0
  private windowStart = Date.now()
  private windowBytes = 0
  private lastByte = Date.now()
  private readonly timer: NodeJS.Timeout

  /**
   * `exact`: the body must be `expected` bytes (its Content-Length). `at-most`:
   * a body of unknown length (chunked) may be up to `expected` bytes, and fails
   * with ERR_PAYLOAD_TOO_LARGE the moment it passes them.
   */
  constructor (private readonly expected: number, private readonly limits: UploadLimits, private readonly mode: 'exact' | 'at-most' = 'exact') {
    super()
    const tick = Math.max(10, Math.min(1000, limits.idleTimeoutMs / 4, limits.windowMs / 4))
    this.timer = setInterval(() => this.check(), tick)
    this.timer.unref()
  }

  get bytes (): number { return this.received }

  private check (): void {
    const now = Date.now()
    if (now - this.lastByte >= this.limits.idleTimeoutMs) {
      this.fail(new CairnError('ERR_TIMEOUT', `upload stalled: no data for ${this.limits.idleTimeoutMs} ms after ${this.received} of ${this.expected} bytes`))
      return
    }
    const elapsed = now - this.windowStart
    if (elapsed >= this.limits.windowMs) {
      const rate = this.windowBytes * 1000 / elapsed
      if (rate < this.limits.minBytesPerSecond) {
        this.fail(new CairnError('ERR_UPLOAD_TOO_SLOW', `upload averaged ${Math.floor(rate)} bytes/s over ${elapsed} ms; the minimum is ${this.limits.minBytesPerSecond} bytes/s`))
        return
      }
      this.windowStart = now
      this.windowBytes = 0
    }
  }

  private fail (err: CairnError): void {
    clearInterval(this.timer)
    this.destroy(err)
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length
    this.windowBytes += chunk.length
    this.lastByte = Date.now()
    if (this.received > this.expected) {
      callback(this.mode === 'exact'
        ? new CairnError('ERR_CONTENT_LENGTH', `body runs past its Content-Length of ${this.expected} bytes`)
        : new CairnError('ERR_PAYLOAD_TOO_LARGE', `body passes the limit of ${this.expected} bytes`))
      return
    }
    callback(null, chunk)
  }

  override _flush (callback: TransformCallback): void {
    clearInterval(this.timer)
    if (this.mode === 'exact' && this.received !== this.expected) {
      callback(new CairnError('ERR_CONTENT_LENGTH', `body ended after ${this.received} bytes; Content-Length declared ${this.expected}`))
      return
    }
    callback()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    clearInterval(this.timer)
    callback(err)
  }
}

/**
 * A request body behind an UploadGuard, wired so that the client going away,
 * a stall, a too-slow client or the provider stopping each fail the body with
 * a code — and so that a guard nobody reads yet cannot crash the provider with
 * an unobserved 'error'. The caller reads the guard and, on failure, prefers
 * `guard.errored` (the truer account) to what its reader saw.
 */
export function guardedBody (ctx: Context, expected: number, limits: UploadLimits, mode: 'exact' | 'at-most' = 'exact'): UploadGuard {
  const { req, signal } = ctx
  const guard = new UploadGuard(expected, limits, mode)
  const cut = (): CairnError => new CairnError('ERR_CONTENT_LENGTH', mode === 'exact'
    ? `connection closed after ${guard.bytes} of ${expected} bytes`
    : `connection closed after ${guard.bytes} bytes, before the body ended`)
  guard.on('error', () => {})
  req.on('error', () => { guard.destroy(cut()) })
  req.on('close', () => { if (!req.complete && !guard.destroyed) guard.destroy(cut()) })
  signal.addEventListener('abort', () => {
    if (guard.destroyed) return
    const reason = toCairnError(signal.reason)
    guard.destroy(reason.code === 'ERR_SHUTTING_DOWN' || req.complete ? reason : cut())
  }, { once: true })
  // the guard answers a stall with ERR_TIMEOUT; the socket's own idle cut stays as a backstop behind it
  req.socket.setTimeout(limits.idleTimeoutMs + Math.max(1000, limits.idleTimeoutMs))
  req.pipe(guard)
  return guard
}
