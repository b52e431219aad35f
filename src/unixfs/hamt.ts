/**
 * HAMT-sharded UnixFS directories (UnixFS spec, "HAMTDirectory"): the one
 * place that hashes names, builds shards (the importer) and reads them back
 * (lookup for path resolution, the walk for listing, unpacking and the
 * gateway).
 *
 * Parity with go-unixfs, ipfs-unixfs-importer and ipfs-unixfs-exporter (which
 * use hamt-sharding): the hash of a name is murmur3-x64-128 truncated to its
 * first 64 bits, read most significant bit first, `log2(fanout)` bits per
 * level; when the 64 bits run out, the name is hashed again with the round
 * number appended (hamt-sharding's InfiniteHash). Each slot holds either one
 * entry (link name: the slot in upper-case hex, zero-padded to the width of
 * `fanout - 1`, then the entry name) or a sub-shard (the hex digits only).
 * The bitfield is the set of occupied slots as a minimal big-endian integer.
 *
 * Written here rather than with hamt-sharding: its trie is built one `put`
 * at a time through an async hasher, measured 2–3× slower than building
 * from the complete list, and reading its shape back out for UnixFS links
 * needs its private members (as ipfs-unixfs-importer does).
 */
import { murmur364 } from '@multiformats/murmur3'
import type { CID } from 'multiformats/cid'
import { MURMUR3_X64_64 } from '../codecs.js'
import { CairnError } from '../errors.js'
import type { Block, Load } from './interface.js'
import { readNode, type ShardNode } from './node.js'

/** multihash code of murmur3-x64-64, recorded in every shard node */
export const HAMT_HASH_CODE = BigInt(MURMUR3_X64_64)

const encoder = new TextEncoder()

/** The endless bit stream a name hashes to. */
class NameHash {
  private readonly rounds: Uint8Array[] = []
  constructor (private readonly name: Uint8Array) {}

  /** Bits [depth·bits, (depth + 1)·bits) of the stream: the name's slot at `depth`. */
  slot (depth: number, bits: number): number {
    let index = 0
    for (let bit = depth * bits; bit < (depth + 1) * bits; bit++) {
      index = (index << 1) | ((this.byte(bit >> 3) >> (7 - (bit & 7))) & 1)
    }
    return index
  }

  private byte (n: number): number {
    const round = n >> 3
    while (this.rounds.length <= round) {
      const r = this.rounds.length
      const input = r === 0 ? this.name : Uint8Array.from([...this.name, r])
      const digest = murmur364.encode(input)
      if (!(digest instanceof Uint8Array)) throw new TypeError('murmur3-x64-64 is expected to be synchronous')
      this.rounds.push(digest)
    }
    return this.rounds[round][n & 7]
  }
}

// ---------------------------------------------------------------------------
// Building, from the complete list of entries. This gives the same trie
// incremental insertion does: a sub-shard exists exactly where two or more
// names share a prefix.

export interface HamtEntry<T> {
  name: string
  value: T
}

export type HamtSlot<T> = { entry: HamtEntry<T> } | { shard: HamtNode<T> }

export interface HamtNode<T> {
  /** occupied slots, ascending */
  slots: Array<{ index: number, slot: HamtSlot<T> }>
}

/** The trie of `entries` at a fanout of 2^fanoutBits (256: the only one the importer's profiles use). */
export function buildHamt<T> (entries: Array<HamtEntry<T>>, fanoutBits = 8): HamtNode<T> {
  if (fanoutBits !== 8) throw new RangeError('only a fanout of 256 (8 bits) is supported')
  const hashed = entries.map(entry => ({ entry, hash: new NameHash(encoder.encode(entry.name)) }))
  return level(hashed, 0, fanoutBits)
}

function level<T> (items: Array<{ entry: HamtEntry<T>, hash: NameHash }>, depth: number, bits: number): HamtNode<T> {
  const groups = new Map<number, Array<{ entry: HamtEntry<T>, hash: NameHash }>>()
  for (const item of items) {
    const index = item.hash.slot(depth, bits)
    const group = groups.get(index)
    if (group === undefined) groups.set(index, [item])
    else group.push(item)
  }
  const slots = [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, group]) => ({
      index,
      slot: group.length === 1 ? { entry: group[0].entry } : { shard: level(group, depth + 1, bits) }
    }))
  return { slots }
}

/** The slot part of a shard link name: upper-case hex, two digits at a fanout of 256. */
export function slotLabel (index: number, width = 2): string {
  return index.toString(16).toUpperCase().padStart(width, '0')
}

/** The occupied slots as a minimal big-endian bit string, at least one byte. */
export function bitfield (indices: number[]): Uint8Array {
  const le = new Uint8Array(32)
  for (const i of indices) le[i >> 3] |= 1 << (i & 7)
  let top = 31
  while (top > 0 && le[top] === 0) top--
  return le.subarray(0, top + 1).reverse()
}

// ---------------------------------------------------------------------------
// Reading.

/** Bits per level and the width of a slot label, from a shard's fanout. */
function shape (shard: ShardNode): { bits: number, width: number } {
  const fanout = Number(shard.unixfs.fanout ?? 0n)
  const bits = Math.log2(fanout)
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new CairnError('ERR_DAG_INVALID', `HAMT fanout ${fanout} of ${shard.cid.toString()} is not a power of two from 2 to 65536`)
  return { bits, width: (fanout - 1).toString(16).length }
}

/** A shard node's links: entries (the slot label taken off the name) and sub-shards, in link order. */
export function shardLinks (shard: ShardNode): Array<{ name: string, cid: CID } | { shard: CID }> {
  const { width } = shape(shard)
  return shard.pb.Links.map(link => {
    const label = link.Name ?? ''
    if (label.length > width) return { name: label.slice(width), cid: link.Hash }
    if (label.length === width) return { shard: link.Hash }
    throw new CairnError('ERR_DAG_INVALID', `malformed shard link name ${JSON.stringify(label)} in ${shard.cid.toString()}`)
  })
}

/** Loads and decodes a sub-shard, refusing anything else where one is linked. */
async function subShard (load: Load, parent: ShardNode, cid: CID): Promise<ShardNode> {
  const sub = readNode(cid, await load(cid))
  if (sub?.type !== 'hamt-sharded-directory') throw new CairnError('ERR_DAG_INVALID', `a shard link in ${parent.cid.toString()} points to ${cid.toString()}, which is not a HAMT shard`)
  return sub
}

/**
 * Every entry of a HAMT-sharded directory, and every sub-shard as it is
 * loaded, depth first in link order (the order of a DFS CAR).
 */
export async function * walkShard (shard: ShardNode, load: Load): AsyncGenerator<{ name: string, cid: CID } | { shard: ShardNode }> {
  for (const link of shardLinks(shard)) {
    if ('name' in link) {
      yield link
    } else {
      const sub = await subShard(load, shard, link.shard)
      yield { shard: sub }
      yield * walkShard(sub, load)
    }
  }
}

/**
 * The CID of `name` in a HAMT-sharded directory, or undefined: one slot per
 * level, following sub-shards (pushed onto `walked`, which a verifying client
 * needs to check the path).
 */
export async function findInShard (root: ShardNode, name: string, load: Load, walked: Block[] = []): Promise<CID | undefined> {
  const { bits, width } = shape(root)
  const hash = new NameHash(encoder.encode(name))
  let shard = root
  // 64 levels of at least one bit each cover the first round of the hash and more
  for (let depth = 0; depth < 64; depth++) {
    const label = slotLabel(hash.slot(depth, bits), width)
    const link = shard.pb.Links.find(l => l.Name?.startsWith(label) === true)
    if (link?.Name === undefined) return undefined
    if (link.Name.length === width) {
      shard = await subShard(load, shard, link.Hash)
      walked.push({ cid: shard.cid, bytes: shard.bytes })
      continue
    }
    return link.Name.slice(width) === name ? link.Hash : undefined
  }
  return undefined
}
