/**
 * Reading a piece from the node that holds it. In a cluster any node serves
 * any piece (`/piece`, `/ipfs`; proofs are asked of a holder instead,
 * ./proofs.ts); a node that lacks one locally reads
 * it from a node that has it, over an internal endpoint that only the
 * cluster's nodes can use (src/cluster/auth.ts):
 *
 *   GET /internal/v1/pieces/{pieceCid}   Range: bytes=a-b   (signed headers)
 *
 * It answers as `/piece` does — 200 or 206 with Content-Range, 404, 416 —
 * but for any piece the node's store holds, whatever its deal's state, since
 * copies between nodes happen before a deal is served (docs/cluster.md).
 */
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { request } from '../lazy/undici.js'
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { providerError } from '../client/provider-client.js'
import type { Handler } from '../http/server.js'
import type { PieceSource } from '../provider/interface.js'
import { pieceHandler } from '../provider/piece.js'
import { signClusterRequest, type ClusterAuth } from './auth.js'

/** Where a node mounts the endpoint on its listener. */
export const INTERNAL_PIECE_ROUTE = '/internal/v1/pieces/:pieceCid'

/** The endpoint's handler: the request's signature checked first, then `/piece`'s Range handling over `pieces`. */
export function internalPieceHandler (options: { auth: ClusterAuth, pieces: PieceSource }): Handler {
  const serve = pieceHandler(options.pieces)
  return async (ctx) => {
    options.auth.verify({ method: ctx.req.method ?? 'GET', path: ctx.req.url ?? '', range: ctx.req.headers.range }, ctx.req.headers)
    await serve(ctx)
  }
}

export interface RemotePiece {
  /** bytes in the whole piece file */
  size: number
  /** the inclusive range the body holds */
  start: number
  end: number
  body: Readable & AsyncIterable<Uint8Array>
}

export interface ReadRemoteOptions {
  /** the cluster's secret and this node's name, which sign the request */
  secret: Uint8Array
  node: string
  /** inclusive byte range; the whole piece when left out */
  range?: { start: number, end?: number }
  signal?: AbortSignal
  /** time to connect and get the headers, and longest silence in the body, ms (default 30 s each) */
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
  dispatcher?: Dispatcher
}

/** Streams a piece (or a range of it) from the node at `nodeUrl`. The caller checks the bytes if it needs to. */
export async function readRemotePiece (nodeUrl: string, pieceCid: CID | string, options: ReadRemoteOptions): Promise<RemotePiece> {
  const base = nodeUrl.replace(/\/+$/, '')
  const path = `/internal/v1/pieces/${pieceCid.toString()}`
  const range = options.range === undefined ? undefined : `bytes=${options.range.start}-${options.range.end ?? ''}`
  const headers = signClusterRequest(options.secret, options.node, { method: 'GET', path, range })
  if (range !== undefined) headers.range = range
  let res: Dispatcher.ResponseData
  try {
    res = await request(base + path, {
      method: 'GET',
      headers,
      signal: options.signal,
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      bodyTimeout: options.bodyTimeoutMs ?? 30_000,
      dispatcher: options.dispatcher
    })
  } catch (err) {
    throw networkError(base, err)
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    const text = await res.body.text().catch(() => '')
    throw providerError(base, res.statusCode, text)
  }
  const length = Number(res.headers['content-length'])
  if (res.statusCode === 200) {
    return { size: length, start: 0, end: length - 1, body: res.body }
  }
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))
  if (m === null) {
    res.body.destroy()
    throw new CairnError('ERR_BAD_REQUEST', `node ${base} answered 206 without a valid Content-Range`)
  }
  return { size: Number(m[3]), start: Number(m[1]), end: Number(m[2]), body: res.body }
}

function networkError (url: string, err: unknown): CairnError {
  if (err instanceof CairnError) return err
  const e = err as { code?: string, name?: string, message?: string, cause?: { code?: string } }
  const code = e.code ?? e.cause?.code ?? e.name ?? 'error'
  if (/TIMEOUT/i.test(code) || e.name === 'TimeoutError') return new CairnError('ERR_TIMEOUT', `node ${url} did not answer in time (${code})`, { cause: err })
  return new CairnError('ERR_UNREACHABLE', `cannot reach node ${url}: ${code}`, { cause: err })
}
