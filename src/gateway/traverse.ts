/**
 * The walks behind CAR responses: a depth-first walk from the terminal node
 * of a content path, shaped by `dag-scope` and `entity-bytes` (Trustless
 * Gateway specification). Blocks come out in DFS first-seen order, which is
 * the order `ipfs dag export` writes and lassie expects for `order=dfs`.
 * UnixFS itself (files, HAMT shards) is read by the one reader in unixfs/.
 */
import { inlined, linksOf } from '../car/index.js'
import { DAG_PB } from '../codecs.js'
import { walkShard } from '../unixfs/hamt.js'
import type { Block, ByteRange, Load } from '../unixfs/interface.js'
import { readNode } from '../unixfs/node.js'
import { fileParts } from '../unixfs/reader.js'
import type { DagScope } from './request.js'

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

/** The number of bytes a UnixFS file (or raw leaf) represents; undefined for anything else. */
export function entitySize (block: Block): number | undefined {
  const node = readNode(block.cid, block.bytes)
  return node?.type === 'file' ? node.size : undefined
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
    if (inlined(block.cid) !== undefined) return true
    const key = block.cid.toString()
    const first = !seen.has(key)
    seen.add(key)
    if (first || options.dups) yield { cid: block.cid, bytes: block.bytes }
    return first
  }

  async function * all (block: Block): AsyncGenerator<Block> {
    const first = yield * emit(block)
    // with dups=n a repeated subtree has been sent in full already
    if (!first && !options.dups) return
    for (const child of linksOf(block.cid, block.bytes)) {
      yield * all({ cid: child, bytes: await load(child) })
    }
  }

  if (options.scope === 'all') { yield * all(start); return }
  const node = options.scope === 'block' || start.cid.code !== DAG_PB ? undefined : readNode(start.cid, start.bytes)
  switch (node?.type) {
    case 'file':
      for await (const part of fileParts(node, load, options.range)) yield * emit(part)
      return
    case 'hamt-sharded-directory':
      yield * emit(start)
      for await (const item of walkShard(node, load)) {
        if ('shard' in item) yield * emit(item.shard)
      }
      return
    default:
      yield * emit(start)
  }
}
