/**
 * One HTTP/1.1 GET over plain `node:net` whose body is read straight into
 * pooled slabs (net's `onread`): the kernel copies each read into the slab
 * where the caller will parse, hash and write from it, and nothing else is
 * allocated per read. For `cairn get`'s whole-DAG CAR (src/client/retrieve.ts),
 * where every byte of a GiB passes through.
 *
 * Why by hand: undici and node:http allocate a fresh buffer for every read
 * and push it through a stream, a promise and an async iterator; for a 1 GiB
 * body on loopback that machinery cost more CPU than hashing every block
 * (docs/performance.md, "Retrieval, round six"), and the chunks, all fresh
 * memory, had to be copied into slabs anyway to be hashed off the main thread.
 * Neither lets a caller say where a read lands. The rest of the project's
 * HTTP stays on undici; this speaks only what one GET needs: a request
 * line and headers out, `Connection: close`, a status line and headers in,
 * and a body delimited by Content-Length, chunked coding or the close.
 *
 * The body comes as views of the slabs, in order; consecutive views of one
 * slab lie end to end (chunked coding's framing is squeezed out in place), so
 * a block inside one slab can be used where it lies. A slab goes back to the
 * pool when the caller says every byte before an offset is done with
 * (`release`); a caller that never says so leaves the slabs to the collector.
 * Failures carry undici's error codes (UND_ERR_HEADERS_TIMEOUT,
 * UND_ERR_BODY_TIMEOUT, UND_ERR_SOCKET, …), so the one mapping in
 * src/http/errors.ts turns them into ERR_TIMEOUT and ERR_UNREACHABLE alike.
 */
import { connect, type Socket } from 'node:net'
import { buffers } from '../fs/pool.js'

/** 4 MiB: a few 1 MiB leaves each. */
const SLAB_SIZE = 4 * 1024 * 1024
/** A slab with less room than this left is sealed and the next read goes to a new one. */
const MIN_READ = 64 * 1024
/** Body bytes read but not yet taken by the consumer before the socket is paused. */
const HIGH_WATER = 8 * 1024 * 1024
/** A status line and headers longer than this are no answer to a GET. */
const MAX_HEAD = 64 * 1024

export interface SlabGetOptions {
  headers?: Record<string, string>
  /** time to connect and receive the status line and headers, ms (default 30 s) */
  headersTimeoutMs?: number
  /** longest silence while the body streams, ms (default 30 s; 0: none) */
  bodyTimeoutMs?: number
  signal?: AbortSignal
  /** bytes per slab (default 4 MiB) */
  slabSize?: number
}

export interface SlabBody extends AsyncIterable<Uint8Array> {
  /** Every byte of the body before `offset` is done with: the slabs wholly before it go back to the pool. */
  release: (offset: number) => void
  /** Whether `bytes` is a view of one of the body's slabs (not yet given back). */
  holds: (bytes: Uint8Array) => boolean
  /** Ends the transfer; a consumer waiting gets `err`. */
  destroy: (err?: Error) => void
  readonly destroyed: boolean
}

export interface SlabResponse {
  statusCode: number
  /** header names lower-cased; repeated headers joined with ", " */
  headers: Record<string, string>
  body: SlabBody
}

/** A transfer failure, coded as undici codes it. */
export class TransferError extends Error {
  constructor (readonly code: string, message: string, name = 'SocketError') {
    super(message)
    this.name = name
  }
}

type Framing = { kind: 'length', left: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'none' }

/** GETs `url` (http: only); resolves once the status line and headers have come. */
export async function slabGet (url: string, options: SlabGetOptions = {}): Promise<SlabResponse> {
  const target = new URL(url)
  if (target.protocol !== 'http:') throw new TypeError(`slabGet speaks plain http only, not ${target.protocol}`)
  return await new Promise<SlabResponse>((resolve, reject) => {
    const transfer = new Transfer(target, options, resolve, reject)
    transfer.start()
  })
}

/** The slab being filled. */
interface Slab { bytes: Buffer, /** body offset of the slab's first body byte */ start: number, /** index of that byte */ first: number, /** index after its last body byte */ end: number }

/**
 * A slab filled: held weakly, so that the body's views are all that keep it
 * (a consumer that never calls `release` leaves it to the collector), until
 * `release` gives it back to the pool.
 */
interface Sealed { memory: WeakRef<ArrayBuffer>, /** body offset after its last byte */ end: number }

class Transfer {
  private socket: Socket | undefined
  private readonly slabSize: number
  private slab: Slab | undefined
  private readonly sealed: Sealed[] = []
  /** where the next read lands in the last slab */
  private pos = 0
  private phase: 'head' | 'body' | 'done' = 'head'
  private framing: Framing = { kind: 'none' }
  // chunked coding
  private chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size'
  private chunkLeft = 0
  private line = ''
  /** body bytes so far */
  private bodyBytes = 0
  /** views read, not yet taken */
  private readonly queue: Uint8Array[] = []
  private queued = 0
  private waiting: { resolve: () => void } | undefined
  private failure: Error | undefined
  private paused = false
  private headTimer: NodeJS.Timeout | undefined
  private silenceTimer: NodeJS.Timeout | undefined
  private settled = false

  constructor (
    private readonly url: URL,
    private readonly options: SlabGetOptions,
    private readonly resolve: (response: SlabResponse) => void,
    private readonly reject: (err: Error) => void
  ) {
    this.slabSize = options.slabSize ?? SLAB_SIZE
  }

  start (): void {
    const signal = this.options.signal
    if (signal?.aborted === true) { this.fail(abortError(signal)); return }
    signal?.addEventListener('abort', this.onAbort, { once: true })
    this.headTimer = setTimeout(() => this.fail(new TransferError('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error', 'HeadersTimeoutError')), this.options.headersTimeoutMs ?? 30_000)
    this.newSlab()
    const socket = connect({
      host: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.url.port === '' ? 80 : this.url.port),
      onread: { buffer: () => this.region(), callback: (n, buf) => this.onRead(n, buf) }
    })
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('connect', () => {
      const headers = { host: this.url.host, ...this.options.headers, connection: 'close' }
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`GET ${this.url.pathname}${this.url.search} HTTP/1.1\r\n${lines}\r\n`)
    })
    socket.on('error', (err) => this.fail(err))
    socket.on('end', () => this.onEnd())
    socket.on('close', () => { if (this.phase !== 'done') this.onEnd() })
  }

  private readonly onAbort = (): void => {
    this.fail(abortError(this.options.signal as AbortSignal))
  }

  /** Whether the body ended (whole or failed); a method, so that checks after calls that end it are not narrowed away. */
  ended (): boolean {
    return this.phase === 'done'
  }

  private newSlab (): Slab {
    if (this.slab !== undefined) this.seal(this.slab)
    const slab = { bytes: buffers.alloc(this.slabSize), start: this.bodyBytes, first: 0, end: 0 }
    this.slab = slab
    this.pos = 0
    return slab
  }

  private seal (slab: Slab): void {
    this.sealed.push({ memory: new WeakRef(slab.bytes.buffer as ArrayBuffer), end: slab.start + slab.end - slab.first })
    // slabs the collector took while nobody released them leave no entries behind
    if (this.sealed.length > 64) {
      const live = this.sealed.filter(s => s.memory.deref() !== undefined)
      this.sealed.splice(0, this.sealed.length, ...live)
    }
  }

  /** Where the next read lands: the rest of the last slab, or a new one. */
  private region (): Buffer {
    let slab = this.slab as Slab
    if (this.phase === 'body' && this.slabSize - this.pos < MIN_READ) slab = this.newSlab()
    return slab.bytes.subarray(this.pos)
  }

  private onRead (n: number, buf: Uint8Array): boolean {
    if (this.phase === 'done') return false
    const slab = this.slab as Slab
    const from = buf.byteOffset - slab.bytes.byteOffset
    const to = from + n
    try {
      if (this.phase === 'head') {
        const bodyAt = this.head(slab, to)
        if (bodyAt === undefined) { this.pos = to; return true }
        slab.first = slab.end = bodyAt
        this.pos = bodyAt
        this.body(slab, bodyAt, to)
      } else {
        this.body(slab, from, to)
      }
    } catch (err) {
      this.fail(err as Error)
      return false
    }
    this.armSilence()
    if (this.queued >= HIGH_WATER && !this.ended()) { this.paused = true; return false }
    return true
  }

  /** Parses the status line and headers once they are whole in the slab; the index where the body starts. */
  private head (slab: Slab, to: number): number | undefined {
    // interim answers (1xx) before the real one are skipped: `slab.first` marks where the current head starts
    for (;;) {
      const at = slab.bytes.subarray(slab.first, to).indexOf('\r\n\r\n')
      // a head read whole in one go is held to the limit too; one that fills the slab (a slab
      // smaller than the limit, or 1xx answers before it) has no room to be read on
      if ((at < 0 ? to - slab.first : at + 4) > MAX_HEAD || (at < 0 && to === slab.bytes.length)) throw new TransferError('UND_ERR_HEADERS_OVERFLOW', `the response's head is longer than ${Math.min(MAX_HEAD, slab.bytes.length - slab.first)} bytes`, 'HeadersOverflowError')
      if (at < 0) return undefined
      const text = slab.bytes.toString('latin1', slab.first, slab.first + at)
      const bodyAt = slab.first + at + 4
      const [status, ...rest] = text.split('\r\n')
      const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(status)
      if (match === null) throw new TransferError('HPE_INVALID_CONSTANT', `not an HTTP/1.1 status line: ${JSON.stringify(status.slice(0, 80))}`, 'HTTPParserError')
      const statusCode = Number(match[1])
      if (statusCode >= 100 && statusCode < 200) { slab.first = bodyAt; continue }
      // no prototype: a header named `constructor` or `__proto__` is a header like any other
      const headers: Record<string, string> = Object.create(null)
      for (const line of rest) {
        const colon = line.indexOf(':')
        if (colon <= 0) throw new TransferError('HPE_INVALID_HEADER_TOKEN', `a malformed header line: ${JSON.stringify(line.slice(0, 80))}`, 'HTTPParserError')
        const name = line.slice(0, colon).trim().toLowerCase()
        const value = line.slice(colon + 1).trim()
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
      }
      this.framing = framingOf(statusCode, headers)
      this.phase = 'body'
      clearTimeout(this.headTimer)
      this.settled = true
      this.resolve({ statusCode, headers, body: this.bodyApi() })
      if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.framing.left === 0)) this.finish()
      return bodyAt
    }
  }

  /**
   * Takes the raw bytes [from, to) of the last slab: their body bytes are
   * moved (if framing sat between) to follow the slab's body end, and queued.
   */
  private body (slab: Slab, from: number, to: number): void {
    if (this.phase !== 'body') return
    const start = slab.end
    let i = from
    const framing = this.framing
    if (framing.kind === 'close') {
      this.put(slab, i, to)
      i = to
    } else if (framing.kind === 'length') {
      const take = Math.min(framing.left, to - i)
      this.put(slab, i, i + take)
      framing.left -= take
      i += take
      if (framing.left === 0) this.finish()
    } else if (framing.kind === 'chunked') {
      while (i < to && !this.ended()) {
        if (this.chunkState === 'data') {
          const take = Math.min(this.chunkLeft, to - i)
          this.put(slab, i, i + take)
          this.chunkLeft -= take
          i += take
          if (this.chunkLeft === 0) this.chunkState = 'data-end'
          continue
        }
        // a framing line: the size (with extensions), the CRLF after data, or a trailer
        const byte = slab.bytes[i++]
        if (byte !== 0x0a) {
          if (this.line.length > 1024) throw new TransferError('HPE_INVALID_CHUNK_SIZE', 'a chunk-size line longer than 1 KiB', 'HTTPParserError')
          this.line += String.fromCharCode(byte)
          continue
        }
        const line = this.line.replace(/\r$/, '')
        this.line = ''
        if (this.chunkState === 'data-end') {
          if (line !== '') throw new TransferError('HPE_INVALID_CHUNK_SIZE', 'chunk data not followed by CRLF', 'HTTPParserError')
          this.chunkState = 'size'
        } else if (this.chunkState === 'size') {
          const size = line.split(';')[0].trim()
          if (!/^[0-9a-fA-F]{1,12}$/.test(size)) throw new TransferError('HPE_INVALID_CHUNK_SIZE', `invalid chunk size ${JSON.stringify(size.slice(0, 20))}`, 'HTTPParserError')
          this.chunkLeft = parseInt(size, 16)
          this.chunkState = this.chunkLeft === 0 ? 'trailer' : 'data'
        } else if (line === '') {
          // the empty line after the last chunk's trailers
          this.finish()
        }
      }
    }
    // the next read lands right after the body so far; anything past `slab.end` was framing, already taken
    this.pos = slab.end
    if (slab.end > start) this.enqueue(slab.bytes.subarray(start, slab.end))
  }

  /** Appends the raw bytes [from, to) of the slab to its body, moving them back over framing taken before. */
  private put (slab: Slab, from: number, to: number): void {
    if (to <= from) return
    if (from !== slab.end) slab.bytes.copyWithin(slab.end, from, to)
    slab.end += to - from
    this.bodyBytes += to - from
  }

  private enqueue (view: Uint8Array): void {
    this.queue.push(view)
    this.queued += view.byteLength
    this.wake()
  }

  private wake (): void {
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.resolve()
  }

  private onEnd (): void {
    if (this.phase === 'done') return
    if (this.phase === 'body' && this.framing.kind === 'close') { this.finish(); return }
    this.fail(new TransferError('UND_ERR_SOCKET', 'other side closed'))
  }

  private finish (): void {
    if (this.phase === 'done') return
    this.phase = 'done'
    if (this.slab !== undefined) this.seal(this.slab)
    this.stopTimers()
    this.options.signal?.removeEventListener('abort', this.onAbort)
    this.socket?.destroy()
    this.wake()
  }

  /** Ends the transfer with `err`, unless it already ended (a body read whole stays whole). */
  fail (err: Error): void {
    if (this.phase === 'done') { this.socket?.destroy(); return }
    this.failure = err
    this.phase = 'done'
    this.stopTimers()
    this.options.signal?.removeEventListener('abort', this.onAbort)
    this.socket?.destroy()
    if (!this.settled) { this.settled = true; this.reject(err) }
    this.wake()
  }

  private stopTimers (): void {
    clearTimeout(this.headTimer)
    clearTimeout(this.silenceTimer)
  }

  /** The body's silence limit runs while the socket is read, not while the consumer holds it paused. */
  private armSilence (): void {
    const ms = this.options.bodyTimeoutMs ?? 30_000
    if (ms <= 0 || this.phase !== 'body') return
    if (this.silenceTimer === undefined) {
      this.silenceTimer = setTimeout(() => {
        if (this.paused) return
        this.fail(new TransferError('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error', 'BodyTimeoutError'))
      }, ms)
    } else {
      this.silenceTimer.refresh()
    }
  }

  private bodyApi (): SlabBody {
    const transfer = this
    return {
      [Symbol.asyncIterator]: () => transfer.iterate(),
      release: (offset) => transfer.release(offset),
      holds: (bytes) => (!transfer.ended() && transfer.slab?.bytes.buffer === bytes.buffer) || transfer.sealed.some(s => s.memory.deref() === bytes.buffer),
      destroy: (err) => { transfer.fail(err ?? new TransferError('UND_ERR_ABORTED', 'Request aborted', 'AbortError')) },
      // ended, whole or not: nothing more will come
      get destroyed () { return transfer.ended() }
    }
  }

  private async * iterate (): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        // a failed transfer (the socket, a timeout, `destroy`) ends at once, as undici's body does, with views still queued
        if (this.failure !== undefined) throw this.failure
        const view = this.queue.shift()
        if (view !== undefined) {
          this.queued -= view.byteLength
          if (this.paused && this.queued < HIGH_WATER / 2) {
            this.paused = false
            this.socket?.resume()
            this.armSilence()
          }
          yield view
          continue
        }
        if (this.failure !== undefined) throw this.failure
        if (this.phase === 'done') return
        await new Promise<void>(resolve => { this.waiting = { resolve } })
      }
    } finally {
      if (this.phase !== 'done') this.fail(new TransferError('UND_ERR_ABORTED', 'Request aborted', 'AbortError'))
    }
  }

  private release (offset: number): void {
    while (this.sealed.length > 0 && this.sealed[0].end <= offset) {
      const memory = (this.sealed.shift() as Sealed).memory.deref()
      if (memory !== undefined) buffers.release(new Uint8Array(memory))
    }
  }
}

function framingOf (status: number, headers: Record<string, string>): Framing {
  if (status === 204 || status === 304) return { kind: 'none' }
  const coding = headers['transfer-encoding']
  if (coding !== undefined) {
    if (coding.split(',').at(-1)?.trim().toLowerCase() === 'chunked') return { kind: 'chunked' }
    return { kind: 'close' }
  }
  const length = headers['content-length']
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) throw new TransferError('HPE_INVALID_CONTENT_LENGTH', `invalid Content-Length ${JSON.stringify(length.slice(0, 20))}`, 'HTTPParserError')
    return { kind: 'length', left: Number(length) }
  }
  return { kind: 'close' }
}

function abortError (signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  if (reason instanceof Error) return reason
  const err = new Error('This operation was aborted')
  err.name = 'AbortError'
  return err
}
