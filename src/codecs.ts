/**
 * The multicodec codes cairn reads and writes, named once
 * (https://github.com/multiformats/multicodec/blob/master/table.csv).
 *
 * The piece codes come from proofs/, which keeps its own because it imports
 * nothing from the node; everything under src/ takes them from here.
 */
export {
  FIL_COMMITMENT_UNSEALED_CODE as FIL_COMMITMENT_UNSEALED,
  PIECE_MULTIHASH_CODE as FR32_SHA256_TRUNC254_PADDED_BINARY_TREE,
  SHA2_256_TRUNC254_PADDED_CODE as SHA2_256_TRUNC254_PADDED
} from '../proofs/index.js'

/** multihash: the digest is the data itself (a block carried inside its CID) */
export const IDENTITY = 0x00
/** multihash: SHA-256 */
export const SHA2_256 = 0x12
/** multihash: murmur3-x64-64, the hash of HAMT-sharded UnixFS directories */
export const MURMUR3_X64_64 = 0x22
/** codec: bytes as they are (UnixFS raw leaves, piece CID v2) */
export const RAW = 0x55
/** codec: DAG-PB, the UnixFS node format */
export const DAG_PB = 0x70
/** codec: DAG-CBOR (ledger entries, deal ids, CAR headers) */
export const DAG_CBOR = 0x71
