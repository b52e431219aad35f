/**
 * cairn proofs: Filecoin piece commitment (CommP), FRC-0069 piece CIDs, and
 * PDP-style storage proofs (docs/protocol.md "Proofs"). Stands alone: imports nothing from the
 * node, so a third party can verify proofs with this directory alone.
 *
 * Failures are `Error`s with a stable `code`:
 *   ERR_INVALID_PIECE_CID    not a (v2, or where asked v1) piece CID
 *   ERR_PIECE_TOO_LARGE      payload beyond what a v2 piece CID can describe
 *   ERR_HASHER_FINISHED      update() or digest() after digest()
 *   ERR_PROOF_MALFORMED      proof or challenge of the wrong shape
 *   ERR_PROOF_LEAF_INDEX     a leaf proof for a leaf the challenge did not select
 *   ERR_PROOF_ROOT_MISMATCH  leaf and siblings do not hash to the piece root
 *   ERR_PROOF_PIECE_MISMATCH a proof for another piece
 *   ERR_PIECE_READ           the piece could not be read (or ended early)
 *   ERR_PIECE_CORRUPT        the piece's bytes no longer match its commitment
 *   ERR_LAYER_CACHE_INVALID  a layer cache that is corrupt or of another piece
 */
export { createPieceHasher, pieceOf } from './commp.js'
export type { PieceInfo, PieceHasher, PieceHasherOptions } from './commp.js'
export { parsePieceCid, parsePieceCidV1, pieceCidV1, pieceCidV2, pieceCidV1FromV2, pieceCidV2FromV1 } from './piece-cid.js'
export { RAW_CODE, PIECE_MULTIHASH_CODE, FIL_COMMITMENT_UNSEALED_CODE, SHA2_256_TRUNC254_PADDED_CODE } from './piece-cid.js'
export type { PieceLink } from './piece-cid.js'
export { padQuads, unpadQuads, heightFor, paddingFor, paddedSizeFromHeight, payloadSizeFrom } from './fr32.js'
export { hashNode, zeroRoot } from './node-hash.js'
export { TreeStack } from './tree.js'
export { proofsError } from './errors.js'
export type { ProofsError, ProofsErrorCode } from './errors.js'
export { challengeIndices, challengeLeafCount, CHALLENGE_DOMAIN } from './challenge.js'
export type { Challenge } from './challenge.js'
export { buildLayerCache, provePiece, proveLeaves, LayerCache, LayerFile, DEFAULT_CACHE_LEVEL, RESIDENT_NODES } from './prove.js'
export type { ReadAt, CachedLayers, UpperPath } from './prove.js'
export { verifyPieceProof, verifyLeafProof, rootFromPath } from './verify.js'
export { pdpChallengeLeaf, pdpChallenges, pdpLeafCount, PdpSumTree } from './pdp-challenge.js'
export type { PdpChallenge, PieceIdAndOffset } from './pdp-challenge.js'
export type { LeafProof, PieceProof } from './verify.js'
