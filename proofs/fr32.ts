/**
 * Fr32 padding and the piece sizes it implies.
 *
 * Filecoin stores data as elements of the BLS12-381 scalar field, so every
 * 254 bits of payload are followed by two zero bits: 127 payload bytes become
 * one 128-byte "quad" of four 32-byte leaves (Filecoin spec, "Piece"; FRC-0069).
 */

export const IN_BYTES_PER_QUAD = 127
export const OUT_BYTES_PER_QUAD = 128
export const LEAVES_PER_QUAD = 4
export const NODE_SIZE = 32
/** Highest tree a piece CID v2 can describe: the height is one byte. */
export const MAX_HEIGHT = 255
/**
 * FRC-0069 caps the padding varint at 2^63 − 1, which caps the payload too;
 * this is far beyond anything a node will hash, so it is enforced loosely.
 */
export const MAX_PAYLOAD_SIZE = (1n << 63n) - 1n

/**
 * Fr32-pads `quads` whole quads of `src` starting at `srcOffset` into `dst` at
 * `dstOffset` (127 bytes in, 128 out per quad).
 */
export function padQuads (src: Uint8Array, srcOffset: number, quads: number, dst: Uint8Array, dstOffset: number): void {
  let r = srcOffset
  let w = dstOffset
  for (let q = 0; q < quads; q++, r += 127, w += 128) {
    // bytes 0..30 and the low 6 bits of byte 31: the first 254 bits
    for (let i = 0; i < 31; i++) dst[w + i] = src[r + i]
    dst[w + 31] = src[r + 31] & 0x3f
    // next 254 bits start 2 bits into byte 31
    for (let i = 32; i < 63; i++) dst[w + i] = ((src[r + i] << 2) | (src[r + i - 1] >> 6)) & 0xff
    dst[w + 63] = ((src[r + 63] << 2) | (src[r + 62] >> 6)) & 0x3f
    for (let i = 64; i < 95; i++) dst[w + i] = ((src[r + i] << 4) | (src[r + i - 1] >> 4)) & 0xff
    dst[w + 95] = ((src[r + 95] << 4) | (src[r + 94] >> 4)) & 0x3f
    for (let i = 96; i < 127; i++) dst[w + i] = ((src[r + i] << 6) | (src[r + i - 1] >> 2)) & 0xff
    dst[w + 127] = src[r + 126] >> 2
  }
}

/**
 * Inverse of {@link padQuads}: 128 Fr32 bytes back to 127 payload bytes.
 * The two inserted bits of each 32-byte word are ignored.
 */
export function unpadQuads (src: Uint8Array, srcOffset: number, quads: number, dst: Uint8Array, dstOffset: number): void {
  let r = srcOffset
  let w = dstOffset
  for (let q = 0; q < quads; q++, r += 128, w += 127) {
    for (let i = 0; i < 31; i++) dst[w + i] = src[r + i]
    dst[w + 31] = (src[r + 31] & 0x3f) | ((src[r + 32] << 6) & 0xff)
    for (let i = 32; i < 63; i++) dst[w + i] = ((src[r + i] >> 2) | (src[r + i + 1] << 6)) & 0xff
    dst[w + 63] = ((src[r + 63] & 0x3f) >> 2) | ((src[r + 64] << 4) & 0xff)
    for (let i = 64; i < 95; i++) dst[w + i] = ((src[r + i] >> 4) | (src[r + i + 1] << 4)) & 0xff
    dst[w + 95] = ((src[r + 95] & 0x3f) >> 4) | ((src[r + 96] << 2) & 0xff)
    for (let i = 96; i < 127; i++) dst[w + i] = ((src[r + i] >> 6) | (src[r + i + 1] << 2)) & 0xff
  }
}

/** Quads the payload occupies once padded to a full binary tree (at least one). */
export function quadsFor (payloadSize: bigint): bigint {
  const quads = (payloadSize + 126n) / 127n
  let pow = 1n
  while (pow < quads) pow <<= 1n
  return pow
}

/**
 * Tree height of a payload: log2 of its leaf count once zero-padded so that
 * the Fr32 output fills a power-of-two tree (FRC-0069; at least 2, since an
 * empty or tiny payload still fills one quad).
 */
export function heightFor (payloadSize: bigint): number {
  const leaves = quadsFor(payloadSize) * 4n
  let h = 0
  while ((1n << BigInt(h)) < leaves) h++
  return h
}

/** FRC-0069 padding: zero bytes appended to the payload before Fr32 padding. */
export function paddingFor (payloadSize: bigint): bigint {
  return quadsFor(payloadSize) * 127n - payloadSize
}

/** Padded piece size in bytes (what Filecoin calls PaddedPieceSize): 32 · 2^height. */
export function paddedSizeFromHeight (height: number): bigint {
  return 32n << BigInt(height)
}

/** Payload bytes of a piece described by (height, padding). */
export function payloadSizeFrom (height: number, padding: bigint): bigint {
  return (paddedSizeFromHeight(height) / 128n) * 127n - padding
}
