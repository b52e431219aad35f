/**
 * Writing a UnixFS entry to disk, read through the one reader: a file, a
 * directory tree or a symlink, as stored or as another reading of the same
 * blocks gives them (an encrypted tree, decrypted). Everything goes into a temporary sibling of
 * the output, renamed into place by `commit` (an existing target is replaced
 * only with `force`), so a failure leaves nothing behind; an interrupted run
 * removes it on SIGINT/SIGTERM, and a killed one's is removed by the next
 * run onto the same target (src/fs/temp.ts). Names that could
 * escape their directory are refused; files are opened with `wx`, so nothing
 * is ever written through a link; symlinks are created as stored, never
 * followed.
 *
 * File content is written behind: up to WRITE_BEHIND bytes may sit in writes
 * not yet done while the next blocks are read. Consecutive chunks are
 * gathered into one positional `writev` of up to GATHER bytes, and a file's
 * writes run one after another: many 1 MiB writes to one file at once on the
 * libuv pool (as a batch of verified leaves gives them) cost more system
 * time, the threads contending for the file's lock, than they save.
 */
import { lstat, mkdir, open, rm, symlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { CID } from 'multiformats/cid'
import { CairnError, fromSystemError, isCairnError } from '../errors.js'
import { replaceTree } from '../fs/atomic.js'
import { release, removeStaleTemps, tempPathFor } from '../fs/temp.js'
import { writevAll } from '../fs/write.js'
import type { Block, Load, UnpackResult } from './interface.js'
import { checkDirectoryNames, checkName, decodeNode, type DirectoryNode, type FileNode, type SymlinkNode } from './node.js'
import { directoryEntries, fileParts } from './reader.js'

/** Bytes of file content that may sit in writes not yet done. */
const WRITE_BEHIND = 16 * 1024 * 1024
/** Bytes of a file's consecutive chunks written by one `writev`. */
const GATHER = 4 * 1024 * 1024

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

/** An entry of a directory as it is written: a child block under a name, or a symbolic link the directory itself names. */
export type TreeEntry = { name: string, cid: CID } | { name: string, target: Uint8Array }

/** Bytes of a file, in order; `leaf` when they lie inside that leaf block's own bytes, which `Placed` is then told of. */
export interface FileChunk {
  data: Uint8Array
  leaf?: Block
}

/**
 * How the blocks of a tree read as directories, files and symlinks: UnixFS
 * as stored (`storedTree`), or another reading of the same blocks, such as
 * an encrypted tree's (crypto/tree.ts), whose names and content are
 * decrypted. The writer refuses unsafe names whatever the reading says.
 */
export interface TreeReading {
  /** a directory's entries, in the order to write them */
  entries: (dir: DirectoryNode, load: Load) => AsyncIterable<TreeEntry>
  /** a file's content, in order; throws when the blocks do not hold what the node declares */
  content: (file: FileNode, load: Load) => AsyncIterable<FileChunk>
  /** a symlink node's target */
  symlink: (node: SymlinkNode) => Uint8Array
}

/** UnixFS as stored: directories by their links, files by their blocks' data. */
export const storedTree: TreeReading = {
  async * entries (dir, load) {
    if (dir.type === 'directory') checkDirectoryNames(dir)
    yield * directoryEntries(dir, load)
  },
  async * content (file, load) {
    let read = 0
    for await (const part of fileParts(file, load)) {
      if (part.data.byteLength === 0) continue
      read += part.data.byteLength
      if (read > file.size) throw new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} declares ${file.size} bytes but holds more`)
      yield { data: part.data, leaf: part.leaf ? { cid: part.cid, bytes: part.bytes } : undefined }
    }
    if (read !== file.size) throw new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} declares ${file.size} bytes but holds ${read}`)
  },
  symlink: node => node.target
}

export interface WriteOptions {
  /** told when a leaf's content is on disk */
  placed?: Placed
  /** how the blocks read; `storedTree` by default */
  reading?: TreeReading
}

export class TreeWriter {
  readonly result: UnpackResult
  private readonly writes: Array<{ done: Promise<void>, length: number }> = []
  private writing = 0
  private placed: Placed | undefined
  private reading: TreeReading = storedTree

  private constructor (private readonly output: string, private readonly target: string, private readonly temp: string, root: CID) {
    this.result = { root, output: target, files: 0, directories: 0, symlinks: 0, bytes: 0 }
  }

  /** A writer of the entry `root` at `output`; makes the parent directory. */
  static async create (output: string, root: CID): Promise<TreeWriter> {
    const target = resolve(output)
    // what an interrupted run left beside the target (its pid is gone: src/fs/temp.ts)
    await removeStaleTemps(target)
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
  async write (load: Load, options: WriteOptions = {}): Promise<void> {
    this.placed = options.placed
    this.reading = options.reading ?? storedTree
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
    release(this.temp)
  }

  private async entry (load: Load, cid: CID, path: string): Promise<void> {
    const node = decodeNode(cid, await load(cid))
    switch (node.type) {
      case 'symlink':
        await this.symlink(this.reading.symlink(node), path)
        return
      case 'file':
        await this.file(load, node, path)
        return
      default:
        await this.fs(async () => { await mkdir(path, { mode: 0o755 }) }, path)
        this.result.directories++
        for await (const child of this.reading.entries(node, load)) {
          checkName(child.name, cid)
          const at = join(path, child.name)
          if ('target' in child) await this.symlink(child.target, at)
          else await this.entry(load, child.cid, at)
        }
    }
  }

  private async symlink (target: Uint8Array, path: string): Promise<void> {
    await this.fs(async () => { await symlink(Buffer.from(target), path) }, path)
    this.result.symlinks++
  }

  private async file (load: Load, node: FileNode, path: string): Promise<void> {
    // 'wx': fails rather than write through anything already at `path`
    const handle = await this.fs(async () => await open(path, 'wx', 0o644), path)
    let written = 0
    let gathered: FileChunk[] = []
    let gatheredBytes = 0
    let done = false
    try {
      for await (const chunk of this.reading.content(node, load)) {
        if (chunk.data.byteLength === 0) continue
        gathered.push(chunk)
        gatheredBytes += chunk.data.byteLength
        if (gatheredBytes < GATHER) continue
        this.put(handle, path, written, gathered)
        written += gatheredBytes
        gathered = []
        gatheredBytes = 0
        await this.drain(WRITE_BEHIND)
      }
      if (gathered.length > 0) this.put(handle, path, written, gathered)
      written += gatheredBytes
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

  /** Starts writing consecutive chunks from `offset` once the writes before are done; drained by `drain`. */
  private put (handle: FileHandle, path: string, offset: number, chunks: FileChunk[]): void {
    const placed = this.placed
    const length = chunks.reduce((sum, c) => sum + c.data.byteLength, 0)
    const before = this.writes.at(-1)?.done ?? Promise.resolve()
    const done = before.then(async () => { await writevAll(handle, chunks.map(c => c.data), offset) }).then(
      () => {
        let at = offset
        for (const { data, leaf } of chunks) {
          if (leaf !== undefined) placed?.(leaf, data, { path, offset: at })
          at += data.byteLength
        }
      },
      err => { throw isCairnError(err) ? err : fromSystemError(err, path) })
    done.catch(() => {})
    this.writes.push({ done, length })
    this.writing += length
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
