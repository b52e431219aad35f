/**
 * The one UnixFS reader, over any source of verified blocks (a CAR file on
 * disk, a DFS CAR as it streams in, the provider's block store): path
 * resolution through directories and HAMT shards, directory entries, file
 * content block by block, and listing. ls, unpack, get and the gateway all
 * read UnixFS through here, as helia's commands all read it through
 * ipfs-unixfs-exporter.
 *
 * Every walk is depth first in link order, the order of a DFS CAR, so a
 * source that can only hand out the next block of a stream serves it too.
 */
import type { CID } from 'multiformats/cid'
import { DAG_PB } from '../codecs.js'
import { CairnError } from '../errors.js'
import { findInShard, walkShard } from './hamt.js'
import type { Block, ByteRange, Entry, Load } from './interface.js'
import { decodeNode, readNode, type DirectoryNode, type FileNode } from './node.js'

/** The entries of a directory, HAMT shards flattened, in link order. */
export async function * directoryEntries (dir: DirectoryNode, load: Load): AsyncGenerator<{ name: string, cid: CID }> {
  if (dir.type === 'directory') {
    for (const link of dir.pb.Links) yield { name: link.Name ?? '', cid: link.Hash }
    return
  }
  for await (const item of walkShard(dir, load)) {
    if ('name' in item) yield item
  }
}

export interface FilePart extends Block {
  /** the file's bytes this block carries itself (all of a raw leaf's, a dag-pb node's Data) */
  data: Uint8Array
  /** the block links to nothing: once its data is used, nothing reads it again */
  leaf: boolean
}

const EMPTY = new Uint8Array(0)

/**
 * The blocks of a file, depth first, each with the bytes it carries: in
 * order, their data is the file. With `range`, only the blocks that cover
 * it (the sizes of the children are read from the node, UnixFS `blocksizes`).
 */
export async function * fileParts (file: FileNode, load: Load, range?: ByteRange): AsyncGenerator<FilePart> {
  yield * parts(file, 0, load, range)
}

async function * parts (file: FileNode, offset: number, load: Load, range: ByteRange | undefined): AsyncGenerator<FilePart> {
  const { cid, bytes, pb, unixfs } = file
  if (pb === undefined || unixfs === undefined) {
    yield { cid, bytes, data: bytes, leaf: true }
    return
  }
  const data = unixfs.data ?? EMPTY
  yield { cid, bytes, data, leaf: pb.Links.length === 0 }
  let position = offset + data.byteLength
  for (const [i, link] of pb.Links.entries()) {
    const size = Number(unixfs.blockSizes[i] ?? 0n)
    const start = position
    position += size
    if (range !== undefined && (start + size - 1 < range.from || start > range.to)) continue
    const child = decodeNode(link.Hash, await load(link.Hash))
    if (child.type !== 'file') throw new CairnError('ERR_DAG_INVALID', `file ${cid.toString()} links to a ${child.type}`)
    yield * parts(child, start, load, range)
  }
}

export interface ResolvedPath {
  /** blocks needed to verify the path, root first, HAMT shards included, the terminal block not */
  pathBlocks: Block[]
  terminal: Block
}

/** Resolves a content path from `root` through UnixFS directories and HAMT shards, or ERR_PATH_NOT_FOUND. */
export async function resolvePath (root: Block, path: string[], load: Load): Promise<ResolvedPath> {
  const pathBlocks: Block[] = []
  let current = root
  for (const [i, segment] of path.entries()) {
    const where = `/${path.slice(0, i + 1).join('/')}`
    const node = current.cid.code === DAG_PB ? readNode(current.cid, current.bytes) : undefined
    if (node?.type !== 'directory' && node?.type !== 'hamt-sharded-directory') {
      throw new CairnError('ERR_PATH_NOT_FOUND', `${where}: ${current.cid.toString()} is not a UnixFS directory`)
    }
    pathBlocks.push(current)
    const next = node.type === 'directory'
      ? node.pb.Links.find(l => l.Name === segment)?.Hash
      : await findInShard(node, segment, load, pathBlocks)
    if (next === undefined) throw new CairnError('ERR_PATH_NOT_FOUND', `no such path ${where} under ${root.cid.toString()}`)
    current = { cid: next, bytes: await load(next) }
  }
  return { pathBlocks, terminal: current }
}

/** Every entry under `cid` (named `path`), depth first, the entry itself first. */
export async function * list (load: Load, cid: CID, path: string): AsyncGenerator<Entry> {
  const node = decodeNode(cid, await load(cid))
  switch (node.type) {
    case 'file': yield { cid, path, size: node.size, type: 'file' }; return
    case 'symlink': yield { cid, path, size: node.target.byteLength, type: 'symlink' }; return
    default:
      yield { cid, path, size: 0, type: 'directory' }
      for await (const child of directoryEntries(node, load)) {
        yield * list(load, child.cid, `${path}/${child.name}`)
      }
  }
}
