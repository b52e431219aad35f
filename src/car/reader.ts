/**
 * A streaming, verifying CARv1 reader. It never holds more than one block (at
 * most `maxBlockSize`) plus the chunk being parsed, checks each block against
 * its CID as it passes, and tells the failures apart by code.
 *
 * @ipld/car's CarBlockIterator does not verify hashes and reports every
 * failure as a plain Error, which is why this is written here.
 */
import { createHash, type Hash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { varint } from 'multiformats'
import { equals } from 'multiformats/bytes'
import { CairnError } from '../errors.js'
import { buffers } from '../fs/pool.js'
import { SHA2_256 } from '../codecs.js'
import { cidKey, mismatch, verifyBlock } from './hash.js'
import type { BlockIndexEntry, CarBlock, CarHeader, ReadCarOptions } from './interface.js'

/** 2 MiB: the largest block IPFS implementations exchange (Bitswap's limit). */
export const MAX_BLOCK_SIZE = 2 * 1024 * 1024
/** A header is a few dozen bytes; anything past this is not a CAR header. */
const MAX_HEADER_SIZE = 64 * 1024

/** Bytes arriving in chunks, consumed by exact lengths, without re-concatenating what is buffered. */
class ByteQueue {
  private chunks: Uint8Array[] = []
  private head = 0
  available = 0
  consumed = 0
  private done = false
  private readonly iterator: AsyncIterator<Uint8Array>

  constructor (source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  /** Ensures `n` bytes are buffered; false if the source ended first. */
  async fill (n: number): Promise<boolean> {
    while (this.available < n) {
      if (this.done) return false
      const next = await this.iterator.next()
      if (next.done === true) { this.done = true; return false }
      const chunk = next.value
      if (chunk.byteLength === 0) continue
      this.chunks.push(chunk)
      this.available += chunk.byteLength
    }
    return true
  }

  async atEnd (): Promise<boolean> {
    return !(await this.fill(1))
  }

  /** Up to `n` buffered bytes, not consumed (for varints). */
  peek (n: number): Uint8Array {
    n = Math.min(n, this.available)
    const out = new Uint8Array(n)
    let written = 0
    let head = this.head
    for (const chunk of this.chunks) {
      if (written === n) break
      const take = Math.min(chunk.byteLength - head, n - written)
      out.set(chunk.subarray(head, head + take), written)
      written += take
      head = 0
    }
    return out
  }

  /** Consumes `n` buffered bytes into a fresh copy (no views of large source chunks are kept). */
  take (n: number): Uint8Array {
    // every byte is overwritten below, so skip the zero-fill a `new Uint8Array(n)` pays; a
    // buffer of its own, never a view of a shared slab, and large ones from the pool (a caller
    // done with a block may give it back with `buffers.release`)
    const out = new Uint8Array(buffers.alloc(n).buffer, 0, n)
    let written = 0
    while (written < n) {
      const chunk = this.chunks[0]
      const take = Math.min(chunk.byteLength - this.head, n - written)
      out.set(chunk.subarray(this.head, this.head + take), written)
      written += take
      this.head += take
      if (this.head === chunk.byteLength) { this.chunks.shift(); this.head = 0 }
    }
    this.available -= n
    this.consumed += n
    return out
  }

  /**
   * Consumes `n` buffered bytes as a view when they lie end to end in one
   * buffer (consecutive views of a caller's slab), else as a copy (`take`).
   */
  borrow (n: number): Uint8Array {
    const first = this.chunks[0]
    const start = first.byteOffset + this.head
    let end = start
    for (let i = 0; end - start < n; i++) {
      const chunk = this.chunks[i]
      const from = i === 0 ? this.head : 0
      if (chunk.buffer !== first.buffer || chunk.byteOffset + from !== end) return this.take(n)
      end += chunk.byteLength - from
    }
    this.pass(n)
    return new Uint8Array(first.buffer, start, n)
  }

  /** Consumes `n` buffered bytes into `hash` (or nowhere), without copying them. */
  pass (n: number, hash?: Hash): void {
    let left = n
    while (left > 0) {
      const chunk = this.chunks[0]
      const take = Math.min(chunk.byteLength - this.head, left)
      hash?.update(chunk.subarray(this.head, this.head + take))
      left -= take
      this.head += take
      if (this.head === chunk.byteLength) { this.chunks.shift(); this.head = 0 }
    }
    this.available -= n
    this.consumed += n
  }

  async return (): Promise<void> {
    await this.iterator.return?.()
  }
}

async function readVarint (queue: ByteQueue, what: string): Promise<number> {
  await queue.fill(10)
  const bytes = queue.peek(10)
  if (bytes.byteLength === 0) throw truncated(queue, what)
  let end = 0
  while (end < bytes.byteLength && (bytes[end] & 0x80) !== 0) end++
  if (end === bytes.byteLength) {
    if (bytes.byteLength < 10) throw truncated(queue, what)
    throw new CairnError('ERR_CAR_HEADER', `malformed varint for ${what} at byte ${queue.consumed}`)
  }
  if (end >= 8) throw new CairnError('ERR_CAR_BLOCK_TOO_LARGE', `${what} at byte ${queue.consumed} declares an impossible length`)
  let value: number, length: number
  try {
    [value, length] = varint.decode(bytes)
  } catch (err) {
    // e.g. a varint that is not minimally encoded (0x80 0x00), which the CARv1 spec forbids
    throw new CairnError('ERR_CAR_HEADER', `malformed varint for ${what} at byte ${queue.consumed}: ${(err as Error).message}`, { cause: err })
  }
  queue.take(length)
  return value
}

function truncated (queue: ByteQueue, what: string): CairnError {
  return new CairnError('ERR_CAR_TRUNCATED', `CAR ends inside ${what} at byte ${queue.consumed + queue.available}`)
}

async function readHeader (queue: ByteQueue, options: ReadCarOptions): Promise<CarHeader> {
  if (await queue.atEnd()) throw new CairnError('ERR_CAR_TRUNCATED', 'empty input: expected a CAR header')
  const length = await readVarint(queue, 'the header length')
  if (length === 0 || length > MAX_HEADER_SIZE) {
    throw new CairnError('ERR_CAR_HEADER', `header length ${length} bytes is not plausible (expected 1 to ${MAX_HEADER_SIZE})`)
  }
  if (!(await queue.fill(length))) throw truncated(queue, 'the header')
  const bytes = queue.take(length)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new CairnError('ERR_CAR_HEADER', `header is not valid dag-cbor: ${(err as Error).message}`, { cause: err })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CairnError('ERR_CAR_HEADER', 'header is not a map')
  }
  const { version, roots } = value as { version?: unknown, roots?: unknown }
  if (version !== 1) {
    throw new CairnError('ERR_CAR_UNSUPPORTED_VERSION', `CAR version ${String(version)} is not supported (expected 1)`)
  }
  if (!Array.isArray(roots) || !roots.every(r => CID.asCID(r) !== null)) {
    throw new CairnError('ERR_CAR_HEADER', 'header roots must be a list of CIDs')
  }
  if (roots.length === 0) throw new CairnError('ERR_CAR_NO_ROOTS', 'the CAR names no root')
  if (roots.length > 1 && options.allowMultipleRoots !== true) {
    throw new CairnError('ERR_CAR_MULTIPLE_ROOTS', `the CAR names ${roots.length} roots; expected exactly 1`)
  }
  return { version: 1, roots: roots.map(r => CID.asCID(r) as CID), length: queue.consumed }
}

/**
 * Reads a CARv1 stream, yielding each block once its bytes are verified
 * against its CID.
 */
export async function * readCar (source: AsyncIterable<Uint8Array>, options: ReadCarOptions = {}): AsyncGenerator<CarBlock, void, undefined> {
  const maxBlockSize = options.maxBlockSize ?? MAX_BLOCK_SIZE
  const queue = new ByteQueue(source)
  const seen = options.unique === true ? new Set<string>() : undefined
  const fresh = (block: CarBlock): CarBlock => {
    if (seen !== undefined) {
      const key = cidKey(block.cid)
      if (seen.has(key)) throw new CairnError('ERR_CAR_DUPLICATE_BLOCK', `block ${block.cid.toString()} appears twice (second at byte ${block.offset})`)
      seen.add(key)
    }
    return block
  }
  const leaves = options.hashMany === undefined || options.rawBytes === false ? undefined : new LeafBatches(options.hashMany)
  try {
    const header = await readHeader(queue, options)
    options.onHeader?.(header)
    while (!(await queue.atEnd())) {
      const offset = queue.consumed
      const length = await readVarint(queue, 'a block length')
      // a CID is at most a few dozen bytes; 128 is generous
      if (length > maxBlockSize + 128) {
        throw new CairnError('ERR_CAR_BLOCK_TOO_LARGE', `block at byte ${offset} is ${length} bytes; the limit is ${maxBlockSize}`)
      }
      if (length === 0) throw new CairnError('ERR_DAG_INVALID', `empty block frame at byte ${offset}`)
      if (!(await queue.fill(length))) throw truncated(queue, `the block at byte ${offset}`)
      if (leaves !== undefined) {
        const leaf = length >= MIN_BATCHED ? rawLeaf(queue, length, offset, maxBlockSize, options.leafViews === true) : undefined
        if (leaf !== undefined) {
          for await (const block of leaves.add(leaf)) yield fresh(block)
          continue
        }
        // any other block goes out after the leaves before it
        for await (const block of leaves.flush()) yield fresh(block)
      } else if (options.rawBytes === false) {
        const block = passRaw(queue, length, offset, maxBlockSize, options.trustRawLeaves === true)
        if (block !== undefined) {
          yield fresh(block)
          continue
        }
      }
      const frame = queue.take(length)
      let cid: CID
      let rest: Uint8Array
      try {
        [cid, rest] = CID.decodeFirst(frame)
      } catch (err) {
        throw new CairnError('ERR_DAG_INVALID', `block frame at byte ${offset} does not start with a valid CID`, { cause: err })
      }
      if (rest.byteLength > maxBlockSize) {
        throw new CairnError('ERR_CAR_BLOCK_TOO_LARGE', `block ${cid.toString()} is ${rest.byteLength} bytes; the limit is ${maxBlockSize}`)
      }
      verifyBlock(cid, rest)
      const blockOffset = queue.consumed - rest.byteLength
      yield fresh({ cid, bytes: rest, offset, blockOffset, length: rest.byteLength })
    }
    if (leaves !== undefined) for await (const block of leaves.flush()) yield fresh(block)
  } finally {
    await queue.return()
  }
}

const NO_BYTES = new Uint8Array(0)
/** Smaller leaves (a small file's) are hashed on the main thread: a pool job each would cost more than it saves. */
const MIN_BATCHED = 64 * 1024

/** The CID of a raw sha2-256 block at the front of the queue and its length; undefined for any other block (nothing is consumed). */
function rawHead (queue: ByteQueue, length: number, maxBlockSize: number): { cid: CID, cidLength: number, dataLength: number } | undefined {
  // a CID is at most a few dozen bytes; one that does not decode from this much is read whole
  const head = queue.peek(Math.min(length, 128))
  let cid: CID
  let rest: Uint8Array
  try {
    [cid, rest] = CID.decodeFirst(head)
  } catch {
    return undefined
  }
  if (cid.code !== raw.code || cid.multihash.code !== SHA2_256) return undefined
  const cidLength = head.byteLength - rest.byteLength
  const dataLength = length - cidLength
  if (dataLength > maxBlockSize) {
    throw new CairnError('ERR_CAR_BLOCK_TOO_LARGE', `block ${cid.toString()} is ${dataLength} bytes; the limit is ${maxBlockSize}`)
  }
  return { cid, cidLength, dataLength }
}

/**
 * A raw sha2-256 block hashed where it lies in the queue (unless `trusted`),
 * never copied out; undefined (nothing consumed) for any other block, which
 * the caller reads whole.
 */
function passRaw (queue: ByteQueue, length: number, offset: number, maxBlockSize: number, trusted: boolean): CarBlock | undefined {
  const found = rawHead(queue, length, maxBlockSize)
  if (found === undefined) return undefined
  const { cid, cidLength, dataLength } = found
  queue.pass(cidLength)
  if (trusted) {
    queue.pass(dataLength)
  } else {
    const hash = createHash('sha256')
    queue.pass(dataLength, hash)
    if (!hash.digest().equals(cid.multihash.digest)) throw mismatch(cid, dataLength)
  }
  return { cid, bytes: NO_BYTES, offset, blockOffset: queue.consumed - dataLength, length: dataLength }
}

/**
 * A raw sha2-256 block, not yet hashed, copied out whole (or a view of the
 * input where it lies in one buffer, with `views`); undefined (nothing
 * consumed) for any other block.
 */
function rawLeaf (queue: ByteQueue, length: number, offset: number, maxBlockSize: number, views: boolean): CarBlock | undefined {
  const found = rawHead(queue, length, maxBlockSize)
  if (found === undefined) return undefined
  const { cid, cidLength, dataLength } = found
  const bytes = (views ? queue.borrow(length) : queue.take(length)).subarray(cidLength)
  return { cid, bytes, offset, blockOffset: queue.consumed - dataLength, length: dataLength }
}

/**
 * Raw leaves hashed sixteen at a time off the main thread (`hashMany`): one
 * batch is hashed while the next is read, and a leaf goes out only once its
 * digest matched, in stream order, so a bad leaf ends the blocks at the one
 * before it, as hashing one by one would. Holds at most two batches (32 MiB
 * of 1 MiB leaves), in the buffer pool's memory.
 */
class LeafBatches {
  /** the batch being hashed */
  private hashing: { leaves: CarBlock[], digests: Promise<Uint8Array> } | undefined
  /** the batch being filled: leaves of one length */
  private filling: CarBlock[] = []

  constructor (private readonly hashMany: (messages: Uint8Array[]) => Promise<Uint8Array>) {}

  /** Takes a leaf; yields the leaves verified meanwhile. */
  async * add (leaf: CarBlock): AsyncGenerator<CarBlock> {
    if (this.filling.length > 0 && this.filling[0].length !== leaf.length) yield * this.launch()
    this.filling.push(leaf)
    if (this.filling.length === 16) yield * this.launch()
  }

  /** Every leaf taken, verified. */
  async * flush (): AsyncGenerator<CarBlock> {
    if (this.filling.length > 0) yield * this.launch()
    const last = this.hashing
    this.hashing = undefined
    if (last !== undefined) yield * this.verified(last)
  }

  /** Starts hashing the batch being filled; yields the one hashed before it. */
  private async * launch (): AsyncGenerator<CarBlock> {
    const before = this.hashing
    const leaves = this.filling
    const digests = this.hashMany(leaves.map(leaf => leaf.bytes))
    // awaited in `verified`; a stream that fails first leaves it unread
    digests.catch(() => {})
    this.hashing = { leaves, digests }
    this.filling = []
    if (before !== undefined) yield * this.verified(before)
  }

  private async * verified (batch: { leaves: CarBlock[], digests: Promise<Uint8Array> }): AsyncGenerator<CarBlock> {
    const digests = await batch.digests
    for (const [i, leaf] of batch.leaves.entries()) {
      if (!equals(digests.subarray(32 * i, 32 * i + 32), leaf.cid.multihash.digest)) throw mismatch(leaf.cid, leaf.length)
      yield leaf
    }
  }
}

/** Only the header of a CAR stream. */
export async function readCarHeader (source: AsyncIterable<Uint8Array>, options: ReadCarOptions = {}): Promise<CarHeader> {
  const queue = new ByteQueue(source)
  try {
    return await readHeader(queue, options)
  } finally {
    await queue.return()
  }
}

/** The block index of a CAR (CID → data offset and length), for random access; verifies every block on the way. */
export async function * indexCar (source: AsyncIterable<Uint8Array>, options: ReadCarOptions = {}): AsyncGenerator<BlockIndexEntry, void, undefined> {
  for await (const block of readCar(source, options)) {
    yield { cid: block.cid, offset: block.blockOffset, length: block.length }
  }
}
