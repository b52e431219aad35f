/**
 * Verifies a storage proof with nothing but the piece CID v2: each challenged
 * leaf and its `height` siblings must hash (sha2-256-trunc254-padded) to the
 * root inside the CID, at the index the challenge selects (docs/protocol.md "Proofs").
 */
import { equals } from 'multiformats/bytes'
import { CID } from 'multiformats/cid'
import { challengeIndices, type Challenge } from './challenge.js'
import { proofsError } from './errors.js'
import { hashPairInto } from './node-hash.js'
import { parsePieceCid } from './piece-cid.js'

export interface LeafProof {
  /** leaf index in the piece tree (0 = first 32 Fr32 bytes) */
  index: number
  /** the 32-byte Fr32 leaf */
  leaf: Uint8Array
  /** sibling hashes from the leaf's level up to just below the root: `height` of them */
  path: Uint8Array[]
}

export interface PieceProof {
  /** v2 piece CID the proof is for */
  piece: CID
  proofs: LeafProof[]
}

/** Root implied by a leaf, its index and its sibling path. */
export function rootFromPath (leaf: Uint8Array, index: number, path: Uint8Array[]): Uint8Array {
  const pair = new Uint8Array(64)
  let node = leaf
  let i = index
  for (const sibling of path) {
    if ((i & 1) === 0) { pair.set(node, 0); pair.set(sibling, 32) } else { pair.set(sibling, 0); pair.set(node, 32) }
    hashPairInto(pair, 0, pair, 0)
    node = pair.slice(0, 32)
    i = Math.floor(i / 2)
  }
  return node
}

/**
 * Throws a ProofsError unless `proof` answers `challenge` for `pieceCid`:
 * ERR_INVALID_PIECE_CID (not a v2 piece CID), ERR_PROOF_PIECE_MISMATCH (a
 * proof for another piece), ERR_PROOF_MALFORMED (shape: count, sizes, path
 * length, non-Fr32 leaf), ERR_PROOF_LEAF_INDEX (not the challenged leaf),
 * ERR_PROOF_ROOT_MISMATCH (leaf or siblings do not hash to the root).
 */
export function verifyPieceProof (pieceCid: string | CID, challenge: Challenge, proof: PieceProof): void {
  const piece = parsePieceCid(pieceCid)
  const claimed = CID.asCID(proof?.piece)
  if (claimed == null || !claimed.equals(piece.cid)) {
    throw proofsError('ERR_PROOF_PIECE_MISMATCH', `proof is for piece ${String(proof?.piece)}, expected ${piece.cid.toString()}`)
  }
  const expected = challengeIndices(challenge, piece)
  if (!Array.isArray(proof.proofs) || proof.proofs.length !== expected.length) {
    throw proofsError('ERR_PROOF_MALFORMED', `proof has ${proof.proofs?.length} leaf proofs, the challenge asks for ${expected.length}`)
  }
  for (let k = 0; k < expected.length; k++) verifyLeafProof(piece.cid, expected[k] as number, proof.proofs[k] as LeafProof, `leaf proof ${k}`)
}

/**
 * Throws a ProofsError unless `proof` is leaf `index` of the piece with its
 * `height` siblings, hashing to the root inside the piece CID (the check
 * PDPVerifier's `MerkleVerify.verify` makes for one challenge).
 */
export function verifyLeafProof (pieceCid: string | CID, index: number, proof: LeafProof, label = 'leaf proof'): void {
  const piece = parsePieceCid(pieceCid)
  const { leaf, path } = proof ?? {}
  if (proof?.index !== index) {
    throw proofsError('ERR_PROOF_LEAF_INDEX', `${label} is for leaf ${proof?.index}, the challenge selects leaf ${index}`)
  }
  if (!(leaf instanceof Uint8Array) || leaf.length !== 32) throw proofsError('ERR_PROOF_MALFORMED', `${label}: leaf must be 32 bytes`)
  if ((leaf[31] & 0xc0) !== 0) throw proofsError('ERR_PROOF_MALFORMED', `${label}: leaf is not Fr32 (top two bits set)`)
  if (!Array.isArray(path) || path.length !== piece.height) {
    throw proofsError('ERR_PROOF_MALFORMED', `${label}: path has ${path?.length} siblings, the piece's height is ${piece.height}`)
  }
  for (const sibling of path) {
    if (!(sibling instanceof Uint8Array) || sibling.length !== 32) throw proofsError('ERR_PROOF_MALFORMED', `${label}: siblings must be 32 bytes`)
  }
  if (!equals(rootFromPath(leaf, index, path), piece.root)) {
    throw proofsError('ERR_PROOF_ROOT_MISMATCH', `${label} (leaf ${index}) does not hash to the root of ${piece.cid.toString()}`)
  }
}
