/**
 * What a FRC-0069 piece CID v2 says about its piece: the digest is
 * uvarint(padding) ‖ u8(height) ‖ root, under multihash 0x1011
 * (fr32-sha256-trunc254-padbintree), so the padded size (2^height × 32) and the
 * payload size (unpadded size − padding) can be read without the data.
 */
import { CID } from 'multiformats/cid'
import { varint } from 'multiformats'
import { CairnError } from '../errors.js'

export const PIECE_CID_V2_MULTIHASH = 0x1011
export const RAW_CODEC = 0x55

export interface PieceCidInfo {
  height: number
  padding: bigint
  paddedSize: bigint
  payloadSize: bigint
  root: Uint8Array
}

export function pieceCidInfo (cid: CID, label = 'pieceCid'): PieceCidInfo {
  if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== PIECE_CID_V2_MULTIHASH) {
    throw new CairnError('ERR_INVALID_MESSAGE', `${label}: expected a piece CID v2 (raw codec, multihash 0x1011, bafkzcib…), found ${cid.toString()}`)
  }
  const digest = cid.multihash.digest
  let padding: number, offset: number
  try {
    [padding, offset] = varint.decode(digest)
  } catch {
    throw new CairnError('ERR_INVALID_MESSAGE', `${label}: malformed padding in piece CID ${cid.toString()}`)
  }
  if (digest.length !== offset + 1 + 32) throw new CairnError('ERR_INVALID_MESSAGE', `${label}: piece CID digest must be padding ‖ height ‖ 32-byte root, found ${digest.length} bytes`)
  const height = digest[offset]
  if (height > 58) throw new CairnError('ERR_INVALID_MESSAGE', `${label}: piece tree height ${height} is out of range`)
  const paddedSize = 32n << BigInt(height)
  const unpadded = paddedSize - paddedSize / 128n
  if (BigInt(padding) > unpadded) throw new CairnError('ERR_INVALID_MESSAGE', `${label}: padding ${padding} exceeds the unpadded size ${unpadded}`)
  return { height, padding: BigInt(padding), paddedSize, payloadSize: unpadded - BigInt(padding), root: digest.subarray(offset + 1) }
}
