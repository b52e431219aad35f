/**
 * Recognising an encrypted tree (docs/encryption.md) from its blocks, so that
 * `get` and `unpack` decrypt without being told. Below an encrypted root
 * everything is encrypted, so only the root is looked at:
 * - a directory is encrypted when it holds `names.age` and otherwise only
 *   the ordinals 0 … n−1;
 * - a file is encrypted when its first leaf is exactly one age header (cairn
 *   gives the header a leaf of its own; a plaintext import cuts leaves at the
 *   chunk size, so a plaintext file's first leaf is never a whole header
 *   unless the chunk size happens to be that header's length).
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import type { CarBlock } from '../car/interface.js'
import { directoryEntries, resolveEntry, type CarFile } from '../unixfs/exporter.js'
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

function decode (bytes: Uint8Array): { node: dagPb.PBNode, unixfs: UnixFS } | undefined {
  try {
    const node = dagPb.decode(bytes)
    return node.Data === undefined ? undefined : { node, unixfs: UnixFS.unmarshal(node.Data) }
  } catch {
    return undefined
  }
}

/** The content of a file leaf block (raw bytes, or a dag-pb leaf's data). */
function leafData (cid: CID, bytes: Uint8Array): Uint8Array | undefined {
  if (cid.code === raw.code) return bytes
  const pb = decode(bytes)
  if (pb === undefined || pb.node.Links.length > 0 || (pb.unixfs.type !== 'file' && pb.unixfs.type !== 'raw')) return undefined
  return pb.unixfs.data ?? new Uint8Array()
}

/** At most this many file nodes are followed down to the first leaf (a 1024-link balanced file of 2^60 bytes is 5 deep). */
const MAX_DEPTH = 16

/** Whether the CAR's root is an encrypted tree. The CAR must have been opened (and so verified) already. */
export async function isEncryptedRoot (car: CarFile): Promise<boolean> {
  const entry = await resolveEntry(car, car.root)
  if (entry.type === 'directory') {
    const names: string[] = []
    for await (const { name } of directoryEntries(car, entry)) names.push(name)
    return isEncryptedListing(names)
  }
  if (entry.type !== 'file' || entry.node === undefined || entry.node.Links.length === 0) return false
  let cid = entry.node.Links[0].Hash
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const bytes = await car.get(cid)
    const data = leafData(cid, bytes)
    if (data !== undefined) return isHeader(data)
    const pb = decode(bytes)
    if (pb === undefined || pb.node.Links.length === 0) return false
    cid = pb.node.Links[0].Hash
  }
  return false
}

/**
 * Looks at the first blocks of a DAG streaming in depth-first order (the
 * root, then down its first links): `maybe` is true when the DAG may be an
 * encrypted tree — certainly for a flat directory or a file, and for a HAMT
 * root whenever its own entries do not rule it out (its other names lie in
 * blocks further on). `peeked` are the blocks taken, to be put back in front.
 */
export async function peekEncrypted (root: CID, blocks: AsyncIterator<CarBlock>): Promise<{ maybe: boolean, peeked: CarBlock[] }> {
  const peeked: CarBlock[] = []
  const next = async (): Promise<CarBlock | undefined> => {
    const step = await blocks.next()
    if (step.done === true) return undefined
    peeked.push(step.value)
    return step.value
  }
  const first = await next()
  if (first === undefined || !first.cid.equals(root) || root.code !== dagPb.code) return { maybe: false, peeked }
  const pb = decode(first.bytes)
  if (pb === undefined) return { maybe: false, peeked }
  if (pb.unixfs.type === 'directory') return { maybe: isEncryptedListing(pb.node.Links.map(l => l.Name ?? '')), peeked }
  if (pb.unixfs.type === 'hamt-sharded-directory') {
    const own = pb.node.Links.map(l => l.Name ?? '').filter(label => label.length > 2).map(label => label.slice(2))
    return { maybe: own.every(name => name === MANIFEST_NAME || ordinalOf(name) !== undefined), peeked }
  }
  if (pb.unixfs.type !== 'file' || pb.node.Links.length === 0) return { maybe: false, peeked }
  let want = pb.node.Links[0].Hash
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const block = await next()
    if (block === undefined || !block.cid.equals(want)) return { maybe: false, peeked }
    const data = leafData(block.cid, block.bytes)
    if (data !== undefined) return { maybe: isHeader(data), peeked }
    const sub = decode(block.bytes)
    if (sub === undefined || sub.node.Links.length === 0) return { maybe: false, peeked }
    want = sub.node.Links[0].Hash
  }
  return { maybe: false, peeked }
}
