/**
 * What every PDP route shares (docs/pdp.md): the piece registry, the upload
 * sessions, the server's limits, and the small checks of their inputs.
 */
import type { IncomingMessage } from 'node:http'
import type { CID } from 'multiformats/cid'
import { parsePieceCid, type PieceLink } from '../../proofs/index.js'
import { CairnError } from '../errors.js'
import type { UploadLimits } from '../http/server.js'
import type { Logger } from '../provider/interface.js'
import type { Metrics } from '../provider/metrics.js'
import type { ServerLimits } from '../provider/server.js'
import { MAX_PIECE_BYTES, MIN_PIECE_BYTES, type PdpPieces } from './pieces.js'
import type { UploadSessions } from './uploads.js'

export interface PdpDeps {
  pieces: PdpPieces
  sessions: UploadSessions
  limits: ServerLimits
  log: Logger
  metrics: Metrics
}

/**
 * Who parks an upload, for the per-client quota: synapse-core's uploads carry no
 * identity, so the remote address stands in (docs/pdp.md "Parked pieces").
 */
export function clientOf (req: IncomingMessage): string {
  return `ip:${req.socket.remoteAddress ?? 'unknown'}`
}

export function uploadLimitsOf (limits: ServerLimits): UploadLimits {
  return { idleTimeoutMs: limits.idleTimeoutMs, minBytesPerSecond: limits.minUploadBytesPerSecond, windowMs: limits.uploadRateWindowMs }
}

/** A piece CID v2 from a JSON body or query (Curio takes only v2 there), as ERR_INVALID_CID when it is not one. */
export function pieceCidV2 (value: unknown, label: string): PieceLink {
  if (typeof value !== 'string' || value.length > 200) throw new CairnError('ERR_INVALID_CID', `${label} must be a piece CID v2 (bafkzcib…), got ${JSON.stringify(value)?.slice(0, 120)}`)
  try {
    return parsePieceCid(value)
  } catch (err) {
    throw new CairnError('ERR_INVALID_CID', `${label}: ${(err as Error).message}`)
  }
}

/**
 * The `pieceCid` of a JSON body. Other fields (Curio's `notify`, whatever a
 * newer client adds) are ignored, as Curio's JSON decoding ignores them.
 */
export function pieceCidOfBody (body: unknown): PieceLink {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_JSON', 'expected a JSON object with a pieceCid')
  return pieceCidV2((body as { pieceCid?: unknown }).pieceCid, 'pieceCid')
}

/** Refuses a piece whose declared payload size is outside Curio's limits. */
export function checkPieceSize (link: PieceLink): number {
  if (link.payloadSize < BigInt(MIN_PIECE_BYTES)) throw new CairnError('ERR_UPLOAD_TOO_SMALL', `piece ${link.cid.toString()} has ${link.payloadSize} bytes; a piece is at least ${MIN_PIECE_BYTES} bytes`)
  if (link.payloadSize > BigInt(MAX_PIECE_BYTES)) throw new CairnError('ERR_PAYLOAD_TOO_LARGE', `piece ${link.cid.toString()} has ${link.payloadSize} bytes; the largest piece taken is ${MAX_PIECE_BYTES} bytes`)
  return Number(link.payloadSize)
}

/** A declared Content-Length, or undefined for a chunked body; ERR_CONTENT_LENGTH when it is not a number, ERR_PAYLOAD_TOO_LARGE over `max`. */
export function contentLength (req: IncomingMessage, max: number): number | undefined {
  const declared = req.headers['content-length']
  if (declared === undefined) return undefined
  if (!/^\d{1,16}$/.test(declared)) throw new CairnError('ERR_CONTENT_LENGTH', `Content-Length must be a whole number of bytes, got ${JSON.stringify(declared)}`)
  const length = Number(declared)
  if (length > max) throw new CairnError('ERR_PAYLOAD_TOO_LARGE', `upload of ${length} bytes is over the limit of ${max} bytes`)
  return length
}

export function pieceBody (cid: CID): { pieceCid: string } {
  return { pieceCid: cid.toString() }
}
