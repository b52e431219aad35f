/**
 * Recognising an encrypted tree (docs/encryption.md) from its blocks, so that
 * `get`, `unpack` and `ls` decrypt without being told. Below an encrypted root
 * everything is encrypted, so only the root is looked at:
 * - a directory is encrypted when it holds `names.age` and otherwise only
 *   the ordinals 0 … n−1;
 * - a file is encrypted when its first leaf is exactly one age header (cairn
 *   gives the header a leaf of its own; a plaintext import cuts leaves at the
 *   chunk size, so a plaintext file's first leaf is never a whole header
 *   unless the chunk size happens to be that header's length).
 * Blocks are read through the one UnixFS reader (unixfs/reader.ts).
 */
import type { CID } from 'multiformats/cid'
import type { CarBlock } from '../car/index.js'
import { isCairnError } from '../errors.js'
import { findInShard, shardLinks } from '../unixfs/hamt.js'
import type { Block, Load } from '../unixfs/interface.js'
import { decodeNode, readNode, type DirectoryNode, type FileNode } from '../unixfs/node.js'
import { directoryEntries, fileParts } from '../unixfs/reader.js'
import { isHeader } from './header.js'
import { MANIFEST_NAME, ordinalOf } from './names.js'

/** Whether a directory with these entry names is laid out as an encrypted one. */
export function isEncryptedListing (names: Iterable<string>): boolean {
  let manifest = false
  let count = 0
  let max = -1
  for (const name of names) {
    if (name === MANIFEST_NAME) {
      manifest = true
      continue
    }
    const ordinal = ordinalOf(name)
    if (ordinal === undefined) return false
    count++
    max = Math.max(max, ordinal)
  }
  // names in a directory are distinct, so n ordinals up to n−1 are exactly 0 … n−1
  return manifest && max === count - 1
}

/**
 * Whether a directory node may be an encrypted directory, judged from its
 * own links: a plain directory certainly, by its names; a HAMT shard when
 * none of its own entries rules it out (its other names lie in sub-shards).
 */
function mayBeEncrypted (dir: DirectoryNode): boolean {
  if (dir.type === 'directory') return isEncryptedListing(dir.pb.Links.map(l => l.Name ?? ''))
  return shardLinks(dir).every(link => !('name' in link) || link.name === MANIFEST_NAME || ordinalOf(link.name) !== undefined)
}

/**
 * Whether `root` is an encrypted directory, from as few blocks as a path
 * lookup reads (a provider may be serving them one by one): a plain
 * directory by its names, a HAMT-sharded one by its own entries and whether
 * it holds `names.age`.
 */
export async function isEncryptedDirectory (root: Block, load: Load): Promise<boolean> {
  const node = readNode(root.cid, root.bytes)
  if ((node?.type !== 'directory' && node?.type !== 'hamt-sharded-directory') || !mayBeEncrypted(node)) return false
  return node.type === 'directory' || await findInShard(node, MANIFEST_NAME, load) !== undefined
}

/** Whether a file's first leaf is exactly one age header, no byte of the file coming before it. */
async function startsWithHeader (file: FileNode, load: Load): Promise<boolean> {
  if (file.pb === undefined || file.pb.Links.length === 0) return false
  for await (const part of fileParts(file, load)) {
    if (part.leaf) return isHeader(part.data)
    if (part.data.byteLength > 0) return false
  }
  return false
}

/** Whether the DAG under `root` is an encrypted tree; `load` gives verified blocks (a CAR opened complete). */
export async function isEncryptedRoot (root: CID, load: Load): Promise<boolean> {
  const node = decodeNode(root, await load(root))
  switch (node.type) {
    case 'file': return await startsWithHeader(node, load)
    case 'symlink': return false
    default: {
      const names: string[] = []
      for await (const { name } of directoryEntries(node, load)) names.push(name)
      return isEncryptedListing(names)
    }
  }
}

/** A block out of the order peekEncrypted walks in: the stream is left for the plain unpacker to judge. */
const OUT_OF_ORDER = new Error('out of order')

/**
 * Looks at the first blocks of a DAG streaming in depth-first order (the
 * root, then down its first links): `maybe` is true when the DAG may be an
 * encrypted tree — certainly for a flat directory or a file, and for a HAMT
 * root whenever its own entries do not rule it out (its other names lie in
 * blocks further on). `peeked` are the blocks taken, to be put back in front.
 * Blocks that are not what a UnixFS walk expects give `maybe` false: the
 * plain unpacker then reports them from the same blocks.
 */
export async function peekEncrypted (root: CID, blocks: AsyncIterator<CarBlock>): Promise<{ maybe: boolean, peeked: CarBlock[] }> {
  const peeked: CarBlock[] = []
  let failure: unknown
  // the stream in walk order: each block must be the one asked for next
  const load: Load = async cid => {
    let step: IteratorResult<CarBlock>
    try {
      step = await blocks.next()
    } catch (err) {
      failure = err
      throw err
    }
    if (step.done === true) throw OUT_OF_ORDER
    peeked.push(step.value)
    if (!step.value.cid.equals(cid)) throw OUT_OF_ORDER
    return step.value.bytes
  }
  const judge = async (): Promise<boolean> => {
    const node = readNode(root, await load(root))
    switch (node?.type) {
      case 'file': return await startsWithHeader(node, load)
      case 'directory':
      case 'hamt-sharded-directory':
        return mayBeEncrypted(node)
      default: return false
    }
  }
  try {
    return { maybe: await judge(), peeked }
  } catch (err) {
    if (err === failure || (err !== OUT_OF_ORDER && !isCairnError(err))) throw err
    return { maybe: false, peeked }
  }
}
