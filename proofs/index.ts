/**
 * cairn proofs: Filecoin piece commitment (CommP), FRC-0069 piece CIDs, and
 * PDP-style storage proofs. Stands alone: imports nothing from the node.
 */
export { createPieceHasher, pieceOf } from './commp.js'
export type { PieceInfo, PieceHasher, PieceHasherOptions } from './commp.js'
export { parsePieceCid, pieceCidV1, pieceCidV2, pieceCidV1FromV2, pieceCidV2FromV1 } from './piece-cid.js'
export type { PieceLink } from './piece-cid.js'
export { padQuads, unpadQuads, heightFor, paddingFor, paddedSizeFromHeight, payloadSizeFrom } from './fr32.js'
export { hashNode, zeroRoot } from './node-hash.js'
export { TreeStack } from './tree.js'
export { proofsError } from './errors.js'
export type { ProofsError, ProofsErrorCode } from './errors.js'
export { challengeIndices, challengeLeafCount, CHALLENGE_DOMAIN } from './challenge.js'
export type { Challenge } from './challenge.js'
export { buildLayerCache, provePiece, LayerCache, DEFAULT_CACHE_LEVEL } from './prove.js'
export type { ReadAt } from './prove.js'
export { verifyPieceProof, rootFromPath } from './verify.js'
export type { LeafProof, PieceProof } from './verify.js'
