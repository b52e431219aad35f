/**
 * A streaming binary Merkle tree over CommP nodes.
 *
 * Subtree roots arrive left to right, each aligned to its own size; only one
 * pending node per level is kept (a binary counter of perfect subtrees), so
 * memory is O(height) whatever the payload size. Missing right-hand parts of
 * the tree are zero subtrees, as in Filecoin's unsealed-sector CommP.
 */
import { hashNode, zeroRoot } from './node-hash.js'

export class TreeStack {
  readonly #pending: Array<Uint8Array | undefined> = []
  /** Leaves covered so far, in units of leaves (a bigint: pieces can exceed 2^53 bytes in principle). */
  #leaves = 0n

  get leaves (): bigint { return this.#leaves }

  /**
   * Adds the root of a perfect subtree of height `level` covering the next
   * 2^level leaves. The caller keeps alignment: the leaves before it must be a
   * multiple of 2^level.
   */
  push (level: number, node: Uint8Array): void {
    const width = 1n << BigInt(level)
    if (this.#leaves % width !== 0n) throw new RangeError(`subtree of height ${level} is not aligned at leaf ${this.#leaves}`)
    this.#leaves += width
    let carry = node
    let l = level
    while (this.#pending[l] !== undefined) {
      carry = hashNode(this.#pending[l] as Uint8Array, carry)
      this.#pending[l] = undefined
      l++
    }
    this.#pending[l] = carry
  }

  /** Root of the tree of the given height, padding everything after the pushed leaves with zero subtrees. Does not mutate. */
  root (height: number): Uint8Array {
    if ((1n << BigInt(height)) < this.#leaves) throw new RangeError(`${this.#leaves} leaves do not fit a tree of height ${height}`)
    if (this.#pending[height] !== undefined) return this.#pending[height] as Uint8Array
    let carry: Uint8Array | undefined
    for (let l = 0; l < height; l++) {
      const left = this.#pending[l]
      if (left !== undefined) carry = hashNode(left, carry ?? zeroRoot(l))
      else if (carry !== undefined) carry = hashNode(carry, zeroRoot(l))
    }
    return carry ?? zeroRoot(height)
  }
}
