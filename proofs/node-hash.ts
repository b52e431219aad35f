/**
 * The CommP node hash, "sha2-256-trunc254-padded": SHA-256 of the 64-byte
 * concatenation of two children, with the top two bits of the last byte
 * cleared so the result is again a valid Fr32 element (Filecoin spec, "Piece
 * Commitment"; multicodec 0x1012).
 *
 * This is the portable implementation: a SHA-256 compression (FIPS 180-4
 * §6.2) specialised for 64-byte messages. Such a message is exactly one data
 * block followed by a padding block whose content never changes, so the
 * second block's message schedule (and its sum with the round constants) is
 * computed once at load time. node:crypto costs about 1.4 µs of call overhead
 * per 64-byte hash; this avoids it (see docs/performance.md).
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])

const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
])

const W = new Int32Array(64)
const S = new Int32Array(8)

/** K[t] + W[t] of the padding block of every 64-byte message (0x80, zeros, bit length 512). */
const PAD_KW = (() => {
  const w = new Int32Array(64)
  w[0] = 0x80000000
  w[15] = 512
  for (let t = 16; t < 64; t++) w[t] = sigma1(w[t - 2]) + w[t - 7] + sigma0(w[t - 15]) + w[t - 16]
  for (let t = 0; t < 64; t++) w[t] = (w[t] + K[t]) | 0
  return w
})()

function sigma0 (x: number): number { return ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3) }
function sigma1 (x: number): number { return ((x >>> 17) | (x << 15)) ^ ((x >>> 19) | (x << 13)) ^ (x >>> 10) }

/** Runs 64 rounds over S using the round inputs `kw` (K[t] + W[t]) and adds the result back into S. */
function rounds (kw: Int32Array, s: Int32Array): void {
  let a = s[0]; let b = s[1]; let c = s[2]; let d = s[3]
  let e = s[4]; let f = s[5]; let g = s[6]; let h = s[7]
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
    const ch = (e & f) ^ (~e & g)
    const t1 = (h + S1 + ch + kw[t]) | 0
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
    const maj = (a & b) ^ (a & c) ^ (b & c)
    const t2 = (S0 + maj) | 0
    h = g; g = f; f = e; e = (d + t1) | 0
    d = c; c = b; b = a; a = (t1 + t2) | 0
  }
  s[0] = (s[0] + a) | 0; s[1] = (s[1] + b) | 0; s[2] = (s[2] + c) | 0; s[3] = (s[3] + d) | 0
  s[4] = (s[4] + e) | 0; s[5] = (s[5] + f) | 0; s[6] = (s[6] + g) | 0; s[7] = (s[7] + h) | 0
}

/**
 * out[outOffset..+32] = trunc254(SHA-256(src[srcOffset..+64])). The output may
 * overlap the input (the input is read completely first).
 */
export function hashPairInto (src: Uint8Array, srcOffset: number, out: Uint8Array, outOffset: number): void {
  for (let t = 0, i = srcOffset; t < 16; t++, i += 4) {
    W[t] = (src[i] << 24) | (src[i + 1] << 16) | (src[i + 2] << 8) | src[i + 3]
  }
  for (let t = 16; t < 64; t++) {
    const x = W[t - 15]; const y = W[t - 2]
    W[t] = ((((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) + W[t - 7] +
      (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) + W[t - 16]) | 0
  }
  for (let t = 0; t < 64; t++) W[t] = (W[t] + K[t]) | 0
  S.set(IV)
  rounds(W, S)
  rounds(PAD_KW, S)
  for (let t = 0, o = outOffset; t < 8; t++, o += 4) {
    const v = S[t]
    out[o] = v >>> 24; out[o + 1] = (v >>> 16) & 0xff; out[o + 2] = (v >>> 8) & 0xff; out[o + 3] = v & 0xff
  }
  out[outOffset + 31] &= 0x3f
}

/** trunc254(SHA-256(left ‖ right)) as a new 32-byte array. */
export function hashNode (left: Uint8Array, right: Uint8Array): Uint8Array {
  const pair = new Uint8Array(64)
  pair.set(left, 0)
  pair.set(right, 32)
  hashPairInto(pair, 0, pair, 0)
  return pair.slice(0, 32)
}

/**
 * Reduces `leaves` consecutive 32-byte nodes of `buf` (a power of two) to
 * their subtree root, in place, and returns it as a new array.
 */
export function subtreeRootInPlace (buf: Uint8Array, leaves: number): Uint8Array {
  for (let n = leaves; n > 1; n >>>= 1) {
    const pairs = n >>> 1
    for (let i = 0; i < pairs; i++) hashPairInto(buf, i * 64, buf, i * 32)
  }
  return buf.slice(0, 32)
}

const zeroRoots: Uint8Array[] = [new Uint8Array(32)]

/** Root of the all-zero subtree of the given height (level 0 is a zero leaf). */
export function zeroRoot (level: number): Uint8Array {
  if (!Number.isInteger(level) || level < 0 || level > 255) throw new RangeError(`zero subtree level must be 0…255, got ${level}`)
  while (zeroRoots.length <= level) {
    const below = zeroRoots[zeroRoots.length - 1]
    zeroRoots.push(hashNode(below, below))
  }
  return zeroRoots[level]
}
