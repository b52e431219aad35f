/**
 * A CAR stream passed through unchanged, each byte let out only once it is
 * verified: the header once checked, a block's frame once the block hashes
 * to its CID and holds its place in the DAG (`DagVerifier`). What comes out
 * is the source's own chunks (or slices of them), never re-encoded frames or
 * copies: the provider's whole-piece stream and `cairn get --car -` relay
 * bytes that way instead of decoding each block into a buffer of its own and
 * writing a new frame prefix and the block separately.
 *
 * Raw leaves are hashed where they lie in the chunks (`readCar` with
 * `rawBytes: false`), or not at all with `trustRawLeaves` (their CIDs still
 * hold their DFS places); only nodes with links are copied, to be decoded. A
 * failure throws before any byte of the failing block (or the header) is let
 * out, so what a consumer received is always a prefix of the CAR ending at a
 * verified frame.
 *
 * With `hashMany` (the native addon's `sha256x16`) the raw leaves are hashed
 * off the main thread instead, sixteen at a time (readCar's batches). Then
 * the source's chunks are not held until their batch is verified (held
 * across scavenges, undici's chunks were promoted and freed only by full
 * collections: docs/performance.md, "Retrieval, round five"): each is copied
 * as it arrives into a slab from the buffer pool, the leaves are hashed
 * where they lie in the slabs, the batches let out are views of the slabs,
 * and a slab goes back to the pool once the consumer says every byte of it
 * was written (`written` of the batch that ends past it). A source whose
 * chunks already are views of pooled slabs (`slabs`: a body read by
 * src/http/slab-get.ts, what `cairn get --car -` reads) is not copied at all.
 */
import * as raw from 'multiformats/codecs/raw'
import { buffers } from '../fs/pool.js'
import type { CarHeader, ReadCarOptions } from './interface.js'
import { readCar } from './reader.js'
import type { DagVerifier } from './verify.js'

/** 4 MiB: a few 1 MiB leaves each; two batches of sixteen unverified leaves span about nine. */
const SLAB_SIZE = 4 * 1024 * 1024

export interface PassOptions {
  /** checks each block's place in the DAG; `finish()` is called at the end of the stream */
  verifier: DagVerifier
  /** throws to refuse the header (e.g. another root than asked for) */
  onHeader?: (header: CarHeader) => void
  /**
   * Raw sha2-256 leaves go out unhashed; nodes with links are still hashed
   * (they decide the walk) and every CID must hold its DFS place. For a
   * provider serving a piece it verified on ingest (`provider start
   * --hash-on-read` off): the client verifies every block anyway.
   */
  trustRawLeaves?: boolean
  /**
   * Hashes raw leaves off the main thread, in batches (readCar's
   * `hashMany`), from pooled slabs the source is copied into. The consumer
   * then calls each batch's `written` once its bytes are written (the write
   * callback), so the slabs behind it are used again; a batch never said
   * written only leaves its slabs to the collector. Not with `trustRawLeaves`.
   */
  hashMany?: ReadCarOptions['hashMany']
  /** bytes per slab with `hashMany` (default 4 MiB) */
  slabSize?: number
  /**
   * The source's chunks are already views of pooled slabs (a body read by
   * src/http/slab-get.ts): nothing is copied, the leaves are hashed where
   * they lie, and each batch's `written` gives the slabs behind it back
   * through `release` (a stream offset).
   */
  slabs?: { release: (offset: number) => void, holds: (bytes: Uint8Array) => boolean }
}

/** Verified bytes to write as one; with `hashMany`, `written` is to be called once they are written. */
export type PassBatch = Uint8Array[] & { written?: () => void }

/**
 * The verified bytes of `source`, in batches: each batch holds the chunks (or
 * slices of them) that end at the last verified frame, in order, and is meant
 * to be written as one (`cork`/`uncork`, `writev`).
 */
export async function * passVerified (source: AsyncIterable<Uint8Array>, options: PassOptions): AsyncGenerator<PassBatch, void, undefined> {
  // chunks read but not yet let out, the first starting at `start` in the stream
  const held: Uint8Array[] = []
  let start = 0
  async function * holding (): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      if (chunk.byteLength === 0) continue
      held.push(chunk)
      yield chunk
    }
  }
  const owned = options.slabs
  const slabs = options.hashMany === undefined || owned !== undefined ? undefined : new Slabs(options.slabSize ?? SLAB_SIZE)
  async function * copied (slabs: Slabs): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      for (const view of slabs.copy(chunk)) {
        held.push(view)
        yield view
      }
    }
  }
  /** Takes the held bytes before `end` (an offset in the stream). */
  function release (end: number): PassBatch {
    const out: PassBatch = []
    let i = 0
    while (i < held.length && start < end) {
      const chunk = held[i]
      const take = Math.min(chunk.byteLength, end - start)
      if (take === chunk.byteLength) {
        out.push(chunk)
        i++
      } else {
        out.push(chunk.subarray(0, take))
        held[i] = chunk.subarray(take)
      }
      start += take
    }
    held.splice(0, i)
    const upTo = start
    if (slabs !== undefined) out.written = () => slabs.written(upTo)
    else if (owned !== undefined) out.written = () => owned.release(upTo)
    return out
  }
  let headerEnd = 0
  const { verifier } = options
  const batched = options.hashMany !== undefined && (slabs !== undefined || owned !== undefined)
  for await (const block of readCar(slabs === undefined ? holding() : copied(slabs), {
    ...(batched
      ? { hashMany: options.hashMany, leafViews: true }
      : { rawBytes: false, trustRawLeaves: options.trustRawLeaves }),
    onHeader: (header) => {
      options.onHeader?.(header)
      headerEnd = header.length
    }
  })) {
    verifier.add(block.cid, block.bytes)
    // a leaf across two slabs was copied out into a pooled buffer: back to the pool, or each
    // would be a fresh mapping, and their external memory would force full collections
    const from = slabs ?? owned
    if (batched && from !== undefined && block.cid.code === raw.code && !from.holds(block.bytes)) buffers.release(block.bytes)
    // the header goes out with the first verified block
    const out = release(Math.max(headerEnd, block.blockOffset + block.length))
    if (out.length > 0) yield out
  }
  verifier.finish()
  // readCar consumed every byte into frames, so nothing is left unverified; a header with no block fails `finish`
  slabs?.end()
  const rest = release(Infinity)
  if (rest.length > 0) yield rest
}

/**
 * The slabs a stream is copied into, oldest first, the last being filled;
 * each goes back to the pool once the bytes written reach its end.
 */
class Slabs {
  private readonly list: Array<{ bytes: Buffer, start: number }> = []
  /** bytes copied so far: the stream offset of the next byte */
  private copied = 0
  /** bytes used in the last slab */
  private filled = 0
  private ended = false

  constructor (private readonly size: number) {}

  /** `chunk` copied into the slabs, as views of them (two where it crosses a slab's end). */
  copy (chunk: Uint8Array): Uint8Array[] {
    const views: Uint8Array[] = []
    let at = 0
    while (at < chunk.byteLength) {
      let slab = this.list.at(-1)
      if (slab === undefined || this.filled === this.size) {
        slab = { bytes: buffers.alloc(this.size), start: this.copied }
        this.list.push(slab)
        this.filled = 0
      }
      const n = Math.min(this.size - this.filled, chunk.byteLength - at)
      slab.bytes.set(chunk.subarray(at, at + n), this.filled)
      views.push(slab.bytes.subarray(this.filled, this.filled + n))
      this.filled += n
      this.copied += n
      at += n
    }
    return views
  }

  /** True when `bytes` is a view of one of the slabs. */
  holds (bytes: Uint8Array): boolean {
    return this.list.some(slab => slab.bytes.buffer === bytes.buffer)
  }

  /** No more bytes will come: the last slab goes back too once written to its fill. */
  end (): void {
    this.ended = true
  }

  /** Every byte before `upTo` (a stream offset) is written: the slabs wholly before it are free. */
  written (upTo: number): void {
    while (this.list.length > 0) {
      const { bytes, start } = this.list[0]
      const last = this.list.length === 1
      const end = last && this.ended ? this.copied : start + this.size
      // the slab being filled is not free even when written to its fill
      if (end > upTo || (last && !this.ended)) return
      this.list.shift()
      buffers.release(bytes)
    }
  }
}
