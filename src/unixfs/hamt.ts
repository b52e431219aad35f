/**
 * The HAMT layout of a sharded UnixFS directory (UnixFS spec, "HAMTDirectory"),
 * built in one go from the full list of entries.
 *
 * Parity with go-unixfs and ipfs-unixfs-importer: the hash of a name is
 * murmur3-x64-128 truncated to its first 64 bits; each level consumes 8 bits
 * (fanout 256) from the first byte on; when the 64 bits run out, the name is
 * re-hashed with the depth byte appended. Each slot holds either one entry
 * (link name: two upper-case hex digits of the slot, then the entry name) or
 * a sub-shard (link name: the two hex digits only). The bitfield is the set of
 * occupied slots as a minimal big-endian integer.
 *
 * Building from the complete list gives the same trie incremental insertion
 * does: a sub-shard exists exactly where two or more names share a prefix.
 */
import { murmur364 } from '@multiformats/murmur3'

/** multihash code of murmur3-x64-64, recorded in every shard node */
export const HAMT_HASH_CODE = 0x22n

export interface HamtEntry<T> {
  name: string
  value: T
}

export type HamtSlot<T> = { entry: HamtEntry<T> } | { shard: HamtNode<T> }

export interface HamtNode<T> {
  /** occupied slots, ascending */
  slots: Array<{ index: number, slot: HamtSlot<T> }>
}

const encoder = new TextEncoder()

class NameHash {
  private readonly buffers: Uint8Array[] = []
  constructor (private readonly name: Uint8Array) {}

  /** the slot index at `depth`, 8 bits per level */
  at (depth: number): number {
    const round = Math.floor(depth / 8)
    while (this.buffers.length <= round) {
      const n = this.buffers.length
      const input = n === 0 ? this.name : Uint8Array.from([...this.name, n])
      const digest = murmur364.encode(input)
      if (!(digest instanceof Uint8Array)) throw new TypeError('murmur3-x64-64 is expected to be synchronous')
      this.buffers.push(digest)
    }
    return this.buffers[round][depth % 8]
  }
}

export function buildHamt<T> (entries: Array<HamtEntry<T>>, fanoutBits = 8): HamtNode<T> {
  if (fanoutBits !== 8) throw new RangeError('only a fanout of 256 (8 bits) is supported')
  const hashed = entries.map(entry => ({ entry, hash: new NameHash(encoder.encode(entry.name)) }))
  return level(hashed, 0)
}

function level<T> (items: Array<{ entry: HamtEntry<T>, hash: NameHash }>, depth: number): HamtNode<T> {
  const groups = new Map<number, Array<{ entry: HamtEntry<T>, hash: NameHash }>>()
  for (const item of items) {
    const index = item.hash.at(depth)
    const group = groups.get(index)
    if (group === undefined) groups.set(index, [item])
    else group.push(item)
  }
  const slots = [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, group]) => ({
      index,
      slot: group.length === 1 ? { entry: group[0].entry } : { shard: level(group, depth + 1) }
    }))
  return { slots }
}

/** Two upper-case hex digits: the slot part of a shard link name (fanout 256). */
export function slotLabel (index: number): string {
  return index.toString(16).toUpperCase().padStart(2, '0')
}

/** The occupied slots as a minimal big-endian bit string, at least one byte. */
export function bitfield (indices: number[]): Uint8Array {
  const le = new Uint8Array(32)
  for (const i of indices) le[i >> 3] |= 1 << (i & 7)
  let top = 31
  while (top > 0 && le[top] === 0) top--
  return le.subarray(0, top + 1).reverse()
}
