/**
 * proofs/ stands alone (it must not import the node's src/errors.ts), so its
 * failures are plain `Error`s carrying a stable `code`. Callers match on
 * `code`; messages may change.
 */

export type ProofsErrorCode =
  | 'ERR_INVALID_PIECE_CID'
  | 'ERR_PIECE_TOO_LARGE'
  | 'ERR_HASHER_FINISHED'
  | 'ERR_PROOF_MALFORMED'
  | 'ERR_PROOF_LEAF_INDEX'
  | 'ERR_PROOF_ROOT_MISMATCH'
  | 'ERR_PROOF_PIECE_MISMATCH'
  | 'ERR_PIECE_READ'
  | 'ERR_LAYER_CACHE_INVALID'
  | 'ERR_PIECE_CORRUPT'

export interface ProofsError extends Error {
  code: ProofsErrorCode
}

export function proofsError (code: ProofsErrorCode, message: string, options?: { cause?: unknown }): ProofsError {
  const error = new Error(message, options) as ProofsError
  error.code = code
  return error
}
