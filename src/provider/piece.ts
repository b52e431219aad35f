/**
 * `GET`/`HEAD /piece/{pieceCid}`: the stored piece bytes with single-range HTTP
 * Range support (RFC 9110 §14), the booster-http convention for piece
 * retrieval. The client checks the bytes against the piece CID itself.
 */
import { pipeline } from 'node:stream/promises'
import { CID } from 'multiformats/cid'
import { parsePieceCid, parsePieceCidV1 } from '../../proofs/index.js'
import { FIL_COMMITMENT_UNSEALED } from '../codecs.js'
import { CairnError } from '../errors.js'
import type { Context } from '../http/server.js'
import type { PieceSource } from './interface.js'
import { IMMUTABLE } from '../gateway/gateway.js'

/** A piece CID v2 (FRC-0069) or a legacy v1, as proofs/ checks them; anything else is ERR_INVALID_CID. */
export function parsePieceCidParam (text: string): CID {
  let cid: CID
  try { cid = CID.parse(text) } catch {
    throw new CairnError('ERR_INVALID_CID', `not a valid piece CID: ${JSON.stringify(text.slice(0, 120))}`)
  }
  try {
    return cid.code === FIL_COMMITMENT_UNSEALED ? parsePieceCidV1(cid) : parsePieceCid(cid).cid
  } catch (err) {
    throw new CairnError('ERR_INVALID_CID', `${text} is not a piece CID (expected bafkzcib… v2 or baga6ea4sea… v1): ${(err as Error).message}`, { cause: err })
  }
}

export type ParsedRange = { start: number, end: number } | 'unsatisfiable' | undefined

/**
 * One `bytes=` range against a resource of `size` bytes. Several ranges are
 * answered with the whole resource, as RFC 9110 §14.2 permits ignoring Range.
 */
export function parseRange (header: string | undefined, size: number): ParsedRange {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null) return undefined
  const [, a, b] = m as unknown as [string, string, string]
  if (a === '' && b === '') return undefined
  if (a === '') {
    const suffix = Number(b)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(a)
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (b !== '' && Number(b) < start) return undefined
  if (start >= size) return 'unsatisfiable'
  return { start, end }
}

export function pieceHandler (source: PieceSource, onServed?: (bytes: number) => void) {
  return async function handle ({ req, res, params }: Context): Promise<void> {
    const cid = parsePieceCidParam(params.pieceCid ?? '')
    const piece = await source.open(cid)
    if (piece === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${cid.toString()} is not held by this provider`)
    const headers: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/piece',
      Etag: `"${cid.toString()}"`,
      'Cache-Control': IMMUTABLE,
      'X-Content-Type-Options': 'nosniff'
    }
    const range = parseRange(req.headers.range, piece.size)
    if (range === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${piece.size}`)
      throw new CairnError('ERR_RANGE_NOT_SATISFIABLE', `range ${req.headers.range ?? ''} is outside the piece of ${piece.size} bytes`)
    }
    const start = range?.start ?? 0
    const end = range?.end ?? piece.size - 1
    const length = piece.size === 0 ? 0 : end - start + 1
    if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${end}/${piece.size}`
    headers['Content-Length'] = String(length)
    res.writeHead(range === undefined ? 200 : 206, headers)
    if (req.method === 'HEAD' || length === 0) { res.end(); return }
    try {
      await pipeline(piece.createReadStream(start, end), res)
      onServed?.(length)
    } catch {
      res.destroy()
    }
  }
}
