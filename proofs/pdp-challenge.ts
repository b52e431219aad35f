/**
 * Challenges on a PDP data set, derived exactly as FilOzone's PDPVerifier
 * contract derives them (`src/PDPVerifier.sol`, `provePossession`,
 * `findOnePieceId`, `sumTreeAdd`; `src/Cids.sol`, `leafCount`), so that a cairn
 * provider's answers are the ones the chain would check:
 *
 *   leaf_i = uint256(keccak256(abi.encodePacked(uint256 seed, uint256 dataSetId, uint64 i))) mod leafCount
 *
 * where `leafCount` is the sum of the data-bearing leaves of every piece in the
 * data set. The leaf is then found in its piece through the contract's sum tree
 * (a Fenwick tree over piece ids), which yields the piece id and the leaf's
 * offset inside that piece; the Merkle path inside the piece is the usual
 * sha2-256-trunc254 one (`proveLeaves`, `verifyLeafProof`).
 *
 * Piece ids are positions in the data set: a removed piece keeps its id and
 * counts zero leaves, as the contract keeps it.
 */
import { keccak_256 } from '@noble/hashes/sha3.js'
import { proofsError } from './errors.js'

const UINT256_MAX = (1n << 256n) - 1n
const UINT64_MAX = (1n << 64n) - 1n

function word (value: bigint, bytes: number, label: string): Uint8Array {
  const max = bytes === 32 ? UINT256_MAX : UINT64_MAX
  if (typeof value !== 'bigint' || value < 0n || value > max) throw proofsError('ERR_PROOF_MALFORMED', `${label} must be an unsigned ${bytes * 8}-bit integer, got ${String(value)}`)
  const out = new Uint8Array(bytes)
  let v = value
  for (let i = bytes - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

function toBigInt (bytes: Uint8Array): bigint {
  let value = 0n
  for (const byte of bytes) value = (value << 8n) | BigInt(byte)
  return value
}

/** The seed as the contract holds it: a uint256, given as a bigint or 32 big-endian bytes. */
function seedWord (seed: bigint | Uint8Array): Uint8Array {
  if (seed instanceof Uint8Array) {
    if (seed.length !== 32) throw proofsError('ERR_PROOF_MALFORMED', `challenge seed must be 32 bytes, got ${seed.length}`)
    return seed
  }
  return word(seed, 32, 'challenge seed')
}

/**
 * Data-bearing leaves of a piece of `2^height` leaves with `padding` unpadded
 * bytes of padding (Cids.leafCount): leaves made only of padding are never challenged.
 */
export function pdpLeafCount (height: number, padding: bigint): bigint {
  if (!Number.isInteger(height) || height < 0 || height > 255) throw proofsError('ERR_PROOF_MALFORMED', `piece height must be 0…255, got ${height}`)
  return (1n << BigInt(height)) - ((128n * padding) / 127n >> 5n)
}

/** The challenged leaf of the whole data set for challenge `index` (0, 1, …). */
export function pdpChallengeLeaf (seed: bigint | Uint8Array, dataSetId: bigint, index: bigint | number, leafCount: bigint): bigint {
  if (typeof leafCount !== 'bigint' || leafCount < 1n) throw proofsError('ERR_PROOF_MALFORMED', `a data set needs at least one leaf to challenge, got ${String(leafCount)}`)
  const payload = new Uint8Array(72)
  payload.set(seedWord(seed), 0)
  payload.set(word(dataSetId, 32, 'data set id'), 32)
  payload.set(word(BigInt(index), 8, 'challenge index'), 64)
  return toBigInt(keccak_256(payload)) % leafCount
}

export interface PieceIdAndOffset {
  /** position of the piece in the data set */
  pieceId: number
  /** leaf index inside that piece's tree */
  offset: bigint
}

/** Trailing zero bits of a positive integer. */
function ctz (n: number): number {
  let count = 0
  while ((n & 1) === 0) { n >>>= 1; count++ }
  return count
}

/**
 * PDPVerifier's sum tree over the leaf counts of a data set's pieces: node `j`
 * holds the sum of the counts of pieces `j + 1 − 2^h … j` with
 * `h = ctz(j + 1)` (`sumTreeAdd`), and `find` walks it as `findOnePieceId` does.
 */
export class PdpSumTree {
  readonly sums: bigint[]
  readonly total: bigint

  constructor (readonly leafCounts: readonly bigint[]) {
    this.sums = []
    let total = 0n
    for (let j = 0; j < leafCounts.length; j++) {
      const count = leafCounts[j] as bigint
      if (typeof count !== 'bigint' || count < 0n) throw proofsError('ERR_PROOF_MALFORMED', `leaf count of piece ${j} must be a non-negative bigint`)
      let sum = count
      for (let i = 0; i < ctz(j + 1); i++) sum += this.sums[j - (1 << i)] as bigint
      this.sums.push(sum)
      total += count
    }
    this.total = total
  }

  /** The piece holding data-set leaf `leafIndex`, and the leaf's offset inside it. */
  find (leafIndex: bigint): PieceIdAndOffset {
    if (leafIndex < 0n || leafIndex >= this.total) throw proofsError('ERR_PROOF_LEAF_INDEX', `leaf index ${leafIndex} is out of bounds (the data set has ${this.total} leaves)`)
    const pieceCount = this.sums.length
    // the top of the sum tree: the bit length of the piece count
    const top = pieceCount.toString(2).length
    let searchPtr = (1 << top) - 1
    let acc = 0n
    for (let h = top; h > 0; h--) {
      // past the end of the tree the only way is left
      if (searchPtr >= pieceCount) {
        searchPtr -= 1 << (h - 1)
        continue
      }
      const sum = this.sums[searchPtr] as bigint
      if (acc + sum <= leafIndex) {
        acc += sum
        searchPtr += 1 << (h - 1)
      } else {
        searchPtr -= 1 << (h - 1)
      }
    }
    const candidate = acc + (this.sums[searchPtr] as bigint)
    if (candidate <= leafIndex) return { pieceId: searchPtr + 1, offset: leafIndex - candidate }
    return { pieceId: searchPtr, offset: leafIndex - acc }
  }
}

export interface PdpChallenge {
  /** the challenge seed (on chain, drawn from the randomness beacon) */
  seed: bigint | Uint8Array
  dataSetId: bigint
  /** number of challenges (the contract takes one per proof) */
  count: number
}

/**
 * The leaves challenged in a data set whose pieces have the given data-bearing
 * leaf counts (`pdpLeafCount` of each, 0 for a removed piece), in challenge order.
 */
export function pdpChallenges (challenge: PdpChallenge, leafCounts: readonly bigint[]): Array<PieceIdAndOffset & { leaf: bigint }> {
  const { count } = challenge
  if (!Number.isSafeInteger(count) || count < 1) throw proofsError('ERR_PROOF_MALFORMED', `challenge count must be a positive integer, got ${count}`)
  const tree = new PdpSumTree(leafCounts)
  const out: Array<PieceIdAndOffset & { leaf: bigint }> = []
  for (let i = 0; i < count; i++) {
    const leaf = pdpChallengeLeaf(challenge.seed, challenge.dataSetId, i, tree.total)
    out.push({ leaf, ...tree.find(leaf) })
  }
  return out
}
