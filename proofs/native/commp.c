/*
 * cairn CommP subtree hasher: Fr32 padding plus the sha2-256-trunc254-padded
 * binary tree over a run of whole quads, in one call, so the per-node cost is
 * SHA-256 itself rather than a JS -> native round trip per 64-byte hash.
 *
 * Every node hash is SHA-256 of exactly 64 bytes: one data block plus a
 * padding block that never changes (FIPS 180-4 §5.1.1), so the padding
 * block's K + W words are precomputed. With AVX-512 (checked at run time with
 * CPUID and XGETBV) sixteen nodes are hashed at once in vector lanes; the
 * rest, or everything on CPUs without it, with the SHA extensions (SHA-NI)
 * where present, else portable C.
 *
 * Exposed through Node-API (node_api.h) only: rootSync(bytes, offset, quads)
 * and root(bytes, quads) -> Promise, the latter on the libuv thread pool.
 */
#ifndef CAIRN_NO_NAPI
#include <node_api.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CAIRN_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};
static const uint32_t IV[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
};

/* K[t] + W[t] of the constant padding block of a 64-byte message */
static uint32_t PAD_KW[64];
static int use_sha_ni = 0;
static int use_avx512 = 0;

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void pad_kw_init(void) {
  uint32_t w[64] = {0};
  w[0] = 0x80000000u;
  w[15] = 512;
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  for (int t = 0; t < 64; t++) PAD_KW[t] = w[t] + K[t];
}

static void rounds_c(uint32_t s[8], const uint32_t kw[64]) {
  uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
  for (int t = 0; t < 64; t++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + kw[t];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

/* out = trunc254(SHA-256(in[0..64])); out may alias in */
static void hash64_c(const uint8_t *in, uint8_t *out) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++) {
    w[t] = ((uint32_t)in[4 * t] << 24) | ((uint32_t)in[4 * t + 1] << 16) | ((uint32_t)in[4 * t + 2] << 8) | in[4 * t + 3];
  }
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  for (int t = 0; t < 64; t++) w[t] += K[t];
  uint32_t s[8];
  memcpy(s, IV, sizeof s);
  rounds_c(s, w);
  rounds_c(s, PAD_KW);
  for (int t = 0; t < 8; t++) {
    out[4 * t] = s[t] >> 24; out[4 * t + 1] = s[t] >> 16; out[4 * t + 2] = s[t] >> 8; out[4 * t + 3] = s[t];
  }
  out[31] &= 0x3f;
}

#ifdef CAIRN_X86
#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/*
 * Two independent 64-byte messages at a time, so that two sha256rnds2
 * dependency chains are in flight. On the AMD EPYC this was measured on, the
 * out-of-order core already overlapped consecutive single-message calls and
 * the gain was within noise (docs/performance.md); it costs nothing either.
 */
#define ROUNDS_4(S0, S1, M) do { \
    S1 = _mm_sha256rnds2_epu32(S1, S0, M); \
    S0 = _mm_sha256rnds2_epu32(S0, S1, _mm_shuffle_epi32(M, 0x0E)); \
  } while (0)

#define BSWAP_NI _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)

/* the IV in the ABEF / CDGH lane order SHA-NI wants */
SHA_TARGET static inline void iv_ni(__m128i *abef, __m128i *cdgh) {
  __m128i tmp = _mm_loadu_si128((const __m128i *)&IV[0]);
  __m128i iv1 = _mm_loadu_si128((const __m128i *)&IV[4]);
  tmp = _mm_shuffle_epi32(tmp, 0xB1);
  iv1 = _mm_shuffle_epi32(iv1, 0x1B);
  *abef = _mm_alignr_epi8(tmp, iv1, 8);
  *cdgh = _mm_blend_epi16(iv1, tmp, 0xF0);
}

/* ABEF / CDGH back to A..H order, as 32 big-endian bytes */
SHA_TARGET static inline void store_ni(__m128i abef, __m128i cdgh, uint8_t *out) {
  const __m128i t = _mm_shuffle_epi32(abef, 0x1B);
  cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(_mm_blend_epi16(t, cdgh, 0xF0), BSWAP_NI));
  _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(_mm_alignr_epi8(cdgh, t, 8), BSWAP_NI));
}

SHA_TARGET static void hash64x2_ni(const uint8_t *in0, uint8_t *out0, const uint8_t *in1, uint8_t *out1) {
  const __m128i BSWAP = BSWAP_NI;
  __m128i IV0, IV1;
  iv_ni(&IV0, &IV1);

  __m128i a0 = IV0, a1 = IV1, b0 = IV0, b1 = IV1;
  __m128i ma[4], mb[4];
  for (int i = 0; i < 4; i++) {
    ma[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 16 * i)), BSWAP);
    mb[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 16 * i)), BSWAP);
  }
  for (int i = 0; i < 16; i++) {
    const __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);
    __m128i xa = _mm_add_epi32(ma[i & 3], k);
    __m128i xb = _mm_add_epi32(mb[i & 3], k);
    a1 = _mm_sha256rnds2_epu32(a1, a0, xa);
    b1 = _mm_sha256rnds2_epu32(b1, b0, xb);
    if (i >= 3 && i <= 14) {
      int n = (i + 1) & 3, p = (i - 1) & 3, c = i & 3;
      ma[n] = _mm_sha256msg2_epu32(_mm_add_epi32(ma[n], _mm_alignr_epi8(ma[c], ma[p], 4)), ma[c]);
      mb[n] = _mm_sha256msg2_epu32(_mm_add_epi32(mb[n], _mm_alignr_epi8(mb[c], mb[p], 4)), mb[c]);
    }
    a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(xa, 0x0E));
    b0 = _mm_sha256rnds2_epu32(b0, b1, _mm_shuffle_epi32(xb, 0x0E));
    if (i >= 1 && i <= 12) {
      int p = (i - 1) & 3, c = i & 3;
      ma[p] = _mm_sha256msg1_epu32(ma[p], ma[c]);
      mb[p] = _mm_sha256msg1_epu32(mb[p], mb[c]);
    }
  }
  a0 = _mm_add_epi32(a0, IV0); a1 = _mm_add_epi32(a1, IV1);
  b0 = _mm_add_epi32(b0, IV0); b1 = _mm_add_epi32(b1, IV1);
  const __m128i sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1;
  for (int i = 0; i < 16; i++) {
    const __m128i kw = _mm_loadu_si128((const __m128i *)&PAD_KW[4 * i]);
    const __m128i kwh = _mm_shuffle_epi32(kw, 0x0E);
    a1 = _mm_sha256rnds2_epu32(a1, a0, kw);
    b1 = _mm_sha256rnds2_epu32(b1, b0, kw);
    a0 = _mm_sha256rnds2_epu32(a0, a1, kwh);
    b0 = _mm_sha256rnds2_epu32(b0, b1, kwh);
  }
  a0 = _mm_add_epi32(a0, sa0); a1 = _mm_add_epi32(a1, sa1);
  b0 = _mm_add_epi32(b0, sb0); b1 = _mm_add_epi32(b1, sb1);
  store_ni(a0, a1, out0);
  store_ni(b0, b1, out1);
  out0[31] &= 0x3f;
  out1[31] &= 0x3f;
}

/*
 * `blocks` whole 64-byte blocks of `p` into the ABEF / CDGH state: the
 * compression function of FIPS 180-4 §6.2.2 with the SHA extensions, the
 * message schedule by sha256msg1 / sha256msg2 as in hash64x2_ni, one message.
 */
SHA_TARGET static void compress_ni(__m128i *abef, __m128i *cdgh, const uint8_t *p, size_t blocks) {
  const __m128i BSWAP = BSWAP_NI;
  __m128i s0 = *abef, s1 = *cdgh;
  for (size_t b = 0; b < blocks; b++, p += 64) {
    const __m128i save0 = s0, save1 = s1;
    __m128i m[4];
    for (int i = 0; i < 4; i++) m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), BSWAP);
    for (int i = 0; i < 16; i++) {
      const __m128i x = _mm_add_epi32(m[i & 3], _mm_loadu_si128((const __m128i *)&K[4 * i]));
      s1 = _mm_sha256rnds2_epu32(s1, s0, x);
      if (i >= 3 && i <= 14) {
        int n = (i + 1) & 3, q = (i - 1) & 3, c = i & 3;
        m[n] = _mm_sha256msg2_epu32(_mm_add_epi32(m[n], _mm_alignr_epi8(m[c], m[q], 4)), m[c]);
      }
      s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(x, 0x0E));
      if (i >= 1 && i <= 12) {
        int q = (i - 1) & 3, c = i & 3;
        m[q] = _mm_sha256msg1_epu32(m[q], m[c]);
      }
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }
  *abef = s0;
  *cdgh = s1;
}

/*
 * out = SHA-256(msg[0..len]) with the SHA extensions, any length: the whole
 * blocks where they lie, then the last bytes with the standard padding (FIPS
 * 180-4 §5.1.1: 0x80, zeros, the length in bits) in one last block, or two
 * when fewer than 9 bytes are left in it. sha256x16's engine where AVX-512 is
 * missing: the messages one after another, still off the event loop.
 */
SHA_TARGET static void sha256_ni(const uint8_t *msg, size_t len, uint8_t out[32]) {
  __m128i abef, cdgh;
  iv_ni(&abef, &cdgh);
  size_t whole = len / 64, rest = len - 64 * whole, blocks = rest + 9 > 64 ? 2 : 1;
  compress_ni(&abef, &cdgh, msg, whole);
  uint8_t tail[128] = {0};
  memcpy(tail, msg + 64 * whole, rest);
  tail[rest] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int k = 0; k < 8; k++) tail[64 * blocks - 1 - k] = (uint8_t)(bits >> (8 * k));
  compress_ni(&abef, &cdgh, tail, blocks);
  store_ni(abef, cdgh, out);
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 7)
#define CAIRN_AVX512 1
/*
 * Sixteen independent 64-byte messages at a time in AVX-512, one message per
 * 32-bit lane (word-sliced): the rotations are one instruction (vprord) and
 * Ch, Maj and the three-way XORs one vpternlogd each. The same rounds as
 * FIPS 180-4 §6.2.2, the padding block's K + W words again precomputed. On
 * the AMD EPYC (Zen 5) this was measured on, 39 M node hashes/s per core
 * against 20 M with the SHA extensions two at a time (docs/performance.md).
 */
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

#define T16_ROUND(a, b, c, d, e, f, g, h, kw) do { \
    __m512i s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25), 0x96); \
    __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA); \
    __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(h, s1), _mm512_add_epi32(ch, kw)); \
    __m512i s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22), 0x96); \
    __m512i mj = _mm512_ternarylogic_epi32(a, b, c, 0xE8); \
    d = _mm512_add_epi32(d, t1); \
    h = _mm512_add_epi32(t1, _mm512_add_epi32(s0, mj)); \
  } while (0)

/* 16x16 transpose of 32-bit words, in place */
AVX512_TARGET static inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  /* u[4g + c] lane L = column 4L + c of rows 4g..4g+3 */
  __m512i v[16];
  for (int c = 0; c < 4; c++) {
    v[c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
    v[4 + c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
    v[8 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
    v[12 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
  }
  for (int c = 0; c < 4; c++) {
    r[c] = _mm512_shuffle_i32x4(v[c], v[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(v[c], v[8 + c], 0xdd);
    r[4 + c] = _mm512_shuffle_i32x4(v[4 + c], v[12 + c], 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v[4 + c], v[12 + c], 0xdd);
  }
}

/* one block of each of sixteen messages, word-sliced: its schedule and rounds, added into the state */
AVX512_TARGET static void compress16(__m512i st[8], __m512i w[16]) {
  __m512i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
  for (int t = 0; t < 64; t += 8) {
    if (t >= 16) {
      for (int j = 0; j < 8; j++) {
        int k = t + j;
        __m512i x15 = w[(k - 15) & 15], x2 = w[(k - 2) & 15];
        __m512i s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(x15, 7), _mm512_ror_epi32(x15, 18), _mm512_srli_epi32(x15, 3), 0x96);
        __m512i s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(x2, 17), _mm512_ror_epi32(x2, 19), _mm512_srli_epi32(x2, 10), 0x96);
        w[k & 15] = _mm512_add_epi32(_mm512_add_epi32(w[k & 15], s0), _mm512_add_epi32(w[(k - 7) & 15], s1));
      }
    }
#define KW(j) _mm512_add_epi32(w[(t + (j)) & 15], _mm512_set1_epi32((int)K[t + (j)]))
    T16_ROUND(a, b, c, d, e, f, g, h, KW(0));
    T16_ROUND(h, a, b, c, d, e, f, g, KW(1));
    T16_ROUND(g, h, a, b, c, d, e, f, KW(2));
    T16_ROUND(f, g, h, a, b, c, d, e, KW(3));
    T16_ROUND(e, f, g, h, a, b, c, d, KW(4));
    T16_ROUND(d, e, f, g, h, a, b, c, KW(5));
    T16_ROUND(c, d, e, f, g, h, a, b, KW(6));
    T16_ROUND(b, c, d, e, f, g, h, a, KW(7));
#undef KW
  }
  st[0] = _mm512_add_epi32(st[0], a); st[1] = _mm512_add_epi32(st[1], b);
  st[2] = _mm512_add_epi32(st[2], c); st[3] = _mm512_add_epi32(st[3], d);
  st[4] = _mm512_add_epi32(st[4], e); st[5] = _mm512_add_epi32(st[5], f);
  st[6] = _mm512_add_epi32(st[6], g); st[7] = _mm512_add_epi32(st[7], h);
}

/* the 64-byte block at offset `at` of each lane's message, as sixteen word-sliced schedule words */
AVX512_TARGET static inline void load16(const uint8_t *const lanes[16], size_t at, __m512i w[16]) {
  const __m512i BSWAP = _mm512_broadcast_i32x4(_mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL));
  for (int i = 0; i < 16; i++) w[i] = _mm512_shuffle_epi8(_mm512_loadu_si512((const void *)(lanes[i] + at)), BSWAP);
  transpose16(w);
}

/* the rounds of a block whose K + W words are known (the constant padding block of a 64-byte message) */
AVX512_TARGET static void compress16_kw(__m512i st[8], const uint32_t kw[64]) {
  __m512i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
  for (int t = 0; t < 64; t += 8) {
#define KW(j) _mm512_set1_epi32((int)kw[t + (j)])
    T16_ROUND(a, b, c, d, e, f, g, h, KW(0));
    T16_ROUND(h, a, b, c, d, e, f, g, KW(1));
    T16_ROUND(g, h, a, b, c, d, e, f, KW(2));
    T16_ROUND(f, g, h, a, b, c, d, e, KW(3));
    T16_ROUND(e, f, g, h, a, b, c, d, KW(4));
    T16_ROUND(d, e, f, g, h, a, b, c, KW(5));
    T16_ROUND(c, d, e, f, g, h, a, b, KW(6));
    T16_ROUND(b, c, d, e, f, g, h, a, KW(7));
#undef KW
  }
  st[0] = _mm512_add_epi32(st[0], a); st[1] = _mm512_add_epi32(st[1], b);
  st[2] = _mm512_add_epi32(st[2], c); st[3] = _mm512_add_epi32(st[3], d);
  st[4] = _mm512_add_epi32(st[4], e); st[5] = _mm512_add_epi32(st[5], f);
  st[6] = _mm512_add_epi32(st[6], g); st[7] = _mm512_add_epi32(st[7], h);
}

/* the sixteen digests, big-endian, 32 bytes each at out; the last word ANDed with `last` (trunc254) */
AVX512_TARGET static inline void store16(const __m512i st[8], uint32_t last, uint8_t *out) {
  const __m512i BSWAP = _mm512_broadcast_i32x4(_mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL));
  __m512i r[16];
  for (int i = 0; i < 7; i++) r[i] = st[i];
  r[7] = _mm512_and_si512(st[7], _mm512_set1_epi32((int)last));
  for (int i = 8; i < 16; i++) r[i] = _mm512_setzero_si512();
  transpose16(r);
  for (int i = 0; i < 16; i++) _mm256_storeu_si256((__m256i *)(out + 32 * i), _mm512_castsi512_si256(_mm512_shuffle_epi8(r[i], BSWAP)));
}

/* out[32 i ..] = trunc254(SHA-256(in[64 i .. 64 i + 64])) for i < 16; out may alias in (all is read first) */
AVX512_TARGET static void hash64x16_avx512(const uint8_t *in, uint8_t *out) {
  const uint8_t *lanes[16];
  __m512i st[8], w[16];
  for (int i = 0; i < 16; i++) lanes[i] = in + 64 * i;
  for (int i = 0; i < 8; i++) st[i] = _mm512_set1_epi32((int)IV[i]);
  load16(lanes, 0, w);
  compress16(st, w);
  compress16_kw(st, PAD_KW);
  /* trunc254: the two top bits of the last byte, the low byte of the last word */
  store16(st, 0xFFFFFF3Fu, out);
}

/*
 * SHA-256 of sixteen messages of the same length at once (the leaves of a
 * file: cairn's one-pass import hashes its 1 MiB leaves sixteen at a time,
 * off the event loop), with the standard padding (FIPS 180-4 §5.1.1) in one
 * or two last blocks built per lane. Digests to out, 32 bytes each, in lane
 * order: 4.3 GB/s per core here against 1.9 GB/s for OpenSSL one at a time.
 */
AVX512_TARGET static void sha256x16_avx512(const uint8_t *const msgs[16], size_t len, uint8_t *out) {
  __m512i st[8], w[16];
  for (int i = 0; i < 8; i++) st[i] = _mm512_set1_epi32((int)IV[i]);
  size_t whole = len / 64;
  for (size_t b = 0; b < whole; b++) {
    load16(msgs, 64 * b, w);
    compress16(st, w);
  }
  /* the last bytes, 0x80, zeros and the length in bits: one block, or two when fewer than 9 bytes are left */
  size_t rest = len - 64 * whole, blocks = rest + 9 > 64 ? 2 : 1;
  uint8_t tail[16][128];
  const uint8_t *tails[16];
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 16; i++) {
    memset(tail[i], 0, sizeof tail[i]);
    memcpy(tail[i], msgs[i] + 64 * whole, rest);
    tail[i][rest] = 0x80;
    for (int k = 0; k < 8; k++) tail[i][64 * blocks - 1 - k] = (uint8_t)(bits >> (8 * k));
    tails[i] = tail[i];
  }
  for (size_t b = 0; b < blocks; b++) {
    load16(tails, 64 * b, w);
    compress16(st, w);
  }
  store16(st, 0xFFFFFFFFu, out);
}
#endif

static int cpu_has_sha_ni(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  int sha = (b >> 29) & 1;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int sse41 = (c >> 19) & 1, ssse3 = (c >> 9) & 1;
  return sha && sse41 && ssse3;
}

#ifdef CAIRN_AVX512
/* AVX-512 F and BW, and an OS that saves the ZMM and opmask state (XCR0 bits 1, 2, 5, 6, 7) */
static int cpu_has_avx512(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0;
  unsigned int lo, hi;
  __asm__ volatile ("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xE6) != 0xE6) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return ((b >> 16) & 1) && ((b >> 30) & 1);
}
#endif
#endif

/*
 * Hashes `pairs` consecutive 64-byte pairs of `in` into `out` (32 bytes each).
 * out may equal in: output i is written after inputs 2i, 2i+1 are read, and
 * the two-way kernel reads both pairs before writing.
 */
static void hash_layer(const uint8_t *in, uint8_t *out, size_t pairs) {
  size_t i = 0;
#if defined(CAIRN_X86) && defined(CAIRN_AVX512)
  /* sixteen pairs at a time; each call reads its 1 KiB before it writes its 512 bytes, below the next call's input */
  if (use_avx512) for (; i + 16 <= pairs; i += 16) hash64x16_avx512(in + 64 * i, out + 32 * i);
#endif
#ifdef CAIRN_X86
  if (use_sha_ni) {
    uint8_t t0[32], t1[32];
    for (; i + 1 < pairs; i += 2) {
      hash64x2_ni(in + 64 * i, t0, in + 64 * (i + 1), t1);
      memcpy(out + 32 * i, t0, 32);
      memcpy(out + 32 * (i + 1), t1, 32);
    }
    if (i < pairs) {
      hash64x2_ni(in + 64 * i, t0, in + 64 * i, t1);
      memcpy(out + 32 * i, t0, 32);
      i++;
    }
    return;
  }
#endif
  for (; i < pairs; i++) hash64_c(in + 64 * i, out + 32 * i);
}

/* Fr32: 127 bytes in -> 128 out, two zero bits after every 254 (FRC-0069) */
static void fr32_quad(const uint8_t *s, uint8_t *d) {
  memcpy(d, s, 31);
  d[31] = s[31] & 0x3f;
  for (int i = 32; i < 63; i++) d[i] = (uint8_t)((s[i] << 2) | (s[i - 1] >> 6));
  d[63] = (uint8_t)(((s[63] << 2) | (s[62] >> 6)) & 0x3f);
  for (int i = 64; i < 95; i++) d[i] = (uint8_t)((s[i] << 4) | (s[i - 1] >> 4));
  d[95] = (uint8_t)(((s[95] << 4) | (s[94] >> 4)) & 0x3f);
  for (int i = 96; i < 127; i++) d[i] = (uint8_t)((s[i] << 6) | (s[i - 1] >> 2));
  d[127] = s[126] >> 2;
}

/*
 * Root of the Fr32 subtree of `quads` quads (a power of two) of `src`. Each
 * group of 64 quads is padded into an 8 KiB buffer and reduced to one node
 * while it is in L1 (its first four layers are whole runs of 16 pairs, for
 * the AVX-512 kernel); the group nodes are then reduced layer by layer.
 * Returns 0, or -1 if memory ran out.
 */
#define GROUP 64
static int subtree_root(const uint8_t *src, size_t quads, uint8_t out[32]) {
  uint8_t leaves[GROUP * 128];
  if (quads < GROUP) {
    for (size_t q = 0; q < quads; q++) fr32_quad(src + 127 * q, leaves + 128 * q);
    for (size_t n = quads * 4; n > 1; n >>= 1) hash_layer(leaves, leaves, n / 2);
    memcpy(out, leaves, 32);
    return 0;
  }
  size_t groups = quads / GROUP;
  uint8_t *nodes = malloc(groups * 32);
  if (nodes == NULL) return -1;
  for (size_t g = 0; g < groups; g++) {
    for (size_t q = 0; q < GROUP; q++) fr32_quad(src + 127 * (g * GROUP + q), leaves + 128 * q);
    for (size_t n = GROUP * 4; n > 1; n >>= 1) hash_layer(leaves, leaves, n / 2);
    memcpy(nodes + 32 * g, leaves, 32);
  }
  for (size_t n = groups; n > 1; n >>= 1) hash_layer(nodes, nodes, n / 2);
  memcpy(out, nodes, 32);
  free(nodes);
  return 0;
}

#ifndef CAIRN_NO_NAPI /* built without Node-API for the C micro-benchmark in docs/performance.md */
/* ---- Node-API glue ---- */

#define CHECK(env, call) do { if ((call) != napi_ok) { napi_throw_error((env), "ERR_NATIVE", #call " failed"); return NULL; } } while (0)

static int is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static napi_value get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  size_t len;
  void *ptr;
  napi_value ab;
  size_t off;
  bool is_ta;
  CHECK(env, napi_is_typedarray(env, value, &is_ta));
  if (!is_ta) { napi_throw_type_error(env, NULL, "expected a Uint8Array"); return NULL; }
  CHECK(env, napi_get_typedarray_info(env, value, &type, &len, &ptr, &ab, &off));
  if (type != napi_uint8_array) { napi_throw_type_error(env, NULL, "expected a Uint8Array"); return NULL; }
  *data = ptr;
  *length = len;
  return value;
}

/* rootSync(bytes: Uint8Array, offset: number, quads: number): Uint8Array(32) */
static napi_value root_sync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t length;
  if (argc < 3 || get_bytes(env, argv[0], &data, &length) == NULL) {
    if (argc < 3) napi_throw_type_error(env, NULL, "rootSync(bytes, offset, quads)");
    return NULL;
  }
  int64_t offset, quads;
  CHECK(env, napi_get_value_int64(env, argv[1], &offset));
  CHECK(env, napi_get_value_int64(env, argv[2], &quads));
  if (offset < 0 || quads <= 0 || !is_pow2((size_t)quads) || (size_t)offset + 127 * (size_t)quads > length) {
    napi_throw_range_error(env, NULL, "rootSync: quads must be a power of two and lie within bytes");
    return NULL;
  }
  napi_value result;
  void *out;
  napi_value ab;
  CHECK(env, napi_create_arraybuffer(env, 32, &out, &ab));
  if (subtree_root(data + offset, (size_t)quads, out) != 0) { napi_throw_error(env, "ERR_NATIVE", "out of memory"); return NULL; }
  CHECK(env, napi_create_typedarray(env, napi_uint8_array, 32, ab, 0, &result));
  return result;
}

/* layerSync(nodes: Uint8Array): the next layer up, ceil(n/2) nodes; an odd last node is paired with zeroRight */
static napi_value layer_sync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data, *zero;
  size_t length, zlength;
  if (argc < 2) { napi_throw_type_error(env, NULL, "layerSync(nodes, zeroRight)"); return NULL; }
  if (get_bytes(env, argv[0], &data, &length) == NULL || get_bytes(env, argv[1], &zero, &zlength) == NULL) return NULL;
  if (length % 32 != 0 || zlength != 32) { napi_throw_range_error(env, NULL, "layerSync: nodes must be 32-byte multiples"); return NULL; }
  size_t count = length / 32, pairs = count / 2, out_count = (count + 1) / 2;
  void *out;
  napi_value ab, result;
  CHECK(env, napi_create_arraybuffer(env, out_count * 32, &out, &ab));
  hash_layer(data, out, pairs);
  if (count % 2 == 1) {
    uint8_t last[64];
    memcpy(last, data + 32 * (count - 1), 32);
    memcpy(last + 32, zero, 32);
    hash_layer(last, (uint8_t *)out + 32 * pairs, 1);
  }
  CHECK(env, napi_create_typedarray(env, napi_uint8_array, out_count * 32, ab, 0, &result));
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  const uint8_t *data;
  size_t quads;
  /* quads per returned node: quads for one root, less for a layer of roots */
  size_t region;
  int status;
  uint8_t *out;
} job_t;

static void job_execute(napi_env env, void *arg) {
  (void)env;
  job_t *job = arg;
  job->status = 0;
  for (size_t r = 0; r < job->quads / job->region && job->status == 0; r++) {
    job->status = subtree_root(job->data + 127 * job->region * r, job->region, job->out + 32 * r);
  }
}

static void job_complete(napi_env env, napi_status status, void *arg) {
  job_t *job = arg;
  napi_value result;
  if (status != napi_ok || job->status != 0) {
    napi_value msg, err;
    napi_create_string_utf8(env, "native CommP job failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  } else {
    void *out;
    napi_value ab;
    size_t bytes = 32 * (job->quads / job->region);
    napi_create_arraybuffer(env, bytes, &out, &ab);
    memcpy(out, job->out, bytes);
    napi_create_typedarray(env, napi_uint8_array, bytes, ab, 0, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job->out);
  free(job);
}

/*
 * root(bytes: Uint8Array, quads: number[, region: number]): Promise<Uint8Array>,
 * on the libuv thread pool: the root of the subtree (32 bytes), or with
 * `region` the roots of its consecutive runs of `region` quads (a tree layer).
 */
static napi_value root_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t length;
  if (argc < 2) { napi_throw_type_error(env, NULL, "root(bytes, quads[, region])"); return NULL; }
  if (get_bytes(env, argv[0], &data, &length) == NULL) return NULL;
  int64_t quads, region;
  CHECK(env, napi_get_value_int64(env, argv[1], &quads));
  region = quads;
  if (argc >= 3) {
    napi_valuetype type;
    CHECK(env, napi_typeof(env, argv[2], &type));
    if (type != napi_undefined) CHECK(env, napi_get_value_int64(env, argv[2], &region));
  }
  if (quads <= 0 || !is_pow2((size_t)quads) || 127 * (size_t)quads > length || region <= 0 || !is_pow2((size_t)region) || region > quads) {
    napi_throw_range_error(env, NULL, "root: quads and region must be powers of two, region <= quads, within bytes");
    return NULL;
  }
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) { napi_throw_error(env, "ERR_NATIVE", "out of memory"); return NULL; }
  job->out = malloc(32 * (size_t)(quads / region));
  if (job->out == NULL) { free(job); napi_throw_error(env, "ERR_NATIVE", "out of memory"); return NULL; }
  job->data = data;
  job->quads = (size_t)quads;
  job->region = (size_t)region;
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &job->deferred, &promise));
  CHECK(env, napi_create_reference(env, argv[0], 1, &job->keep));
  CHECK(env, napi_create_string_utf8(env, "cairn:commp", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work));
  CHECK(env, napi_queue_async_work(env, job->work));
  return promise;
}

#ifdef CAIRN_X86
/* the engine sha256x16 uses, chosen once at load: NULL when it is not offered */
static const char *sha256x16_engine(void) {
#ifdef CAIRN_AVX512
  if (use_avx512) return "avx512";
#endif
  return use_sha_ni ? "sha-ni" : NULL;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  const uint8_t *lanes[16];
  size_t count;
  size_t length;
  uint8_t out[16 * 32];
} sha_job_t;

static void sha_execute(napi_env env, void *arg) {
  (void)env;
  sha_job_t *job = arg;
#ifdef CAIRN_AVX512
  if (use_avx512) { sha256x16_avx512(job->lanes, job->length, job->out); return; }
#endif
  for (size_t i = 0; i < job->count; i++) sha256_ni(job->lanes[i], job->length, job->out + 32 * i);
}

static void sha_complete(napi_env env, napi_status status, void *arg) {
  sha_job_t *job = arg;
  if (status != napi_ok) {
    napi_value msg, err;
    napi_create_string_utf8(env, "native SHA-256 job failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  } else {
    void *out;
    napi_value ab, result;
    napi_create_arraybuffer(env, 32 * job->count, &out, &ab);
    memcpy(out, job->out, 32 * job->count);
    napi_create_typedarray(env, napi_uint8_array, 32 * job->count, ab, 0, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

/*
 * sha256x16(messages: Uint8Array[]): Promise<Uint8Array>, on the libuv pool:
 * the SHA-256 digests (32 bytes each, in order) of 1…16 messages of one length.
 * Sixteen at once in AVX-512 lanes where the CPU has it; where AVX-512 is
 * missing (or CAIRN_COMMP_NO_AVX512 is set) but SHA-NI is there, one after
 * another with the SHA extensions (sha256_ni), still off the event loop;
 * with neither it is not offered (sha256x16Engine names the one in use).
 */
static napi_value sha256x16_async(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "sha256x16(messages: Uint8Array[])");
    return NULL;
  }
  uint32_t count;
  CHECK(env, napi_get_array_length(env, argv[0], &count));
  if (count < 1 || count > 16) { napi_throw_range_error(env, NULL, "sha256x16: 1 to 16 messages"); return NULL; }
  sha_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) { napi_throw_error(env, "ERR_NATIVE", "out of memory"); return NULL; }
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    uint8_t *data;
    size_t length;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok || get_bytes(env, item, &data, &length) == NULL) { free(job); return NULL; }
    if (i > 0 && length != job->length) { free(job); napi_throw_range_error(env, NULL, "sha256x16: messages of one length"); return NULL; }
    job->lanes[i] = data;
    job->length = length;
  }
  /* lanes past the last message hash the first again; their digests are not returned */
  for (uint32_t i = count; i < 16; i++) job->lanes[i] = job->lanes[0];
  job->count = count;
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &job->deferred, &promise));
  CHECK(env, napi_create_reference(env, argv[0], 1, &job->keep));
  CHECK(env, napi_create_string_utf8(env, "cairn:sha256x16", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_async_work(env, NULL, name, sha_execute, sha_complete, job, &job->work));
  CHECK(env, napi_queue_async_work(env, job->work));
  return promise;
}
#endif

static napi_value init(napi_env env, napi_value exports) {
  pad_kw_init();
#ifdef CAIRN_X86
  use_sha_ni = getenv("CAIRN_COMMP_NO_SHANI") == NULL && cpu_has_sha_ni();
#ifdef CAIRN_AVX512
  use_avx512 = getenv("CAIRN_COMMP_NO_AVX512") == NULL && cpu_has_avx512();
#endif
#endif
  napi_value fn, flag;
  CHECK(env, napi_create_function(env, "rootSync", NAPI_AUTO_LENGTH, root_sync, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "rootSync", fn));
  CHECK(env, napi_create_function(env, "layerSync", NAPI_AUTO_LENGTH, layer_sync, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "layerSync", fn));
  CHECK(env, napi_create_function(env, "root", NAPI_AUTO_LENGTH, root_async, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "root", fn));
  CHECK(env, napi_get_boolean(env, 1, &flag));
  CHECK(env, napi_set_named_property(env, exports, "layers", flag));
  CHECK(env, napi_get_boolean(env, use_sha_ni, &flag));
  CHECK(env, napi_set_named_property(env, exports, "shaNi", flag));
  CHECK(env, napi_get_boolean(env, use_avx512, &flag));
  CHECK(env, napi_set_named_property(env, exports, "avx512", flag));
#ifdef CAIRN_X86
  const char *engine = sha256x16_engine();
  if (engine != NULL) {
    napi_value name;
    CHECK(env, napi_create_function(env, "sha256x16", NAPI_AUTO_LENGTH, sha256x16_async, NULL, &fn));
    CHECK(env, napi_set_named_property(env, exports, "sha256x16", fn));
    CHECK(env, napi_create_string_utf8(env, engine, NAPI_AUTO_LENGTH, &name));
    CHECK(env, napi_set_named_property(env, exports, "sha256x16Engine", name));
  }
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
#endif
