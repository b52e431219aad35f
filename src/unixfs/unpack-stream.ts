/**
 * Writing UnixFS while its CAR streams in: the counterpart of `unpack` for a
 * CAR that arrives in depth-first pre-order without duplicates (Trustless
 * Gateway `order=dfs; dups=n`, what `cairn get` asks providers for). In that
 * order a file's leaves arrive in content order, so each block is written as
 * it passes and nothing is spooled or read back.
 *
 * Blocks must come verified against their CIDs (`readCar`). The writer walks
 * the DAG in the same order and refuses any block that is not the next one
 * (ERR_DAG_INVALID); a block the walk meets again (dups=n leaves it out) is
 * rebuilt from the nodes kept in memory (those with links, and small ones)
 * and the content already written. Everything goes into a temporary sibling
 * of `output`, renamed into place only once the whole DAG has been walked,
 * so a failure leaves nothing behind, as with `unpack`.
 */
import { lstat, mkdir, open, rm, symlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { CairnError, fromSystemError } from '../errors.js'
import { cidKey, IDENTITY } from '../car/hash.js'
import type { CarBlock } from '../car/interface.js'
import { replaceTree } from '../fs/atomic.js'
import { release, removeStaleTemps, tempPathFor } from '../fs/temp.js'
import { buffers } from '../fs/pool.js'
import { checkName, type UnpackResult } from './exporter.js'

/**
 * An error about the content itself or the local disk, not about the source
 * that sent it: another provider would give the same DAG, so it is final.
 */
export class UnpackOutputError extends Error {
  constructor (readonly error: CairnError) {
    super(error.message)
  }
}

/** A dag-pb node without links up to this size is kept in memory whole. */
const KEEP_LEAF_NODE = 4096

/** Bytes of file content that may sit in writes not yet done. */
const WRITE_BEHIND = 16 * 1024 * 1024

interface OpenFile {
  handle: FileHandle
  path: string
  size: number
  written: number
  cid: CID
}

type Task =
  | { kind: 'entry', cid: CID, path: string }
  | { kind: 'content', cid: CID, file: OpenFile }
  | { kind: 'shard', cid: CID, path: string }
  | { kind: 'close', file: OpenFile }

function decodePb (cid: CID, bytes: Uint8Array): { node: dagPb.PBNode, unixfs: UnixFS } {
  try {
    const node = dagPb.decode(bytes)
    if (node.Data === undefined) throw new Error('no Data field')
    return { node, unixfs: UnixFS.unmarshal(node.Data) }
  } catch (err) {
    throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not a UnixFS node: ${(err as Error).message}`, { cause: err })
  }
}

async function pathExists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw fromSystemError(err, path)
  }
}

/** Refuses early, before any byte is fetched, when `output` exists and may not be replaced. */
export async function checkOutput (output: string, options: { force?: boolean } = {}): Promise<void> {
  if (options.force !== true && await pathExists(resolve(output))) {
    throw new CairnError('ERR_TARGET_EXISTS', `${output} already exists; use --force to replace it`)
  }
}

class StreamWriter {
  readonly result: UnpackResult
  private readonly tasks: Task[]
  /** nodes with links, by CID: what a repeated subtree is rebuilt from */
  private readonly nodes = new Map<string, Uint8Array>()
  /** where each leaf's content was written */
  private readonly leaves = new Map<string, { path: string, offset: number, length: number }>()
  private readonly writes: Array<{ done: Promise<void>, length: number }> = []
  private writing = 0

  constructor (root: CID, temp: string, output: string) {
    this.tasks = [{ kind: 'entry', cid: root, path: temp }]
    this.result = { root, output, files: 0, directories: 0, symlinks: 0, bytes: 0 }
  }

  /** Takes the next block of the stream. */
  async add (block: CarBlock): Promise<void> {
    await this.settle()
    const task = this.tasks.pop()
    if (task === undefined || task.kind === 'close') {
      throw new CairnError('ERR_DAG_INVALID', `block ${block.cid.toString()} is not part of the DAG being written (or comes after it)`)
    }
    if (!task.cid.equals(block.cid)) {
      throw new CairnError('ERR_DAG_INVALID', `block ${String(block.cid)} is out of depth-first order; expected ${String(task.cid)}`)
    }
    await this.run(task, block.bytes)
    await this.drain(WRITE_BEHIND)
  }

  /** Runs every task that needs no block from the stream: closes, identity blocks, repeats. */
  async settle (): Promise<void> {
    for (;;) {
      const task = this.tasks.at(-1)
      if (task === undefined) return
      if (task.kind === 'close') {
        this.tasks.pop()
        await this.close(task.file)
        continue
      }
      if (task.cid.multihash.code === IDENTITY) {
        this.tasks.pop()
        await this.run(task, task.cid.multihash.digest)
        continue
      }
      const key = cidKey(task.cid)
      const node = this.nodes.get(key)
      if (node !== undefined) {
        this.tasks.pop()
        await this.run(task, node)
        continue
      }
      const leaf = this.leaves.get(key)
      if (leaf !== undefined) {
        this.tasks.pop()
        await this.repeatLeaf(task, leaf)
        continue
      }
      return
    }
  }

  /** Throws unless the whole DAG was walked. */
  async finish (): Promise<void> {
    await this.settle()
    const next = this.tasks.at(-1)
    if (next !== undefined && next.kind !== 'close') {
      throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${next.cid.toString()} is linked but not in the CAR`, { details: { cid: next.cid.toString() } })
    }
    await this.drain()
  }

  async abort (): Promise<void> {
    await Promise.allSettled(this.writes.map(w => w.done))
    for (const task of this.tasks) {
      if (task.kind === 'close' || task.kind === 'content') await task.file.handle.close().catch(() => {})
    }
  }

  private async run (task: Exclude<Task, { kind: 'close' }>, bytes: Uint8Array): Promise<void> {
    const { cid } = task
    if (cid.code !== raw.code && cid.code !== dagPb.code) {
      throw content(new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not UnixFS (codec 0x${cid.code.toString(16)})`))
    }
    if (task.kind === 'content') {
      await this.content(task.file, cid, bytes)
      return
    }
    if (task.kind === 'shard') {
      const { node, unixfs } = decodeContent(cid, bytes)
      if (unixfs.type !== 'hamt-sharded-directory') throw content(new CairnError('ERR_DAG_INVALID', `a shard link points to a ${unixfs.type} node ${cid.toString()}`))
      this.keep(cid, bytes, node)
      this.pushShard(cid, node, task.path)
      return
    }
    const { path } = task
    if (cid.code === raw.code) {
      const file = await this.openFile(path, cid, bytes.byteLength)
      this.tasks.push({ kind: 'close', file })
      await this.content(file, cid, bytes)
      return
    }
    const { node, unixfs } = decodeContent(cid, bytes)
    this.keep(cid, bytes, node)
    switch (unixfs.type) {
      case 'file':
      case 'raw': {
        const file = await this.openFile(path, cid, Number(unixfs.fileSize()))
        this.tasks.push({ kind: 'close', file })
        await this.content(file, cid, bytes, node, unixfs)
        return
      }
      case 'directory': {
        const names = new Set<string>()
        for (const link of node.Links) {
          const name = link.Name ?? ''
          guard(() => { checkName(name, cid) })
          if (names.has(name)) throw content(new CairnError('ERR_UNSAFE_PATH', `directory ${cid.toString()} holds ${JSON.stringify(name)} twice`))
          names.add(name)
        }
        await this.fs(async () => { await mkdir(path, { mode: 0o755 }) }, path)
        this.result.directories++
        for (let i = node.Links.length - 1; i >= 0; i--) {
          const link = node.Links[i]
          this.tasks.push({ kind: 'entry', cid: link.Hash, path: join(path, link.Name ?? '') })
        }
        return
      }
      case 'hamt-sharded-directory':
        await this.fs(async () => { await mkdir(path, { mode: 0o755 }) }, path)
        this.result.directories++
        this.pushShard(cid, node, path)
        return
      case 'symlink':
        await this.fs(async () => { await symlink(Buffer.from(unixfs.data ?? new Uint8Array()), path) }, path)
        this.result.symlinks++
        return
      default:
        throw content(new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is a UnixFS ${unixfs.type} node, which cannot be exported`))
    }
  }

  private pushShard (cid: CID, node: dagPb.PBNode, path: string): void {
    for (let i = node.Links.length - 1; i >= 0; i--) {
      const link = node.Links[i]
      const label = link.Name ?? ''
      if (label.length > 2) {
        const name = label.slice(2)
        guard(() => { checkName(name, cid) })
        this.tasks.push({ kind: 'entry', cid: link.Hash, path: join(path, name) })
      } else if (label.length === 2) {
        this.tasks.push({ kind: 'shard', cid: link.Hash, path })
      } else {
        throw content(new CairnError('ERR_DAG_INVALID', `malformed shard link name ${JSON.stringify(label)} in ${cid.toString()}`))
      }
    }
  }

  /** Nodes with links and small nodes (empty files, directories, symlinks) are kept; a leaf's content is found on disk. */
  private keep (cid: CID, bytes: Uint8Array, node: dagPb.PBNode): void {
    if (node.Links.length > 0 || bytes.byteLength <= KEEP_LEAF_NODE) this.nodes.set(cidKey(cid), bytes)
  }

  /** A block of `file`'s content, at the file's current end. */
  private async content (file: OpenFile, cid: CID, bytes: Uint8Array, decoded?: dagPb.PBNode, unixfs?: UnixFS): Promise<void> {
    if (cid.code === raw.code) {
      // nothing else holds a raw leaf: once written, its buffer goes back to the pool
      this.write(file, cid, bytes, true)
      return
    }
    let node = decoded
    let fs = unixfs
    if (node === undefined || fs === undefined) {
      const d = decodeContent(cid, bytes)
      node = d.node
      fs = d.unixfs
      this.keep(cid, bytes, node)
    }
    if (fs.type !== 'file' && fs.type !== 'raw') throw content(new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} links to a ${fs.type}`))
    if (fs.data !== undefined && fs.data.byteLength > 0) this.write(file, node.Links.length === 0 ? cid : undefined, fs.data)
    for (let i = node.Links.length - 1; i >= 0; i--) this.tasks.push({ kind: 'content', cid: node.Links[i].Hash, file })
  }

  private write (file: OpenFile, leaf: CID | undefined, bytes: Uint8Array, release = false): void {
    const offset = file.written
    if (offset + bytes.byteLength > file.size) {
      throw content(new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} declares ${file.size} bytes but holds more`))
    }
    file.written += bytes.byteLength
    this.result.bytes += bytes.byteLength
    if (leaf !== undefined) this.leaves.set(cidKey(leaf), { path: file.path, offset, length: bytes.byteLength })
    const done = writeAll(file.handle, bytes, offset).then(
      () => { if (release) buffers.release(bytes) },
      err => { throw new UnpackOutputError(fromSystemError(err, file.path)) })
    done.catch(() => {})
    this.writes.push({ done, length: bytes.byteLength })
    this.writing += bytes.byteLength
  }

  private async drain (limit = 0): Promise<void> {
    while (this.writing > limit) {
      const oldest = this.writes.shift() as { done: Promise<void>, length: number }
      await oldest.done
      this.writing -= oldest.length
    }
  }

  /** A leaf met again: its content is copied from where it was first written. */
  private async repeatLeaf (task: Exclude<Task, { kind: 'close' }>, at: { path: string, offset: number, length: number }): Promise<void> {
    await this.drain()
    const bytes = new Uint8Array(at.length)
    await this.fs(async () => {
      const handle = await open(at.path, 'r')
      try {
        await handle.read(bytes, 0, at.length, at.offset)
      } finally {
        await handle.close()
      }
    }, at.path)
    if (task.kind === 'content') {
      this.write(task.file, undefined, bytes)
    } else if (task.kind === 'entry') {
      const file = await this.openFile(task.path, task.cid, at.length)
      this.write(file, undefined, bytes)
      await this.close(file)
    } else {
      throw content(new CairnError('ERR_DAG_INVALID', `a shard link points to the file content ${task.cid.toString()}`))
    }
  }

  private async openFile (path: string, cid: CID, size: number): Promise<OpenFile> {
    // 'wx': fails rather than write through anything already at `path`
    const handle = await this.fs(async () => await open(path, 'wx', 0o644), path)
    return { handle, path, size, written: 0, cid }
  }

  private async close (file: OpenFile): Promise<void> {
    await this.drain(WRITE_BEHIND)
    if (file.written !== file.size) {
      throw content(new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} declares ${file.size} bytes but holds ${file.written}`))
    }
    // its writes are done before its handle closes
    await this.drain()
    await this.fs(async () => { await file.handle.close() }, file.path)
    this.result.files++
  }

  /** Runs a change to the output; its failure is final. */
  async fs<T> (op: () => Promise<T>, path: string): Promise<T> {
    try {
      return await op()
    } catch (err) {
      throw new UnpackOutputError(err instanceof CairnError ? err : fromSystemError(err, path))
    }
  }
}

function content (err: CairnError): UnpackOutputError {
  return new UnpackOutputError(err)
}

function guard (check: () => void): void {
  try {
    check()
  } catch (err) {
    throw err instanceof CairnError ? content(err) : err
  }
}

function decodeContent (cid: CID, bytes: Uint8Array): { node: dagPb.PBNode, unixfs: UnixFS } {
  try {
    return decodePb(cid, bytes)
  } catch (err) {
    throw err instanceof CairnError ? content(err) : err
  }
}

async function writeAll (handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done)
    done += bytesWritten
  }
}

/**
 * Writes the UnixFS entry `root` at `output` from `blocks`, verified blocks
 * in depth-first order without duplicates. Errors about the content or the
 * local disk come as UnpackOutputError (final); anything else is about the
 * stream (another source may do better).
 */
export async function unpackStream (blocks: AsyncIterable<CarBlock>, root: CID, output: string, options: { force?: boolean } = {}): Promise<UnpackResult> {
  const target = resolve(output)
  const parent = dirname(target)
  await removeStaleTemps(target)
  const temp = tempPathFor(target)
  const writer = new StreamWriter(root, temp, target)
  try {
    await writer.fs(async () => { await mkdir(parent, { recursive: true }) }, parent)
    for await (const block of blocks) await writer.add(block)
    await writer.finish()
    const exists = await pathExists(target)
    if (exists && options.force !== true) {
      throw content(new CairnError('ERR_TARGET_EXISTS', `${output} already exists; use --force to replace it`))
    }
    await writer.fs(async () => { await replaceTree(temp, target, exists) }, target)
    return writer.result
  } catch (err) {
    await writer.abort()
    await rm(temp, { recursive: true, force: true })
    release(temp)
    throw err
  }
}
