/**
 * A piece CID where a deal names one. proofs/ parses and checks it (FRC-0069
 * piece CID v2: the padded and payload sizes are read from its digest); here
 * a refusal becomes the deal's ERR_INVALID_MESSAGE naming the field, and the
 * deal's own limit on the tree height applies.
 */
import type { CID } from 'multiformats/cid'
import { parsePieceCid, type PieceLink } from '../../proofs/index.js'
import { CairnError } from '../errors.js'

/** 32 · 2^58 bytes = 2^63: a padded size that still fits the u64 `pieceSize` of a proposal with room. */
export const MAX_PIECE_HEIGHT = 58

export function pieceCidInfo (cid: CID, label = 'pieceCid'): PieceLink {
  let piece: PieceLink
  try {
    piece = parsePieceCid(cid)
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_INVALID_PIECE_CID') throw err
    throw new CairnError('ERR_INVALID_MESSAGE', `${label}: ${(err as Error).message}`, { cause: err })
  }
  if (piece.height > MAX_PIECE_HEIGHT) {
    throw new CairnError('ERR_INVALID_MESSAGE', `${label}: piece tree height ${piece.height} is out of range (at most ${MAX_PIECE_HEIGHT})`)
  }
  return piece
}
