/**
 * The piece store: one CARv1 file per piece, named by its piece CID (v2).
 *
 * A piece is written to a temporary file while its commitment is computed,
 * fsync'd, and only then renamed into place (`commit`). The caller records the
 * piece in the db after the rename, so a crash leaves at worst an unindexed
 * piece file, never an index entry without its piece.
 */
import { open, rm, stat, type FileHandle } from 'node:fs/promises'
import { createReadStream, type ReadStream } from 'node:fs'
import { join } from 'node:path'
import { tempName } from '../fs/temp.js'
import { createPieceHasher, type PieceInfo } from '../../proofs/index.js'
import { CairnError, fromSystemError } from '../errors.js'
import { commitFile } from '../fs/atomic.js'
import { buffers } from '../fs/pool.js'
import { readFully } from '../fs/read.js'
import { writeAll } from '../fs/write.js'

export interface StagedPiece {
  readonly piece: PieceInfo
  /** bytes written (the CAR's size, the piece's payload size) */
  readonly size: number
  /** Moves the piece into the store. Idempotent for identical content. */
  commit (): Promise<string>
  abort (): Promise<void>
}

export interface PieceReader {
  readonly size: number
  createReadStream (start?: number, end?: number): ReadStream
  /** the piece file, for positional reads; the caller closes it */
  openFile (): Promise<FileHandle>
}

/**
 * Test-only fault injection (test/hardening): each hook runs just before the
 * step it names and may throw, e.g. an `ENOSPC` or `EIO` system error, to show
 * that a failing disk yields a clean rejection and leaves nothing behind.
 */
export interface StoreFaults {
  write?: (offset: number, length: number) => void
  sync?: () => void
  commit?: () => void
}

/** Bytes of a piece being staged that may sit in writes not yet done. */
const WRITE_BEHIND = 8 * 1024 * 1024
/**
 * Small chunks (an upload arrives in the socket's 64 KiB reads) are gathered
 * into writes of this size. Each write is a job on the libuv pool, and waking a
 * pool thread sixteen times per MiB preempted the provider's event loop on a
 * 2-core machine: 20 % of its samples sat in `writeBuffer` during an upload.
 */
const GATHER = 1024 * 1024
/** With `syncBehind`, a datasync starts after each of these many bytes written. */
const SYNC_EVERY = 64 * 1024 * 1024

export class PieceStore {
  constructor (readonly dir: string, readonly tmpDir: string, private readonly faults: StoreFaults = {}) {}

  path (pieceCid: string): string {
    if (!/^b[a-z2-7]+$/.test(pieceCid)) throw new CairnError('ERR_INVALID_CID', `not a piece CID: ${pieceCid}`)
    return join(this.dir, `${pieceCid}.car`)
  }

  async has (pieceCid: string): Promise<boolean> {
    return await stat(this.path(pieceCid)).then(s => s.isFile(), () => false)
  }

  async open (pieceCid: string): Promise<PieceReader | undefined> {
    const path = this.path(pieceCid)
    const info = await stat(path).catch(() => undefined)
    if (info === undefined) return undefined
    return {
      size: info.size,
      createReadStream: (start?: number, end?: number) => createReadStream(path, { start, end, highWaterMark: 1 << 20 }),
      openFile: async () => await open(path, 'r')
    }
  }

  /**
   * Streams `source` into a temporary file while computing its piece
   * commitment (chunks in order, or placed: `writePiece`). Nothing is visible
   * in the store until `commit()`. Large chunks are written after `source`
   * has moved on: it must yield a fresh buffer each time, never refill one it
   * yielded.
   */
  async stage (source: AsyncIterable<Uint8Array | PlacedBytes>, options: { onBytes?: (total: number) => void, signal?: AbortSignal, layerLevel?: number } = {}): Promise<StagedPiece> {
    const temp = join(this.tmpDir, tempName('piece', '.car'))
    let handle: FileHandle | undefined
    try {
      // read as well as written: the piece hasher reads back room the source filled last (writePiece)
      handle = await open(temp, 'wx+', 0o644)
      const { piece, size } = await writePiece(handle, source, { ...options, syncBehind: true, faults: this.faults })
      this.faults.sync?.()
      await handle.sync()
      await handle.close()
      handle = undefined
      const target = this.path(piece.cid.toString())
      return {
        piece,
        size,
        commit: async () => {
          try {
            this.faults.commit?.()
            await commitFile(temp, target)
          } catch (err) {
            await rm(temp, { force: true })
            throw fromSystemError(err, target)
          }
          return target
        },
        abort: async () => { await rm(temp, { force: true }) }
      }
    } catch (err) {
      await handle?.close().catch(() => {})
      await rm(temp, { force: true })
      throw err instanceof CairnError ? err : fromSystemError(err, temp)
    }
  }
}

export interface WritePieceOptions {
  onBytes?: (total: number) => void
  signal?: AbortSignal
  /** also collect the proof layer cache at this level (proofs/commp.ts) */
  layerLevel?: number
  /** the caller fsyncs the file when it is written: have the disk write it back as it goes (WriteBehind) */
  syncBehind?: boolean
  faults?: Pick<StoreFaults, 'write'>
}

/** Bytes and where they go in the piece file, for a writer that fills in some of the file later. */
export interface PlacedBytes { bytes: Uint8Array, position: number }

/**
 * Writes that run behind the caller, each at its own offset, so that the
 * source makes the next chunk and the hasher takes this one while the disk
 * works; only WRITE_BEHIND bytes wait on the disk. A pooled buffer
 * (src/fs/pool.ts) goes back to the pool once its write is done. With
 * `syncEvery`, a `datasync` starts each time that many more bytes are
 * written (one at a time, on the libuv pool), so the disk writes the file
 * back while it is being made and the caller's closing fsync finds little
 * left to do: an fsync of 1 GiB written at once took 0.3 s here.
 */
class WriteBehind {
  readonly #writes: Array<{ done: Promise<void>, length: number, buffer: Uint8Array }> = []
  #writing = 0
  #unsynced = 0
  #syncing: Promise<void> | undefined

  constructor (private readonly handle: FileHandle, private readonly syncEvery = 0) {}

  /** Starts writing `bytes` at `position`; `buffer` (the pooled buffer `bytes` lies in) is given back once written. */
  submit (bytes: Uint8Array, position: number, buffer: Uint8Array = bytes): void {
    const done = writeAll(this.handle, bytes, position)
    done.catch(() => {})
    this.#writes.push({ done, length: bytes.length, buffer })
    this.#writing += bytes.length
  }

  /** Waits until at most WRITE_BEHIND bytes are being written. */
  async bound (): Promise<void> {
    while (this.#writing > WRITE_BEHIND) await this.#settleOne()
  }

  /** Waits for every write (and a datasync under way). */
  async finish (): Promise<void> {
    while (this.#writes.length > 0) await this.#settleOne()
    await this.#syncing
  }

  /** Waits for every write to settle, failed or not. */
  async settle (): Promise<void> {
    await Promise.allSettled([...this.#writes.map(w => w.done), this.#syncing])
  }

  async #settleOne (): Promise<void> {
    const oldest = this.#writes.shift() as { done: Promise<void>, length: number, buffer: Uint8Array }
    await oldest.done
    this.#writing -= oldest.length
    // written, and hashed before it was submitted: a pooled buffer can be used again
    buffers.release(oldest.buffer)
    this.#unsynced += oldest.length
    if (this.syncEvery > 0 && this.#unsynced >= this.syncEvery) {
      // the last one's failure surfaces here, before another starts
      await this.#syncing
      this.#unsynced = 0
      const syncing = this.handle.datasync()
      syncing.catch(() => {})
      this.#syncing = syncing
    }
  }
}

/**
 * Room left in a piece file, below the end of what was placed: sorted,
 * disjoint [start, end) ranges, taken out as they are filled.
 */
class Room {
  readonly #ranges: Array<[number, number]> = []

  /** Leaves [start, end) for later; it lies past every range left so far. */
  leave (start: number, end: number): void {
    this.#ranges.push([start, end])
  }

  /** Fills [start, end), which must lie inside one range left. */
  fill (start: number, end: number): void {
    const ranges = this.#ranges
    // the last range starting at or before `start`
    let lo = 0
    let hi = ranges.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((ranges[mid] as [number, number])[0] <= start) lo = mid + 1
      else hi = mid
    }
    const range = ranges[lo - 1]
    if (range === undefined || end > range[1]) throw new Error(`internal: bytes ${start}–${end} placed over bytes already placed`)
    const parts = ([[range[0], start], [end, range[1]]] as Array<[number, number]>).filter(([a, b]) => b > a)
    ranges.splice(lo - 1, 1, ...parts)
  }

  /** the first range left, for a message */
  get first (): [number, number] | undefined { return this.#ranges[0] }
}

/**
 * Writes `source` to `handle` while computing its piece commitment, in one
 * pass over the bytes (the store's `stage`, `cairn pack`). A chunk goes on
 * from the end of the last; a placed chunk (PlacedBytes) goes where it says:
 * past the end, leaving room, or into room left before, which the hasher
 * reads back from the file at the end (proofs/commp.ts `skip`; every byte of
 * room must be filled by then). Writes run behind, each at its own offset,
 * while the hasher takes the same bytes and the source makes the next chunk;
 * only WRITE_BEHIND bytes wait on the disk. `source` must yield a fresh
 * buffer each time, never refill one it yielded; a pooled buffer
 * (src/fs/pool.ts) is given back once it is written and hashed. Does not
 * sync: the caller decides what durability it needs. On failure, every write
 * started has settled before this rejects.
 */
export async function writePiece (handle: FileHandle, source: AsyncIterable<Uint8Array | PlacedBytes>, options: WritePieceOptions = {}): Promise<{ piece: PieceInfo, size: number }> {
  const writes = new WriteBehind(handle, options.syncBehind === true ? SYNC_EVERY : 0)
  try {
    // with layerLevel, the hasher also collects the proof layer cache (piece.layers) as it goes
    const hasher = createPieceHasher({ layerLevel: options.layerLevel })
    /** bytes given so far, and the end of the bytes placed so far */
    let size = 0
    let end = 0
    const room = new Room()
    /** small chunks placed one after another are gathered into one write (room between them is written as it is, and filled later) */
    let gather: Buffer | undefined
    let gathered = 0
    /** the end of the room written over by gathered writes still in flight: a fill below it waits for them */
    let covered = 0
    const flush = (): void => {
      if (gather === undefined || gathered === 0) return
      writes.submit(gather.subarray(0, gathered), end - gathered, gather)
      gather = undefined
      gathered = 0
    }
    for await (const item of source) {
      options.signal?.throwIfAborted()
      const chunk = item instanceof Uint8Array ? item : item.bytes
      const position = item instanceof Uint8Array ? end : item.position
      if (!Number.isSafeInteger(position) || position < 0) throw new RangeError(`bytes placed at ${position}`)
      options.faults?.write?.(position, chunk.length)
      size += chunk.length
      if (position < end) {
        // into room left before: hashed when the hasher reads it back
        room.fill(position, position + chunk.length)
        if (position < covered) {
          // room written over by a gathered write: that write goes first
          flush()
          await writes.finish()
          covered = 0
        }
        writes.submit(chunk, position)
      } else {
        const gap = position - end
        if (gap > 0) {
          room.leave(end, position)
          await hasher.skip(gap)
          if (gather !== undefined && gathered + gap + chunk.length <= GATHER && chunk.length < GATHER / 2) {
            gathered += gap
            covered = position
          } else {
            flush()
          }
          end = position
        }
        if (chunk.length >= GATHER / 2) {
          flush()
          writes.submit(chunk, end)
        } else {
          if (gather !== undefined && gathered + chunk.length > GATHER) flush()
          gather ??= buffers.alloc(GATHER)
          gather.set(chunk, gathered)
          gathered += chunk.length
        }
        end += chunk.length
        await hasher.update(chunk)
        // a gathered chunk was copied, and the hasher is done with it: a pooled one can be used again
        if (chunk.length < GATHER / 2) buffers.release(chunk)
      }
      await writes.bound()
      options.onBytes?.(size)
    }
    flush()
    const left = room.first
    if (left !== undefined) throw new Error(`internal: bytes ${left[0]}–${left[1]} of the piece were left unwritten`)
    await writes.finish()
    const piece = await hasher.digest({
      read: async (offset, length) => {
        const buffer = Buffer.allocUnsafe(length)
        return buffer.subarray(0, await readFully(handle, buffer, length, offset))
      }
    })
    return { piece, size: end }
  } catch (err) {
    await writes.settle()
    throw err
  }
}
