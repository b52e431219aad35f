/**
 * Piece CIDs (FRC-0069).
 *
 * v2: CIDv1, raw codec (0x55), multihash fr32-sha2-256-trunc254-padded-binary-tree
 *     (0x1011) whose digest is uvarint(padding) ‖ u8(height) ‖ root(32).
 * v1: CIDv1, fil-commitment-unsealed (0xf101), multihash sha2-256-trunc254-padded
 *     (0x1012) whose digest is the root alone; the size travels separately.
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { proofsError } from './errors.js'
import { heightFor, MAX_HEIGHT, paddedSizeFromHeight, payloadSizeFrom } from './fr32.js'

export const RAW_CODE = 0x55
export const PIECE_MULTIHASH_CODE = 0x1011
export const FIL_COMMITMENT_UNSEALED_CODE = 0xf101
export const SHA2_256_TRUNC254_PADDED_CODE = 0x1012

/** What a v2 piece CID says about its piece. */
export interface PieceLink {
  /** the v2 piece CID */
  cid: CID
  /** the 32-byte CommP root */
  root: Uint8Array
  /** tree height: the piece has 2^height leaves of 32 bytes */
  height: number
  /** zero bytes appended to the payload before Fr32 padding */
  padding: bigint
  /** 32 · 2^height bytes */
  paddedSize: bigint
  /** payload bytes: 127/128 of the padded size, minus the padding */
  payloadSize: bigint
}

function encodeUvarint (value: bigint): Uint8Array {
  const out: number[] = []
  let v = value
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return Uint8Array.from(out)
}

/** Decodes a uvarint of at most 9 bytes (multiformats/unsigned-varint). Returns [value, bytes read] or undefined. */
function decodeUvarint (bytes: Uint8Array): [bigint, number] | undefined {
  let value = 0n
  for (let i = 0; i < bytes.length && i < 9; i++) {
    const b = bytes[i]
    value |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) {
      // minimal encoding only: a trailing zero byte is not canonical
      if (i > 0 && b === 0) return undefined
      return [value, i + 1]
    }
  }
  return undefined
}

function checkRoot (root: Uint8Array): void {
  if (!(root instanceof Uint8Array) || root.length !== 32) throw new TypeError(`piece root must be 32 bytes, got ${(root as Uint8Array)?.length}`)
}

/** The v2 piece CID of a tree (FRC-0069). */
export function pieceCidV2 (root: Uint8Array, height: number, padding: bigint): CID {
  checkRoot(root)
  if (!Number.isInteger(height) || height < 0 || height > MAX_HEIGHT) throw new RangeError(`piece height must be 0…${MAX_HEIGHT}, got ${height}`)
  if (padding < 0n || padding >= (1n << 63n)) throw new RangeError(`piece padding must be 0…2^63−1, got ${padding}`)
  const pad = encodeUvarint(padding)
  const digest = new Uint8Array(pad.length + 33)
  digest.set(pad, 0)
  digest[pad.length] = height
  digest.set(root, pad.length + 1)
  return CID.create(1, RAW_CODE, Digest.create(PIECE_MULTIHASH_CODE, digest))
}

/** The legacy v1 piece CID (baga6ea4sea…) of a root. */
export function pieceCidV1 (root: Uint8Array): CID {
  checkRoot(root)
  return CID.create(1, FIL_COMMITMENT_UNSEALED_CODE, Digest.create(SHA2_256_TRUNC254_PADDED_CODE, root.slice()))
}

function invalid (input: unknown, why: string): never {
  throw proofsError('ERR_INVALID_PIECE_CID', `not a v2 piece CID (${why}): ${String(input)}`)
}

/**
 * Parses and checks a v2 piece CID. Throws `ERR_INVALID_PIECE_CID` for
 * anything else, including a v1 piece CID (it lacks the size).
 */
export function parsePieceCid (input: string | CID): PieceLink {
  let cid: CID
  if (typeof input === 'string') {
    try {
      cid = CID.parse(input.trim())
    } catch (err) {
      invalid(input, `unparsable CID: ${(err as Error).message}`)
    }
  } else {
    const asCid = CID.asCID(input)
    if (asCid == null) invalid(input, 'not a CID')
    cid = asCid
  }
  if (cid.version !== 1) invalid(input, 'CIDv0')
  if (cid.multihash.code === SHA2_256_TRUNC254_PADDED_CODE) invalid(input, 'this is a v1 piece CID, which carries no size; use pieceCidV2FromV1 with the padded size')
  if (cid.code !== RAW_CODE) invalid(input, `codec 0x${cid.code.toString(16)}, expected raw 0x55`)
  if (cid.multihash.code !== PIECE_MULTIHASH_CODE) invalid(input, `multihash 0x${cid.multihash.code.toString(16)}, expected 0x1011`)
  const digest = cid.multihash.digest
  const decoded = decodeUvarint(digest)
  if (decoded == null) invalid(input, 'bad padding varint')
  const [padding, n] = decoded
  if (digest.length !== n + 33) invalid(input, `digest is ${digest.length} bytes, expected ${n + 33}`)
  const height = digest[n]
  const paddedSize = paddedSizeFromHeight(height)
  const capacity = (paddedSize / 128n) * 127n
  // a one-leaf or two-leaf tree has no whole quad, so it cannot hold Fr32 data with padding
  if (height < 2 && padding !== 0n) invalid(input, `height ${height} cannot carry padding`)
  if (padding > capacity) invalid(input, `padding ${padding} exceeds the piece's ${capacity} payload bytes`)
  // FRC-0069: padding is less than the data (so the tree is the smallest that fits it), except below 127 bytes
  if (height >= 2 && heightFor(capacity - padding) !== height) invalid(input, `padding ${padding} leaves ${capacity - padding} payload bytes, which fit a tree lower than ${height}`)
  return {
    cid,
    root: digest.slice(n + 1),
    height,
    padding,
    paddedSize,
    payloadSize: height < 2 ? 0n : payloadSizeFrom(height, padding)
  }
}

/** The v1 piece CID and padded size of a v2 piece CID. */
export function pieceCidV1FromV2 (input: string | CID): { cidV1: CID, paddedSize: bigint } {
  const piece = parsePieceCid(input)
  return { cidV1: pieceCidV1(piece.root), paddedSize: piece.paddedSize }
}

/** Parses and checks a legacy v1 piece CID (baga6ea4sea…); throws `ERR_INVALID_PIECE_CID` for anything else. */
export function parsePieceCidV1 (input: string | CID): CID {
  let cid: CID | null
  try {
    cid = typeof input === 'string' ? CID.parse(input.trim()) : CID.asCID(input)
  } catch (err) {
    throw proofsError('ERR_INVALID_PIECE_CID', `not a v1 piece CID (unparsable: ${(err as Error).message}): ${String(input)}`)
  }
  if (cid == null || cid.code !== FIL_COMMITMENT_UNSEALED_CODE || cid.multihash.code !== SHA2_256_TRUNC254_PADDED_CODE || cid.multihash.digest.length !== 32) {
    throw proofsError('ERR_INVALID_PIECE_CID', `not a v1 piece CID (expected codec 0xf101 with multihash 0x1012): ${String(input)}`)
  }
  return cid
}

/**
 * The v2 piece CID of a v1 piece CID and its padded size. `padding` defaults
 * to 0, the FRC-0069 convention for a piece whose payload size is unknown.
 */
export function pieceCidV2FromV1 (input: string | CID, paddedSize: bigint, padding = 0n): CID {
  const cid = parsePieceCidV1(input)
  if (paddedSize < 32n || (paddedSize & (paddedSize - 1n)) !== 0n) {
    throw proofsError('ERR_INVALID_PIECE_CID', `padded piece size must be a power of two ≥ 32 bytes, got ${paddedSize}`)
  }
  let height = 0
  while ((32n << BigInt(height)) < paddedSize) height++
  return pieceCidV2(cid.multihash.digest, height, padding)
}
