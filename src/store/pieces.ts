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
   * commitment. Nothing is visible in the store until `commit()`. Large chunks
   * are written after `source` has moved on: it must yield a fresh buffer each
   * time, never refill one it yielded.
   */
  async stage (source: AsyncIterable<Uint8Array>, options: { onBytes?: (total: number) => void, signal?: AbortSignal, layerLevel?: number } = {}): Promise<StagedPiece> {
    const temp = join(this.tmpDir, tempName('piece', '.car'))
    let handle: FileHandle | undefined
    try {
      handle = await open(temp, 'wx', 0o644)
      const { piece, size } = await writePiece(handle, source, { ...options, faults: this.faults })
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

/**
 * Writes `source` to `handle` from offset 0 while computing its piece
 * commitment, in one pass over the bytes (the store's `stage`, `cairn pack`).
 * Writes run behind, each at its own offset, while the hasher takes the same
 * bytes and the source makes the next chunk; only WRITE_BEHIND bytes wait on
 * the disk. `source` must yield a fresh buffer each time, never refill one it
 * yielded; a pooled buffer (src/fs/pool.ts) is given back once it is written
 * and hashed. Does not sync: the caller decides what durability it needs.
 * On failure, every write started has settled before this rejects.
 */
export async function writePiece (handle: FileHandle, source: AsyncIterable<Uint8Array>, options: { onBytes?: (total: number) => void, signal?: AbortSignal, layerLevel?: number, faults?: Pick<StoreFaults, 'write'> } = {}): Promise<{ piece: PieceInfo, size: number }> {
  const writes: Array<{ done: Promise<void>, length: number, chunk: Uint8Array }> = []
  let writing = 0
  try {
    // with layerLevel, the hasher also collects the proof layer cache (piece.layers) as it goes
    const hasher = createPieceHasher({ layerLevel: options.layerLevel })
    let size = 0
    let written = 0
    const submit = (bytes: Uint8Array, chunk: Uint8Array): void => {
      const done = writeAll(handle, bytes, written)
      done.catch(() => {})
      writes.push({ done, length: bytes.length, chunk })
      writing += bytes.length
      written += bytes.length
    }
    let gather: Buffer | undefined
    let gathered = 0
    const flush = (): void => {
      if (gather === undefined || gathered === 0) return
      submit(gather.subarray(0, gathered), gather)
      gather = undefined
      gathered = 0
    }
    for await (const chunk of source) {
      options.signal?.throwIfAborted()
      options.faults?.write?.(size, chunk.length)
      if (chunk.length >= GATHER / 2) {
        flush()
        submit(chunk, chunk)
      } else {
        if (gather !== undefined && gathered + chunk.length > GATHER) flush()
        gather ??= buffers.alloc(GATHER)
        gather.set(chunk, gathered)
        gathered += chunk.length
      }
      size += chunk.length
      await hasher.update(chunk)
      // a gathered chunk was copied, and the hasher is done with it: a pooled one can be used again
      if (chunk.length < GATHER / 2) buffers.release(chunk)
      while (writing > WRITE_BEHIND) {
        const oldest = writes.shift() as { done: Promise<void>, length: number, chunk: Uint8Array }
        await oldest.done
        writing -= oldest.length
        // written and hashed: a pooled chunk can be used again
        buffers.release(oldest.chunk)
      }
      options.onBytes?.(size)
    }
    flush()
    for (const { done, chunk } of writes.splice(0)) {
      await done
      buffers.release(chunk)
    }
    return { piece: await hasher.digest(), size }
  } catch (err) {
    await Promise.allSettled(writes.map(w => w.done))
    throw err
  }
}
