/**
 * Writing a UnixFS entry to disk, read through the one reader: a file, a
 * directory tree or a symlink. Everything goes into a temporary sibling of
 * the output, renamed into place by `commit` (an existing target is replaced
 * only with `force`), so a failure leaves nothing behind. Names that could
 * escape their directory are refused; files are opened with `wx`, so nothing
 * is ever written through a link; symlinks are created as stored, never
 * followed.
 *
 * File content is written behind: up to WRITE_BEHIND bytes may sit in writes
 * not yet done while the next blocks are read.
 */
import { lstat, mkdir, open, rm, symlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { CID } from 'multiformats/cid'
import { CairnError, fromSystemError, isCairnError } from '../errors.js'
import { replaceTree, tempPathFor } from '../fs/atomic.js'
import { writeAll } from '../fs/write.js'
import type { Block, Load, UnpackResult } from './interface.js'
import { checkDirectoryNames, checkName, decodeNode, type FileNode } from './node.js'
import { directoryEntries, fileParts, type FilePart } from './reader.js'

/** Bytes of file content that may sit in writes not yet done. */
const WRITE_BEHIND = 16 * 1024 * 1024

/**
 * Told when a leaf's content is on disk, once its write is done: a source
 * holding the block may let it go and rebuild it from there if it is needed
 * again (see unpack-stream.ts).
 */
export type Placed = (leaf: Block, data: Uint8Array, at: { path: string, offset: number }) => void

export async function pathExists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw fromSystemError(err, path)
  }
}

export function targetExists (output: string): CairnError {
  return new CairnError('ERR_TARGET_EXISTS', `${output} already exists; use --force to replace it`)
}

export class TreeWriter {
  readonly result: UnpackResult
  private readonly writes: Array<{ done: Promise<void>, length: number }> = []
  private writing = 0
  private placed: Placed | undefined

  private constructor (private readonly output: string, private readonly target: string, private readonly temp: string, root: CID) {
    this.result = { root, output: target, files: 0, directories: 0, symlinks: 0, bytes: 0 }
  }

  /** A writer of the entry `root` at `output`; makes the parent directory. */
  static async create (output: string, root: CID): Promise<TreeWriter> {
    const target = resolve(output)
    const writer = new TreeWriter(output, target, tempPathFor(target), root)
    const parent = dirname(target)
    await writer.fs(async () => { await mkdir(parent, { recursive: true }) }, parent)
    return writer
  }

  /**
   * Writes the entry `root` into the temporary path, reading it with
   * `load`. Throws what `load` throws as it is; everything else is a
   * CairnError about the content or the local disk.
   */
  async write (load: Load, placed?: Placed): Promise<void> {
    this.placed = placed
    await this.entry(load, this.result.root, this.temp)
    await this.drain()
  }

  /** Moves the written tree into place; an existing target is replaced only with `force`. */
  async commit (options: { force?: boolean } = {}): Promise<UnpackResult> {
    const exists = await pathExists(this.target)
    if (exists && options.force !== true) throw targetExists(this.output)
    await this.fs(async () => { await replaceTree(this.temp, this.target, exists) }, this.target)
    return this.result
  }

  /** Waits for writes in flight and removes whatever was written. */
  async discard (): Promise<void> {
    await Promise.allSettled(this.writes.map(w => w.done))
    await rm(this.temp, { recursive: true, force: true })
  }

  private async entry (load: Load, cid: CID, path: string): Promise<void> {
    const node = decodeNode(cid, await load(cid))
    switch (node.type) {
      case 'symlink':
        await this.fs(async () => { await symlink(Buffer.from(node.target), path) }, path)
        this.result.symlinks++
        return
      case 'file':
        await this.file(load, node, path)
        return
      default:
        if (node.type === 'directory') checkDirectoryNames(node)
        await this.fs(async () => { await mkdir(path, { mode: 0o755 }) }, path)
        this.result.directories++
        for await (const child of directoryEntries(node, load)) {
          checkName(child.name, cid)
          await this.entry(load, child.cid, join(path, child.name))
        }
    }
  }

  private async file (load: Load, node: FileNode, path: string): Promise<void> {
    // 'wx': fails rather than write through anything already at `path`
    const handle = await this.fs(async () => await open(path, 'wx', 0o644), path)
    let written = 0
    let done = false
    try {
      for await (const part of fileParts(node, load)) {
        if (part.data.byteLength === 0) continue
        if (written + part.data.byteLength > node.size) {
          throw new CairnError('ERR_DAG_INVALID', `file ${node.cid.toString()} declares ${node.size} bytes but holds more`)
        }
        this.put(handle, path, written, part)
        written += part.data.byteLength
        await this.drain(WRITE_BEHIND)
      }
      if (written !== node.size) {
        throw new CairnError('ERR_DAG_INVALID', `file ${node.cid.toString()} declares ${node.size} bytes but holds ${written}`)
      }
      // its writes are done before its handle closes
      await this.drain()
      done = true
    } finally {
      if (done) {
        await this.fs(async () => { await handle.close() }, path)
      } else {
        await Promise.allSettled(this.writes.map(w => w.done))
        await handle.close().catch(() => {})
      }
    }
    this.result.files++
    this.result.bytes += written
  }

  /** Starts writing a part's data at `offset`; drained by `drain`. */
  private put (handle: FileHandle, path: string, offset: number, part: FilePart): void {
    const { data } = part
    const placed = part.leaf ? this.placed : undefined
    const done = writeAll(handle, data, offset).then(
      () => { placed?.({ cid: part.cid, bytes: part.bytes }, data, { path, offset }) },
      err => { throw fromSystemError(err, path) })
    done.catch(() => {})
    this.writes.push({ done, length: data.byteLength })
    this.writing += data.byteLength
  }

  private async drain (limit = 0): Promise<void> {
    while (this.writing > limit) {
      const oldest = this.writes.shift() as { done: Promise<void>, length: number }
      this.writing -= oldest.length
      await oldest.done
    }
  }

  /** Runs a change to the output; a failure becomes a CairnError naming `path`. */
  private async fs<T> (op: () => Promise<T>, path: string): Promise<T> {
    try {
      return await op()
    } catch (err) {
      throw isCairnError(err) ? err : fromSystemError(err, path)
    }
  }
}
