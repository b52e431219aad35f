/**
 * The walks behind CAR responses: resolving a content path through UnixFS
 * directories (plain and HAMT-sharded), then a depth-first walk from the
 * terminal node shaped by `dag-scope` and `entity-bytes` (Trustless Gateway
 * specification). Blocks come out in DFS first-seen order, which is the order
 * `ipfs dag export` writes and lassie expects for `order=dfs`.
 */
import * as dagPB from '@ipld/dag-pb'
import { murmur3128 } from '@multiformats/murmur3'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { linksOf } from '../car/index.js'
import { IDENTITY } from '../codecs.js'
import { CairnError } from '../errors.js'
import type { DagScope } from './request.js'

export interface Block { cid: CID, bytes: Uint8Array }

/** Loads a block, or undefined when it is not held. */
export type Load = (cid: CID) => Promise<Uint8Array | undefined>

export function isIdentity (cid: CID): boolean {
  return cid.multihash.code === IDENTITY
}

/** Identity CIDs carry their block inline; everything else comes from `load`. */
export async function loadBlock (load: Load, cid: CID): Promise<Uint8Array | undefined> {
  if (isIdentity(cid)) return cid.multihash.digest
  return await load(cid)
}

async function mustLoad (load: Load, cid: CID): Promise<Uint8Array> {
  const bytes = await loadBlock(load, cid)
  if (bytes === undefined) throw new CairnError('ERR_BLOCK_NOT_FOUND', `block ${cid.toString()} is not held by this provider`)
  return bytes
}

interface PBNodeView { node: dagPB.PBNode, unixfs: UnixFS | undefined }

function decodePB (cid: CID, bytes: Uint8Array): PBNodeView {
  let node: dagPB.PBNode
  try {
    node = dagPB.decode(bytes)
  } catch (err) {
    throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not valid dag-pb: ${(err as Error).message}`)
  }
  let unixfs: UnixFS | undefined
  if (node.Data !== undefined) {
    try { unixfs = UnixFS.unmarshal(node.Data) } catch { unixfs = undefined }
  }
  return { node, unixfs }
}

/**
 * HAMT bucket index bits as go-unixfs and js-ipfs-unixfs take them: the first
 * 64 bits of murmur3-x64-128(name), most significant bit first; once used up,
 * the hash of `name ‖ depth` continues the stream (hamt-sharding's InfiniteHash).
 */
class HamtBits {
  private buffers: Uint8Array[] = []
  private bit = 0

  constructor (private readonly name: Uint8Array) {}

  async take (n: number): Promise<number> {
    let result = 0
    for (let i = 0; i < n; i++) {
      const index = Math.floor(this.bit / 64)
      while (this.buffers.length <= index) {
        const depth = this.buffers.length
        const input = depth === 0 ? this.name : Uint8Array.from([...this.name, depth])
        this.buffers.push((await murmur3128.encode(input)).subarray(0, 8))
      }
      const buffer = this.buffers[index] as Uint8Array
      const within = this.bit % 64
      const byte = buffer[within >> 3] as number
      result = (result << 1) | ((byte >> (7 - (within & 7))) & 1)
      this.bit++
    }
    return result
  }
}

/** Finds `name` in a HAMT-sharded directory, recording the shard blocks walked. */
async function hamtLookup (view: PBNodeView, name: string, load: Load, walked: Block[]): Promise<CID | undefined> {
  const fanout = Number(view.unixfs?.fanout ?? 0n)
  const bits = Math.log2(fanout)
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new CairnError('ERR_DAG_INVALID', `HAMT fanout ${fanout} is not a power of two`)
  const padLength = (fanout - 1).toString(16).length
  const hash = new HamtBits(new TextEncoder().encode(name))
  let node = view.node
  for (let depth = 0; depth < 64; depth++) {
    const label = (await hash.take(bits)).toString(16).toUpperCase().padStart(padLength, '0')
    const link = node.Links.find((l) => l.Name?.startsWith(label) === true)
    if (link === undefined || link.Name === undefined) return undefined
    if (link.Name.length === padLength) {
      const bytes = await mustLoad(load, link.Hash)
      walked.push({ cid: link.Hash, bytes })
      node = decodePB(link.Hash, bytes).node
      continue
    }
    return link.Name.slice(padLength) === name ? link.Hash : undefined
  }
  return undefined
}

export interface Resolved {
  /** Blocks needed to verify the path, root first, excluding the terminal block. */
  pathBlocks: Block[]
  terminal: Block
}

/** Resolves a content path from `root` through UnixFS directories, or ERR_PATH_NOT_FOUND. */
export async function resolvePath (root: Block, path: string[], load: Load): Promise<Resolved> {
  const pathBlocks: Block[] = []
  let current = root
  for (const [i, segment] of path.entries()) {
    const where = `/${path.slice(0, i + 1).join('/')}`
    if (current.cid.code !== dagPB.code) throw new CairnError('ERR_PATH_NOT_FOUND', `${where}: ${current.cid.toString()} is not a UnixFS directory`)
    const view = decodePB(current.cid, current.bytes)
    pathBlocks.push(current)
    let next: CID | undefined
    if (view.unixfs?.type === 'directory') {
      next = view.node.Links.find((l) => l.Name === segment)?.Hash
    } else if (view.unixfs?.type === 'hamt-sharded-directory') {
      next = await hamtLookup(view, segment, load, pathBlocks)
    } else {
      throw new CairnError('ERR_PATH_NOT_FOUND', `${where}: ${current.cid.toString()} is not a UnixFS directory`)
    }
    if (next === undefined) throw new CairnError('ERR_PATH_NOT_FOUND', `no such path ${where} under ${root.cid.toString()}`)
    current = { cid: next, bytes: await mustLoad(load, next) }
  }
  return { pathBlocks, terminal: current }
}

/** A byte range resolved against an entity's size: inclusive, within [0, size). */
export interface ByteRange { from: number, to: number }

/**
 * Resolves `entity-bytes` against a file of `size` bytes (Trustless Gateway
 * spec, `entity-bytes`): negatives count back from the end, `*` is the last
 * byte. Returns undefined when the range is empty or wholly outside the file.
 */
export function resolveEntityBytes (spec: { from: number, to: number | '*' }, size: number): ByteRange | undefined {
  const from = Math.max(0, spec.from < 0 ? size + spec.from : spec.from)
  const to = Math.min(size - 1, spec.to === '*' ? size - 1 : spec.to < 0 ? size + spec.to : spec.to)
  if (size === 0 || from >= size || to < from) return undefined
  return { from, to }
}

/** The number of bytes a UnixFS file (or raw leaf) represents. */
export function entitySize (block: Block): number | undefined {
  if (block.cid.code === raw.code) return block.bytes.length
  if (block.cid.code !== dagPB.code) return undefined
  const { unixfs } = decodePB(block.cid, block.bytes)
  if (unixfs === undefined || (unixfs.type !== 'file' && unixfs.type !== 'raw')) return undefined
  return Number(unixfs.fileSize())
}

export interface WalkOptions {
  scope: DagScope
  /** Only for file entities: the blocks needed for this byte range. */
  range?: ByteRange
  dups: boolean
}

/**
 * Yields the blocks of the DAG under `start` in DFS order, shaped by scope:
 * `block` the node alone; `entity` a whole UnixFS file (or the blocks covering
 * `range`), a directory's node (with its HAMT shards), any other node alone;
 * `all` everything reachable. Identity blocks are never yielded (spec, "dups").
 */
export async function * walk (start: Block, options: WalkOptions, load: Load, seen: Set<string> = new Set()): AsyncGenerator<Block> {
  const emit = function * (block: Block): Generator<Block, boolean> {
    if (isIdentity(block.cid)) return true
    const key = block.cid.toString()
    const first = !seen.has(key)
    seen.add(key)
    if (first || options.dups) yield block
    return first
  }

  async function * all (block: Block): AsyncGenerator<Block> {
    const first = yield * emit(block)
    // with dups=n a repeated subtree has been sent in full already
    if (!first && !options.dups) return
    for (const child of linksOf(block.cid, block.bytes)) {
      yield * all({ cid: child, bytes: await mustLoad(load, child) })
    }
  }

  async function * file (block: Block, offset: number, range: ByteRange | undefined): AsyncGenerator<Block> {
    yield * emit(block)
    if (block.cid.code !== dagPB.code) return
    const { node, unixfs } = decodePB(block.cid, block.bytes)
    if (unixfs === undefined) return
    let position = offset + (unixfs.data?.length ?? 0)
    for (const [i, link] of node.Links.entries()) {
      const size = Number(unixfs.blockSizes[i] ?? 0n)
      const start = position
      position += size
      if (range !== undefined && (start + size - 1 < range.from || start > range.to)) continue
      yield * file({ cid: link.Hash, bytes: await mustLoad(load, link.Hash) }, start, range)
    }
  }

  async function * hamtShards (block: Block, padLength: number): AsyncGenerator<Block> {
    yield * emit(block)
    for (const link of decodePB(block.cid, block.bytes).node.Links) {
      if (link.Name?.length === padLength) yield * hamtShards({ cid: link.Hash, bytes: await mustLoad(load, link.Hash) }, padLength)
    }
  }

  if (options.scope === 'all') { yield * all(start); return }
  if (options.scope === 'block' || start.cid.code !== dagPB.code) { yield * emit(start); return }
  const { unixfs } = decodePB(start.cid, start.bytes)
  switch (unixfs?.type) {
    case 'file':
    case 'raw':
      yield * file(start, 0, options.range)
      return
    case 'hamt-sharded-directory':
      yield * hamtShards(start, (Number(unixfs.fanout ?? 256n) - 1).toString(16).length)
      return
    default:
      yield * emit(start)
  }
}
