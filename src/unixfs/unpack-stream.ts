/**
 * Writing UnixFS while its CAR streams in: the counterpart of `unpack` for a
 * CAR that arrives in depth-first pre-order without duplicates (Trustless
 * Gateway `order=dfs; dups=n`, what `cairn get` asks providers for). The one
 * reader walks the DAG in that same order, so the stream can serve it block
 * by block: each block must be the next one the walk asks for
 * (ERR_DAG_INVALID otherwise), a file's leaves arrive in content order and
 * are written as they pass, and nothing is spooled or read back.
 *
 * Blocks must come verified against their CIDs (`readCar`). A block the walk
 * meets again (dups=n leaves it out) is served from memory, or, for a leaf
 * whose content has gone to disk, rebuilt from where that content was
 * written and verified again. The tree goes into a temporary sibling of
 * `output`, renamed into place only once the whole DAG has been walked and
 * the stream has ended, so a failure leaves nothing behind, as with `unpack`.
 */
import { open } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { cidKey, inlined, verifyBlock, type CarBlock } from '../car/index.js'
import { CairnError, fromSystemError, isCairnError } from '../errors.js'
import { buffers } from '../fs/pool.js'
import type { Block, UnpackResult } from './interface.js'
import { pathExists, targetExists, TreeWriter } from './writer.js'

/**
 * An error about the content itself or the local disk, not about the source
 * that sent it: another provider would give the same DAG, so it is final.
 */
export class UnpackOutputError extends Error {
  constructor (readonly error: CairnError) {
    super(error.message)
  }
}

/** Refuses early, before any byte is fetched, when `output` exists and may not be replaced. */
export async function checkOutput (output: string, options: { force?: boolean } = {}): Promise<void> {
  if (options.force !== true && await pathExists(output)) throw targetExists(output)
}

/** A block handed out and still held, or a leaf whose content is on disk: the block is `prefix ‖ content ‖ suffix`. */
type Held =
  | { bytes: Uint8Array, handouts: number }
  | { path: string, offset: number, length: number, prefix: Uint8Array, suffix: Uint8Array }

/**
 * Blocks lent by their source (views of the slabs a body was read into,
 * src/http/slab-get.ts): each is handed to the writer once only, and given
 * back with `done` once its content is on disk.
 */
export interface Lent {
  holds: (bytes: Uint8Array) => boolean
  done: (bytes: Uint8Array) => void
}

/** The blocks of a DFS CAR without duplicates, handed out in the order the walk asks for them. */
class DfsBlocks {
  private readonly held = new Map<string, Held>()
  private readonly iterator: AsyncIterator<CarBlock>
  /** the last error `load` threw: the stream's fault, not the content's */
  failure: unknown

  constructor (blocks: AsyncIterable<CarBlock>, private readonly lent?: Lent) {
    this.iterator = blocks[Symbol.asyncIterator]()
  }

  readonly load = async (cid: CID): Promise<Uint8Array> => {
    try {
      return await this.get(cid)
    } catch (err) {
      this.failure = err
      throw err
    }
  }

  private async get (cid: CID): Promise<Uint8Array> {
    const inline = inlined(cid)
    if (inline !== undefined) return inline
    const key = cidKey(cid)
    const held = this.held.get(key)
    if (held !== undefined) return 'bytes' in held ? this.again(held) : await this.rebuild(cid, held)
    const next = await this.iterator.next()
    if (next.done === true) {
      throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${cid.toString()} is linked but not in the CAR`, { details: { cid: cid.toString() } })
    }
    const block = next.value
    if (!block.cid.equals(cid)) {
      throw new CairnError('ERR_DAG_INVALID', `block ${String(block.cid)} is out of depth-first order; expected ${String(cid)}`)
    }
    this.held.set(key, { bytes: block.bytes, handouts: 1 })
    return block.bytes
  }

  private again (held: { bytes: Uint8Array, handouts: number }): Uint8Array {
    // a lent block goes back once its one write is done: a second hand-out before then gets a copy
    if (this.lent?.holds(held.bytes) === true) return new Uint8Array(held.bytes)
    held.handouts++
    return held.bytes
  }

  /** A leaf met again: its content read back from where it was written, between the bytes around it. */
  private async rebuild (cid: CID, at: Extract<Held, { path: string }>): Promise<Uint8Array> {
    const bytes = new Uint8Array(at.prefix.byteLength + at.length + at.suffix.byteLength)
    bytes.set(at.prefix, 0)
    bytes.set(at.suffix, at.prefix.byteLength + at.length)
    try {
      const handle = await open(at.path, 'r')
      try {
        await handle.read(bytes, at.prefix.byteLength, at.length, at.offset)
      } finally {
        await handle.close()
      }
      verifyBlock(cid, bytes)
    } catch (err) {
      // the local disk, not the stream, failed
      throw new UnpackOutputError(isCairnError(err) ? err : fromSystemError(err, at.path))
    }
    return bytes
  }

  /**
   * The writer has put a leaf's content on disk: the block is dropped and
   * rebuilt from there if met again. A block handed out once only goes back
   * to the buffer pool (raw leaves come from it): nothing else reads it.
   */
  readonly placed = (leaf: Block, data: Uint8Array, at: { path: string, offset: number }): void => {
    const key = cidKey(leaf.cid)
    const held = this.held.get(key)
    if (held === undefined || !('bytes' in held) || held.bytes !== leaf.bytes) return
    const start = data.byteOffset - leaf.bytes.byteOffset
    // the content must lie inside the block's own bytes (raw leaves; dag-pb leaves, decoded in place)
    if (data.buffer !== leaf.bytes.buffer || start < 0 || start + data.byteLength > leaf.bytes.byteLength) return
    this.held.set(key, {
      path: at.path,
      offset: at.offset,
      length: data.byteLength,
      prefix: leaf.bytes.slice(0, start),
      suffix: leaf.bytes.slice(start + data.byteLength)
    })
    if (this.lent?.holds(leaf.bytes) === true) this.lent.done(leaf.bytes)
    else if (held.handouts === 1) buffers.release(leaf.bytes)
  }

  /** Throws unless the stream ends here, once the walk is done. */
  async end (): Promise<void> {
    try {
      const next = await this.iterator.next()
      if (next.done === true) return
      throw new CairnError('ERR_DAG_INVALID', `block ${next.value.cid.toString()} is not part of the DAG being written (or comes after it)`)
    } catch (err) {
      this.failure = err
      throw err
    }
  }

  async close (): Promise<void> {
    await this.iterator.return?.()
  }
}

/**
 * Writes the UnixFS entry `root` at `output` from `blocks`, verified blocks
 * in depth-first order without duplicates. Errors about the content or the
 * local disk come as UnpackOutputError (final); anything else is about the
 * stream (another source may do better).
 */
export async function unpackStream (blocks: AsyncIterable<CarBlock>, root: CID, output: string, options: { force?: boolean, lent?: Lent } = {}): Promise<UnpackResult> {
  const source = new DfsBlocks(blocks, options.lent)
  let writer: TreeWriter | undefined
  try {
    writer = await TreeWriter.create(output, root)
    await writer.write(source.load, { placed: source.placed })
    await source.end()
    return await writer.commit(options)
  } catch (err) {
    await writer?.discard()
    if (err instanceof UnpackOutputError || err === source.failure) throw err
    throw isCairnError(err) ? new UnpackOutputError(err) : err
  } finally {
    await source.close()
  }
}
