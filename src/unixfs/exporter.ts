/**
 * Reading UnixFS back out of a CAR on disk: `ls` lists the entries, `unpack`
 * writes them. The CAR is indexed once (every block verified against its
 * CID), the DAG is checked complete from the root, and each block is verified
 * again whenever it is read, so nothing unverified reaches a user.
 *
 * Works with any block order (ipfs-car writes leaves before their parents),
 * CIDv0 and v1, raw and dag-pb leaves, HAMT-sharded directories and symlinks.
 */
import { createReadStream } from 'node:fs'
import { lstat, mkdir, open, rm, symlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { CairnError, fromSystemError } from '../errors.js'
import { cidKey, IDENTITY, verifyBlock } from '../car/hash.js'
import { readCar } from '../car/reader.js'
import { linksOf } from '../car/links.js'
import { replaceTree } from '../fs/atomic.js'
import { release, removeStaleTemps, tempPathFor } from '../fs/temp.js'

export type EntryType = 'file' | 'directory' | 'symlink'

export interface Entry {
  cid: CID
  /** the root CID, then `/`-separated names below it */
  path: string
  /** content bytes for a file, target bytes for a symlink, 0 for a directory */
  size: number
  type: EntryType
}

/** A CAR file opened for random access: its root and where each block lies. */
export interface CarFile {
  readonly path: string
  readonly root: CID
  readonly blocks: number
  /** reads a block by CID, verifying it again */
  get: (cid: CID) => Promise<Uint8Array>
  close: () => Promise<void>
}

export interface UnpackResult {
  root: CID
  output: string
  files: number
  directories: number
  symlinks: number
  bytes: number
}

/**
 * Opens and verifies a CAR file: header, every block's hash, and that every
 * block reachable from the root is present. With `checkNames`, also refuses
 * directory entry names that could escape a target directory.
 */
export async function openCarFile (path: string, options: { checkNames?: boolean } = {}): Promise<CarFile> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw fromSystemError(err, path)
  }
  try {
    let root: CID | undefined
    const index = new Map<string, { offset: number, length: number }>()
    const source = createReadStream(path, { fd: handle, autoClose: false, start: 0, highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>
    // only where each block lies is kept here (every read verifies again), so leaves are hashed in place
    for await (const block of readCar(source, { onHeader: h => { root = h.roots[0] }, rawBytes: false })) {
      index.set(cidKey(block.cid), { offset: block.blockOffset, length: block.length })
    }
    if (root === undefined) throw new Error('internal: no header')
    const get = async (cid: CID): Promise<Uint8Array> => {
      if (cid.multihash.code === IDENTITY) return cid.multihash.digest
      const at = index.get(cidKey(cid))
      if (at === undefined) throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${cid.toString()} is not in ${path}`)
      const bytes = new Uint8Array(at.length)
      let done = 0
      while (done < at.length) {
        const { bytesRead } = await handle.read(bytes, done, at.length - done, at.offset + done)
        if (bytesRead === 0) throw new CairnError('ERR_CAR_TRUNCATED', `${path} was truncated while being read`)
        done += bytesRead
      }
      verifyBlock(cid, bytes)
      return bytes
    }
    const car: CarFile = { path, root, blocks: index.size, get, close: async () => { await handle.close() } }
    await checkComplete(car, index, options.checkNames === true)
    return car
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** Walks every block reachable from the root, before anything is listed or written. */
async function checkComplete (car: CarFile, index: Map<string, unknown>, checkNames: boolean): Promise<void> {
  const seen = new Set<string>()
  const stack: CID[] = [car.root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (cid.multihash.code === IDENTITY) continue
    const key = cidKey(cid)
    if (seen.has(key)) continue
    seen.add(key)
    if (!index.has(key)) {
      if (cid.equals(car.root)) throw new CairnError('ERR_CAR_ROOT_MISSING', `the root ${cid.toString()} is not in ${car.path}`)
      throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${cid.toString()} is linked but not in ${car.path}`, { details: { cid: cid.toString() } })
    }
    if (cid.code === raw.code) continue
    const bytes = await car.get(cid)
    if (checkNames && cid.code === dagPb.code) checkEntryNames(cid, bytes)
    stack.push(...linksOf(cid, bytes))
  }
}

function checkEntryNames (cid: CID, bytes: Uint8Array): void {
  const { node, unixfs } = decodePb(cid, bytes)
  if (unixfs.type === 'directory') {
    const names = new Set<string>()
    for (const link of node.Links) {
      const name = link.Name ?? ''
      checkName(name, cid)
      if (names.has(name)) throw new CairnError('ERR_UNSAFE_PATH', `directory ${cid.toString()} holds ${JSON.stringify(name)} twice`)
      names.add(name)
    }
  } else if (unixfs.type === 'hamt-sharded-directory') {
    for (const link of node.Links) {
      const name = link.Name ?? ''
      if (name.length > 2) checkName(name.slice(2), cid)
    }
  }
}

/** A name that would write outside the directory holding it, or not be a name at all. */
export function checkName (name: string, where: CID): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new CairnError('ERR_UNSAFE_PATH', `refusing entry name ${JSON.stringify(name)} in ${where.toString()}: it is not a plain file name`)
  }
}

function decodePb (cid: CID, bytes: Uint8Array): { node: dagPb.PBNode, unixfs: UnixFS } {
  try {
    const node = dagPb.decode(bytes)
    if (node.Data === undefined) throw new Error('no Data field')
    return { node, unixfs: UnixFS.unmarshal(node.Data) }
  } catch (err) {
    throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not a UnixFS node: ${(err as Error).message}`, { cause: err })
  }
}

type Resolved =
  | { type: 'file', cid: CID, size: number, bytes: Uint8Array, node?: dagPb.PBNode, unixfs?: UnixFS }
  | { type: 'directory', cid: CID, node: dagPb.PBNode, unixfs: UnixFS }
  | { type: 'symlink', cid: CID, target: Uint8Array }

async function resolveEntry (car: CarFile, cid: CID): Promise<Resolved> {
  const bytes = await car.get(cid)
  if (cid.code === raw.code) return { type: 'file', cid, size: bytes.byteLength, bytes }
  if (cid.code !== dagPb.code) throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not UnixFS (codec 0x${cid.code.toString(16)})`)
  const { node, unixfs } = decodePb(cid, bytes)
  switch (unixfs.type) {
    case 'file':
    case 'raw':
      return { type: 'file', cid, size: Number(unixfs.fileSize()), bytes, node, unixfs }
    case 'directory':
    case 'hamt-sharded-directory':
      return { type: 'directory', cid, node, unixfs }
    case 'symlink':
      return { type: 'symlink', cid, target: unixfs.data ?? new Uint8Array() }
    default:
      throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is a UnixFS ${unixfs.type} node, which cannot be exported`)
  }
}

/** The entries of a directory node, HAMT shards flattened, in link order. */
async function * directoryEntries (car: CarFile, dir: Extract<Resolved, { type: 'directory' }>): AsyncGenerator<{ name: string, cid: CID }> {
  if (dir.unixfs.type === 'directory') {
    for (const link of dir.node.Links) yield { name: link.Name ?? '', cid: link.Hash }
    return
  }
  yield * shardEntries(car, dir.cid, dir.node)
}

async function * shardEntries (car: CarFile, cid: CID, node: dagPb.PBNode): AsyncGenerator<{ name: string, cid: CID }> {
  for (const link of node.Links) {
    const label = link.Name ?? ''
    if (label.length > 2) {
      yield { name: label.slice(2), cid: link.Hash }
    } else if (label.length === 2) {
      const sub = decodePb(link.Hash, await car.get(link.Hash))
      if (sub.unixfs.type !== 'hamt-sharded-directory') throw new CairnError('ERR_DAG_INVALID', `shard link ${label} in ${cid.toString()} points to a ${sub.unixfs.type} node`)
      yield * shardEntries(car, link.Hash, sub.node)
    } else {
      throw new CairnError('ERR_DAG_INVALID', `malformed shard link name ${JSON.stringify(label)} in ${cid.toString()}`)
    }
  }
}

/** The bytes of a file, block by block, in order. */
async function * fileContent (car: CarFile, entry: Extract<Resolved, { type: 'file' }>): AsyncGenerator<Uint8Array> {
  if (entry.node === undefined || entry.unixfs === undefined) {
    yield entry.bytes
    return
  }
  if (entry.unixfs.data !== undefined && entry.unixfs.data.byteLength > 0) yield entry.unixfs.data
  for (const link of entry.node.Links) {
    const child = await resolveEntry(car, link.Hash)
    if (child.type !== 'file') throw new CairnError('ERR_DAG_INVALID', `file ${entry.cid.toString()} links to a ${child.type}`)
    yield * fileContent(car, child)
  }
}

/** Every entry under the root, depth first, the root first. */
export async function * ls (car: CarFile): AsyncGenerator<Entry> {
  yield * list(car, car.root, car.root.toString())
}

async function * list (car: CarFile, cid: CID, path: string): AsyncGenerator<Entry> {
  const entry = await resolveEntry(car, cid)
  switch (entry.type) {
    case 'file': yield { cid, path, size: entry.size, type: 'file' }; return
    case 'symlink': yield { cid, path, size: entry.target.byteLength, type: 'symlink' }; return
    case 'directory':
      yield { cid, path, size: 0, type: 'directory' }
      for await (const child of directoryEntries(car, entry)) {
        yield * list(car, child.cid, `${path}/${child.name}`)
      }
  }
}

/** Lists a CAR file (see `ls`), verifying it first. */
export async function * lsCarFile (path: string): AsyncGenerator<Entry> {
  const car = await openCarFile(path)
  try {
    yield * ls(car)
  } finally {
    await car.close()
  }
}

/**
 * Verifies a CAR file and writes its root entry at `output`: a file, a
 * directory tree or a symlink. Nothing is written until the whole DAG is
 * verified; the tree is written into a temporary sibling of `output` and
 * renamed into place, so a failure leaves nothing behind. Symlinks are
 * created as they are and never followed while writing.
 */
export async function unpack (carPath: string, output: string, options: { force?: boolean } = {}): Promise<UnpackResult> {
  const target = resolve(output)
  const exists = await pathExists(target)
  if (exists && options.force !== true) {
    throw new CairnError('ERR_TARGET_EXISTS', `${output} already exists; use --force to replace it`)
  }
  const car = await openCarFile(carPath, { checkNames: true })
  const parent = dirname(target)
  await removeStaleTemps(target)
  const temp = tempPathFor(target)
  const result: UnpackResult = { root: car.root, output: target, files: 0, directories: 0, symlinks: 0, bytes: 0 }
  try {
    await mkdir(parent, { recursive: true }).catch(err => { throw fromSystemError(err, parent) })
    await writeEntry(car, car.root, temp, result)
    await replaceTree(temp, target, exists)
    return result
  } catch (err) {
    await rm(temp, { recursive: true, force: true })
    release(temp)
    throw err instanceof CairnError ? err : fromSystemError(err, target)
  } finally {
    await car.close()
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

async function writeEntry (car: CarFile, cid: CID, path: string, result: UnpackResult): Promise<void> {
  const entry = await resolveEntry(car, cid)
  switch (entry.type) {
    case 'symlink':
      await symlink(Buffer.from(entry.target), path)
      result.symlinks++
      return
    case 'file': {
      // 'wx': fails rather than write through anything already at `path`
      const handle = await open(path, 'wx', 0o644)
      let written = 0
      try {
        for await (const chunk of fileContent(car, entry)) {
          await handle.write(chunk)
          written += chunk.byteLength
        }
      } finally {
        await handle.close()
      }
      if (written !== entry.size) {
        throw new CairnError('ERR_DAG_INVALID', `file ${cid.toString()} declares ${entry.size} bytes but holds ${written}`)
      }
      result.files++
      result.bytes += written
      return
    }
    case 'directory': {
      await mkdir(path, { mode: 0o755 })
      result.directories++
      for await (const child of directoryEntries(car, entry)) {
        checkName(child.name, cid)
        await writeEntry(car, child.cid, join(path, child.name), result)
      }
    }
  }
}
