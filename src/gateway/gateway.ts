/**
 * `GET`/`HEAD /ipfs/{cid}[/path]`: the IPFS Trustless Gateway over a
 * BlockSource. Raw blocks (`application/vnd.ipld.raw`) and CAR streams
 * (`application/vnd.ipld.car; version=1; order=dfs; dups=y|n`) only: the client
 * verifies everything it receives, so nothing here needs to be trusted.
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { base32 } from 'multiformats/bases/base32'
import { CairnError } from '../errors.js'
import { DagVerifier, encodeFrame, encodeHeader, inlined, passVerified } from '../car/index.js'
import { buffers } from '../fs/pool.js'
import type { BlockSource, PieceHandle } from './interface.js'
import type { Context } from '../http/server.js'
import { CAR, RAW, parseGatewayRequest, type GatewayRequest } from './request.js'
import type { Block, ByteRange, Load } from '../unixfs/interface.js'
import { resolvePath } from '../unixfs/reader.js'
import { entitySize, resolveEntityBytes, walk } from './traverse.js'

/** Content addressed by CID never changes (path-gateway spec, `Cache-Control`). */
export const IMMUTABLE = 'public, max-age=29030400, immutable'

export interface GatewayEvents {
  retrieval? (kind: 'block' | 'car', bytes: number): void
  /** A CAR stream cut short after its headers were sent (a block went missing). */
  aborted? (err: Error): void
}

export interface GatewayOptions {
  /**
   * Hash every raw leaf of a stored CAR streamed whole, as well as its inner
   * nodes (kubo's `Datastore.HashOnRead`). Default false: pieces are verified
   * on ingest and the client verifies every block it receives, so a leaf
   * rotted on disk reaches the client as a hash mismatch, never as accepted
   * data; the re-hash only tells the provider itself (docs/protocol.md "Retrieval").
   */
  hashOnRead?: boolean
}

/** The Etag of a CAR response: the root and a digest of everything that shapes the body (as boxo does). */
function carEtag (req: Extract<GatewayRequest, { format: 'car' }>): string {
  const shape = [req.path.join('/'), req.scope, req.dups ? 'dups=y' : 'dups=n', 'order=dfs',
    req.entityBytes === undefined ? '' : `${req.entityBytes.from}:${req.entityBytes.to}`].join('\n')
  const digest = createHash('sha256').update(shape).digest().subarray(0, 8)
  return `W/"${req.cid.toString()}.car.${base32.baseEncode(digest)}"`
}

function etagMatches (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const weak = (t: string): string => t.trim().replace(/^W\//, '')
  return header.split(',').some((t) => t.trim() === '*' || weak(t) === weak(etag))
}

async function write (res: ServerResponse, chunk: Uint8Array, signal: AbortSignal): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain', { signal })
}

/**
 * The stored CAR to stream whole, when it is byte for byte the response the
 * walk would produce: the whole DAG of a root (no path, dag-scope=all, no
 * entity-bytes) without duplicates, from a piece checked at upload to be its
 * DFS CAR, under the same header.
 */
async function wholeDag (source: BlockSource, request: Extract<GatewayRequest, { format: 'car' }>, scope: string, range: ByteRange | undefined): Promise<PieceHandle | undefined> {
  if (source.dag === undefined || request.path.length > 0 || scope !== 'all' || request.dups || request.entityBytes !== undefined || range !== undefined) return undefined
  const whole = await source.dag(request.cid)
  if (whole === undefined) return undefined
  const header = encodeHeader([request.cid])
  if (whole.size < header.length) return undefined
  const stored = new Uint8Array(header.length)
  let at = 0
  for await (const chunk of whole.createReadStream(0, header.length - 1) as AsyncIterable<Uint8Array>) {
    stored.set(chunk.subarray(0, header.length - at), at)
    at += chunk.length
  }
  return at === header.length && Buffer.from(stored).equals(header) ? whole : undefined
}

/** Bytes of a read of the stored CAR, 1 MiB at a time. */
const READ = 1024 * 1024
const READS_AHEAD = 3

/**
 * The stored CAR's bytes in 1 MiB positional reads into the buffer pool, when
 * the piece is a file: a fresh 1 MiB buffer per read (a read stream's) costs
 * this kind of VM a page-faulted mapping each time (docs/performance.md).
 * `ends(chunk)` says whether a slice let out holds a read's last byte, after
 * which nothing else refers to that buffer.
 */
async function pieceBytes (whole: PieceHandle): Promise<{ chunks: AsyncIterable<Uint8Array>, ends: (chunk: Uint8Array) => boolean, close: () => Promise<void> }> {
  if (whole.openFile === undefined) {
    return { chunks: whole.createReadStream(0, whole.size - 1) as AsyncIterable<Uint8Array>, ends: () => false, close: async () => {} }
  }
  const file = await whole.openFile()
  const filled = new WeakMap<ArrayBufferLike, number>()
  // READS_AHEAD reads in flight, so that the disk works while the last read's blocks are hashed and sent
  const reads: Array<Promise<{ buffer: Buffer, bytesRead: number }>> = []
  let next = 0
  const ahead = (): void => {
    while (reads.length < READS_AHEAD && next < whole.size) {
      const buffer = buffers.alloc(Math.min(READ, whole.size - next))
      const read = file.read(buffer, 0, buffer.byteLength, next).then(({ bytesRead }) => ({ buffer, bytesRead }))
      // awaited in order below; a stream stopped early leaves the rest unread
      read.catch(() => {})
      reads.push(read)
      next += buffer.byteLength
    }
  }
  async function * chunks (): AsyncGenerator<Uint8Array> {
    for (;;) {
      ahead()
      const read = reads.shift()
      if (read === undefined) return
      const { buffer, bytesRead } = await read
      if (bytesRead === 0) return
      filled.set(buffer.buffer, buffer.byteOffset + bytesRead)
      yield buffer.subarray(0, bytesRead)
      // a short read (the file shrank): what follows would not continue it, and the walk misses the rest
      if (bytesRead < buffer.byteLength) return
    }
  }
  return {
    chunks: chunks(),
    ends: (chunk) => filled.get(chunk.buffer) === chunk.byteOffset + chunk.byteLength,
    close: async () => {
      // reads still in flight finish before the file closes
      await Promise.allSettled(reads)
      await file.close()
    }
  }
}

export function gatewayHandler (source: BlockSource, events: GatewayEvents = {}, options: GatewayOptions = {}) {
  const trustRawLeaves = options.hashOnRead !== true
  const load: Load = async (cid) => {
    const bytes = inlined(cid) ?? await source.get(cid)
    if (bytes === undefined) throw new CairnError('ERR_BLOCK_NOT_FOUND', `block ${cid.toString()} is not held by this provider`)
    return bytes
  }

  return async function handle (ctx: Context): Promise<void> {
    const { req, res, url, params, signal } = ctx
    const request = parseGatewayRequest(params.cid ?? '', params.path ?? '', req.headers.accept, url.searchParams)
    const head = req.method === 'HEAD'
    const etag = request.format === 'raw' ? `"${request.cid.toString()}.raw"` : carEtag(request)
    const common: Record<string, string> = {
      Etag: etag,
      'Cache-Control': IMMUTABLE,
      'X-Content-Type-Options': 'nosniff',
      'X-Ipfs-Path': url.pathname,
      Vary: 'Accept'
    }

    const rootBytes = inlined(request.cid) ?? await source.get(request.cid)
    if (rootBytes === undefined) {
      // path-gateway spec: only-if-cached asks "do you have it right now?"
      if (/\bonly-if-cached\b/i.test(req.headers['cache-control'] ?? '')) {
        throw new CairnError('ERR_PRECONDITION_FAILED', `${request.cid.toString()} is not held here`)
      }
      throw new CairnError('ERR_NOT_FOUND', `${request.cid.toString()} is not held by this provider`)
    }
    if (etagMatches(req.headers['if-none-match'], etag)) {
      res.writeHead(304, common)
      res.end()
      return
    }

    if (request.format === 'raw') {
      res.writeHead(200, {
        ...common,
        'Content-Type': RAW,
        'Content-Length': String(rootBytes.length),
        'Content-Disposition': `attachment; filename="${request.cid.toString()}.bin"`
      })
      if (head) { res.end(); return }
      res.end(rootBytes)
      events.retrieval?.('block', rootBytes.length)
      return
    }

    // Everything that can fail with a status is settled before the headers go out.
    const root: Block = { cid: request.cid, bytes: rootBytes }
    const { pathBlocks, terminal } = await resolvePath(root, request.path, load)
    let range: ByteRange | undefined
    let scope = request.scope
    if (request.entityBytes !== undefined) {
      const size = entitySize(terminal)
      if (size !== undefined) {
        range = resolveEntityBytes(request.entityBytes, size)
        if (range === undefined) {
          // the spec: a range wholly outside the entity, known up front, is a 400
          const { from, to } = request.entityBytes
          if (size > 0 && from >= size) throw new CairnError('ERR_INVALID_ARGUMENT', `entity-bytes ${from}:${to} starts past the end of a ${size}-byte file`)
          scope = 'block'
        }
      }
    }

    const whole = await wholeDag(source, request, scope, range)

    res.writeHead(200, {
      ...common,
      'Content-Type': `${CAR}; version=1; order=dfs; dups=${request.dups ? 'y' : 'n'}`,
      'Content-Disposition': `attachment; filename="${request.cid.toString()}.car"`,
      'X-Ipfs-Roots': [...pathBlocks.map((b) => b.cid.toString()), terminal.cid.toString()].join(',')
    })
    if (head) { res.end(); return }

    let sent = 0
    try {
      if (whole !== undefined) {
        // the stored CAR (header included) is this very response: its bytes go out as read, each
        // frame still checked (its CID in its DFS place, inner nodes hashed) before it is let out,
        // so a changed node or a broken frame cuts the stream as a missing block does; raw leaves
        // are hashed too only with hashOnRead (the client hashes them anyway)
        const verifier = new DagVerifier(request.cid, { order: 'dfs' })
        const read = await pieceBytes(whole)
        try {
          for await (const batch of passVerified(read.chunks, { verifier, trustRawLeaves })) {
            res.cork()
            let room = true
            for (const chunk of batch) {
              // a read buffer goes back to the pool once its last byte is written
              const ends = read.ends(chunk)
              room = ends ? res.write(chunk, () => buffers.release(chunk)) : res.write(chunk)
              sent += chunk.byteLength
            }
            res.uncork()
            if (!room) await once(res, 'drain', { signal })
          }
        } finally {
          await read.close()
        }
        res.end()
        events.retrieval?.('car', sent)
        return
      }
      const header = encodeHeader([request.cid])
      await write(res, header, signal)
      sent += header.length
      const seen = new Set<string>()
      for (const block of pathBlocks) {
        const key = block.cid.toString()
        if (!request.dups && seen.has(key)) continue
        seen.add(key)
        const frame = encodeFrame(block.cid, block.bytes)
        await write(res, frame, signal)
        sent += frame.length
      }
      for await (const block of walk(terminal, { scope, range, dups: request.dups }, load, seen)) {
        const frame = encodeFrame(block.cid, block.bytes)
        await write(res, frame, signal)
        sent += frame.length
      }
      res.end()
      events.retrieval?.('car', sent)
    } catch (err) {
      // the spec ("Streaming and Missing Child Blocks"): the status is already 200,
      // so the stream is cut and the client sees an incomplete CAR
      events.aborted?.(err as Error)
      res.destroy()
    }
  }
}
