/**
 * What a block means in UnixFS (UnixFS spec, https://specs.ipfs.tech/unixfs/):
 * a file (a raw leaf, or a dag-pb node of type File or Raw), a directory, a
 * HAMT-sharded directory or a symlink. Every reader of UnixFS (ls, unpack,
 * get, the gateway) decodes blocks here, and refuses names here.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { DAG_PB, RAW } from '../codecs.js'
import { CairnError } from '../errors.js'
import type { Block } from './interface.js'

/** A file: a raw leaf (no `pb`), or a dag-pb node whose data and links hold its bytes. */
export interface FileNode extends Block {
  type: 'file'
  /** the file's size in bytes, as declared */
  size: number
  pb?: dagPb.PBNode
  unixfs?: UnixFS
}

interface DagPbNode extends Block {
  pb: dagPb.PBNode
  unixfs: UnixFS
}

/** A directory whose entries are its links. */
export interface PlainDirectoryNode extends DagPbNode {
  type: 'directory'
}

/** A HAMT-sharded directory, or one of its sub-shards (hamt.ts reads them). */
export interface ShardNode extends DagPbNode {
  type: 'hamt-sharded-directory'
}

export type DirectoryNode = PlainDirectoryNode | ShardNode

export interface SymlinkNode extends Block {
  type: 'symlink'
  target: Uint8Array
}

export type UnixFSNode = FileNode | DirectoryNode | SymlinkNode

function decodePb (cid: CID, bytes: Uint8Array): dagPb.PBNode {
  try {
    return dagPb.decode(bytes)
  } catch (err) {
    throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not valid dag-pb: ${(err as Error).message}`, { cause: err })
  }
}

function unixfsOf (pb: dagPb.PBNode): UnixFS | undefined {
  if (pb.Data === undefined) return undefined
  try {
    return UnixFS.unmarshal(pb.Data)
  } catch {
    return undefined
  }
}

/**
 * The UnixFS meaning of a block, or undefined when it has none (another
 * codec, a dag-pb node without UnixFS data, a metadata node). A dag-pb block
 * that does not decode is ERR_DAG_INVALID.
 */
export function readNode (cid: CID, bytes: Uint8Array): UnixFSNode | undefined {
  if (cid.code === RAW) return { type: 'file', cid, bytes, size: bytes.byteLength }
  if (cid.code !== DAG_PB) return undefined
  const pb = decodePb(cid, bytes)
  const unixfs = unixfsOf(pb)
  switch (unixfs?.type) {
    case 'file':
    case 'raw':
      return { type: 'file', cid, bytes, size: Number(unixfs.fileSize()), pb, unixfs }
    case 'directory':
      return { type: 'directory', cid, bytes, pb, unixfs }
    case 'hamt-sharded-directory':
      return { type: 'hamt-sharded-directory', cid, bytes, pb, unixfs }
    case 'symlink':
      return { type: 'symlink', cid, bytes, target: unixfs.data ?? new Uint8Array() }
    default:
      return undefined
  }
}

/** The UnixFS meaning of a block, or ERR_DAG_INVALID saying why it has none. */
export function decodeNode (cid: CID, bytes: Uint8Array): UnixFSNode {
  const node = readNode(cid, bytes)
  if (node !== undefined) return node
  if (cid.code !== DAG_PB) throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not UnixFS (codec 0x${cid.code.toString(16)})`)
  const pb = decodePb(cid, bytes)
  if (pb.Data === undefined) throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not a UnixFS node: it has no Data field`)
  let type: string
  try {
    type = UnixFS.unmarshal(pb.Data).type
  } catch (err) {
    throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not a UnixFS node: ${(err as Error).message}`, { cause: err })
  }
  throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is a UnixFS ${type} node, which cannot be exported`)
}

/** A name that would write outside the directory holding it, or not be a name at all. */
export function checkName (name: string, where: CID): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new CairnError('ERR_UNSAFE_PATH', `refusing entry name ${JSON.stringify(name)} in ${where.toString()}: it is not a plain file name`)
  }
}

/** Every name of a plain directory is a plain file name, and none appears twice. */
export function checkDirectoryNames (dir: PlainDirectoryNode): void {
  const names = new Set<string>()
  for (const link of dir.pb.Links) {
    const name = link.Name ?? ''
    checkName(name, dir.cid)
    if (names.has(name)) throw new CairnError('ERR_UNSAFE_PATH', `directory ${dir.cid.toString()} holds ${JSON.stringify(name)} twice`)
    names.add(name)
  }
}
