/**
 * `GET`/`HEAD /piece/{pieceCid}`: the stored piece bytes with single-range HTTP
 * Range support (RFC 9110 §14), the booster-http convention for piece
 * retrieval. The client checks the bytes against the piece CID itself.
 */
import { once } from 'node:events'
import type { FileHandle } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { CID } from 'multiformats/cid'
import { parsePieceCid, parsePieceCidV1 } from '../../proofs/index.js'
import { FIL_COMMITMENT_UNSEALED } from '../codecs.js'
import { CairnError } from '../errors.js'
import type { Context } from '../http/server.js'
import type { PieceSource } from './interface.js'
import { IMMUTABLE } from '../gateway/gateway.js'
import { buffers } from '../fs/pool.js'

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

/**
 * Piece bytes are read in slices of this size. A slice is one positional read
 * and one socket write; small enough that a thousand responses at once hold
 * little each, large enough that one response still moves a GiB in 4,096
 * reads.
 */
const SLICE = 256 * 1024
/**
 * Bytes read from piece files and not yet taken by the kernel, across all the
 * responses of one handler. Each response also waits for its socket to drain
 * before it writes again, but with a thousand responses at once that alone
 * let a slice per response sit in memory: 1,000 concurrent 1 MiB Range GETs
 * (1 MiB reads, one per response) took the provider's peak RSS to 450–650 MiB.
 */
const IN_FLIGHT = 64 * 1024 * 1024

/** A first-come, first-served count of bytes that responses take before a read and give back once written. */
export class ByteBudget {
  #free: number
  readonly #waiting: Array<{ bytes: number, grant: () => void }> = []

  constructor (readonly limit: number) { this.#free = limit }

  get free (): number { return this.#free }

  /** Resolves once `bytes` (at most `limit`) are available; rejects, taking nothing, if `signal` aborts first. */
  async take (bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes > this.limit) throw new RangeError(`cannot take ${bytes} bytes of a budget of ${this.limit}`)
    if (this.#waiting.length === 0 && this.#free >= bytes) {
      this.#free -= bytes
      return
    }
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        bytes,
        grant: () => { signal?.removeEventListener('abort', abort); resolve() }
      }
      const abort = (): void => {
        const i = this.#waiting.indexOf(waiter)
        if (i >= 0) this.#waiting.splice(i, 1)
        reject(signal?.reason)
        // a large waiter leaving may let smaller ones behind it through
        this.give(0)
      }
      signal?.addEventListener('abort', abort, { once: true })
      this.#waiting.push(waiter)
    })
  }

  give (bytes: number): void {
    this.#free += bytes
    while (this.#waiting.length > 0 && this.#free >= (this.#waiting[0] as { bytes: number }).bytes) {
      const next = this.#waiting.shift() as { bytes: number, grant: () => void }
      this.#free -= next.bytes
      next.grant()
    }
  }
}

/**
 * Streams [start, end] of `file` into `res` in slices: each slice takes its
 * bytes from `budget` before it is read and gives them back once the socket
 * has written it (or the response is gone). The next slice is read while the
 * socket drains the last one, so one response keeps the disk and the socket
 * busy together.
 */
async function streamSlices (file: FileHandle, start: number, end: number, res: ServerResponse, budget: ByteBudget, signal: AbortSignal): Promise<void> {
  /** slices read and not yet given back to the budget */
  const held = new Set<Slice>()
  const giveBack = (slice: Slice): boolean => {
    if (!held.delete(slice)) return false
    budget.give(slice.buffer.byteLength)
    return true
  }
  // a response cut off may never call its writes' callbacks: what it holds goes back when it closes
  // (its buffers are then left to the collector, since the socket may have been writing them)
  res.once('close', () => { for (const slice of [...held]) giveBack(slice) })
  const read = async (at: number): Promise<Slice> => {
    const bytes = Math.min(SLICE, end + 1 - at)
    await budget.take(bytes, signal)
    const slice = { buffer: buffers.alloc(bytes) }
    held.add(slice)
    try {
      for (let got = 0; got < bytes;) {
        const { bytesRead } = await file.read(slice.buffer, got, bytes - got, at + got)
        if (bytesRead === 0) throw new CairnError('ERR_IO', `piece file ended at ${at + got} bytes, before the ${end + 1} it was opened with`)
        got += bytesRead
      }
    } catch (err) {
      if (giveBack(slice)) buffers.release(slice.buffer)
      throw err
    }
    return slice
  }
  let next: Promise<Slice> | undefined = read(start)
  try {
    for (let at = start; next !== undefined;) {
      const slice: Slice = await next
      next = undefined
      at += slice.buffer.byteLength
      // given back once the socket has written it
      const ok = res.write(slice.buffer, () => { if (giveBack(slice)) buffers.release(slice.buffer) })
      if (at <= end) {
        next = read(at)
        next.catch(() => {})
      }
      if (!ok) await once(res, 'drain', { signal })
    }
    res.end()
  } finally {
    // a read still in flight when the response failed finishes before its file is closed
    const pending = await next?.catch(() => undefined)
    if (pending !== undefined && giveBack(pending)) buffers.release(pending.buffer)
  }
}

interface Slice { buffer: Buffer }

export function pieceHandler (source: PieceSource, onServed?: (bytes: number) => void, options: { budget?: ByteBudget } = {}) {
  const budget = options.budget ?? new ByteBudget(IN_FLIGHT)
  return async function handle ({ req, res, params, signal }: Context): Promise<void> {
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
      if (piece.openFile === undefined) {
        await pipeline(piece.createReadStream(start, end), res)
      } else {
        const file = await piece.openFile()
        try {
          await streamSlices(file, start, end, res, budget, signal)
        } finally {
          await file.close()
        }
      }
      onServed?.(length)
    } catch {
      res.destroy()
    }
  }
}
