/**
 * The age payload (age-encryption.org/v1, "Payload",
 * https://github.com/C2SP/C2SP/blob/main/age.md): a 16-byte nonce, then the
 * plaintext in 64 KiB chunks, each sealed with ChaCha20-Poly1305 (RFC 8439)
 * under HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload"), with a
 * 12-byte nonce of an 11-byte big-endian chunk counter and a last-chunk flag
 * (the STREAM construction). Only the last chunk may be short, and it is
 * empty only when the whole plaintext is.
 *
 * Why not age-encryption's own STREAM (its `encryptSTREAM` / `decryptSTREAM`):
 * it seals with @noble/ciphers' JavaScript ChaCha20-Poly1305, measured at
 * ~200 MiB/s per 64 KiB chunk on the 2-core machine cairn is benchmarked on,
 * slower than a plaintext `cairn add` as a whole; node:crypto's OpenSSL
 * ChaCha20-Poly1305 seals the same chunks at ~3,200 MiB/s. The importer reads
 * a file twice and must produce the same ciphertext both times, so it seals
 * twice; with noble, `add --encrypt` would run at about a third of plaintext
 * speed. What is written here is only the chunking and the nonce schedule
 * above; the AEAD is OpenSSL's, the key derivation node:crypto's HKDF, and
 * test/crypto checks every byte against age-encryption's STREAM and the
 * `age` command.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto'
import { CairnError } from '../errors.js'
import { buffers } from '../fs/pool.js'

/** Plaintext bytes per chunk. */
export const CHUNK = 64 * 1024
/** Poly1305 tag bytes added to each chunk. */
export const TAG = 16
/** A sealed full chunk. */
export const SEALED = CHUNK + TAG
/** The payload's nonce, before the first chunk. */
export const NONCE = 16

const payloadInfo = Buffer.from('payload')

/** The payload key: HKDF-SHA-256(file key, salt = nonce, info = "payload"). */
export function payloadKey (fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, payloadInfo, 32))
}

/** Number of chunks for `size` plaintext bytes: at least one, the last possibly empty only when size is 0. */
export function chunkCount (size: number): number {
  return Math.max(1, Math.ceil(size / CHUNK))
}

/** Payload bytes (nonce included) of `size` plaintext bytes. */
export function payloadSize (size: number): number {
  return NONCE + size + TAG * chunkCount(size)
}

/** Plaintext bytes of a ciphertext (nonce excluded) of `size` bytes, or undefined when no plaintext seals to that size. */
export function plaintextSize (size: number): number | undefined {
  if (size < TAG) return undefined
  // an empty plaintext is one empty chunk: its tag alone
  if (size === TAG) return 0
  const full = Math.floor(size / SEALED)
  const rest = size % SEALED
  if (rest > 0 && rest <= TAG) return undefined
  if (rest === 0 && full === 0) return undefined
  return size - TAG * (full + (rest > 0 ? 1 : 0))
}

function chunkNonce (index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12)
  // the counter is 11 bytes; a file has fewer than 2^53 chunks, so 7 bytes hold it
  nonce.writeUIntBE(Math.floor(index / 2 ** 24), 4, 4)
  nonce.writeUIntBE(index % 2 ** 24, 8, 3)
  nonce[11] = last ? 1 : 0
  return nonce
}

/** Seals chunk `index`: its ciphertext and tag, in that order. */
export function seal (key: Uint8Array, index: number, last: boolean, plaintext: Uint8Array): [Buffer, Buffer] {
  const cipher = createCipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG })
  const body = cipher.update(plaintext)
  cipher.final()
  return [body, cipher.getAuthTag()]
}

/** Opens chunk `index` (ciphertext ‖ tag), or ERR_DECRYPTION_FAILED. */
export function open (key: Uint8Array, index: number, last: boolean, sealed: Uint8Array): Buffer {
  if (sealed.byteLength < TAG) throw truncated()
  const decipher = createDecipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG })
  decipher.setAuthTag(sealed.subarray(sealed.byteLength - TAG))
  const body = decipher.update(sealed.subarray(0, sealed.byteLength - TAG))
  try {
    decipher.final()
  } catch {
    throw new CairnError('ERR_DECRYPTION_FAILED', `chunk ${index} of the age payload does not authenticate${last ? ' as the last chunk' : ''}: the ciphertext was altered, truncated or extended`)
  }
  return body
}

function truncated (): CairnError {
  return new CairnError('ERR_DECRYPTION_FAILED', 'the age payload is truncated')
}

/**
 * Cuts bytes arriving in pieces of any size into chunks of `size`, holding
 * the latest full chunk back until more bytes follow: only then is it known
 * not to be the last chunk, which STREAM marks.
 */
class HeldChunks {
  private readonly held: Buffer
  private used = 0

  constructor (size: number) {
    this.held = Buffer.allocUnsafe(size)
  }

  /** Calls `each` with every chunk now known not to be the last, in order. */
  update (bytes: Uint8Array, each: (chunk: Uint8Array) => void): void {
    const size = this.held.byteLength
    let rest = bytes
    while (rest.byteLength > 0) {
      if (this.used === size) {
        each(this.held)
        this.used = 0
      }
      if (this.used === 0 && rest.byteLength > size) {
        // a whole chunk with more after it: used in place, no copy
        each(rest.subarray(0, size))
        rest = rest.subarray(size)
        continue
      }
      const n = Math.min(size - this.used, rest.byteLength)
      this.held.set(rest.subarray(0, n), this.used)
      this.used += n
      rest = rest.subarray(n)
    }
  }

  /** The last chunk: what is held (possibly empty). */
  last (): Uint8Array {
    return this.held.subarray(0, this.used)
  }
}

/**
 * Seals a plaintext read in order: each `update` returns the payload bytes
 * now complete (the nonce first), `final` the rest. With `tags`, the tag of
 * chunk i is kept at tags[16i…] (chunks beyond its end are not kept).
 */
export class PayloadSealer {
  private readonly chunks = new HeldChunks(CHUNK)
  private index = 0
  private started = false

  constructor (private readonly key: Uint8Array, private readonly nonce: Uint8Array, private readonly tags?: Buffer) {}

  update (plaintext: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = this.started ? [] : [this.nonce]
    this.started = true
    this.chunks.update(plaintext, chunk => out.push(...this.seal(false, chunk)))
    return out
  }

  final (): Uint8Array[] {
    const out: Uint8Array[] = this.started ? [] : [this.nonce]
    this.started = true
    out.push(...this.seal(true, this.chunks.last()))
    return out
  }

  private seal (last: boolean, chunk: Uint8Array): [Buffer, Buffer] {
    const index = this.index++
    const sealed = seal(this.key, index, last, chunk)
    if (this.tags !== undefined && (index + 1) * TAG <= this.tags.byteLength) this.tags.set(sealed[1], index * TAG)
    return sealed
  }
}

/**
 * The payload bytes [offset, offset + length) of a plaintext of `size` bytes,
 * written into `into`, reading only the plaintext of the chunks they overlap
 * through `read(buffer, length, position)` (which returns the bytes it read).
 * Each chunk's ciphertext depends only on the key, its index, whether it is
 * the last, and its plaintext, so any range can be made on its own: the
 * importer's second pass re-seals leaves in any order, reading ahead.
 *
 * With `tags` (PayloadSealer's, from the first pass), each chunk's tag must
 * equal the one kept, else ERR_FILE_CHANGED: the Poly1305 tag authenticates
 * the chunk's ciphertext under a key only this process knows, so equal tags
 * mean the same bytes, and the second pass need not hash them again.
 */
export async function payloadRange (
  key: Uint8Array, nonce: Uint8Array, size: number, offset: number, length: number, into: Uint8Array,
  read: (buffer: Uint8Array, length: number, position: number) => Promise<number>,
  tags?: Buffer
): Promise<void> {
  const end = offset + length
  if (offset < 0 || end > payloadSize(size) || into.byteLength < length) throw new RangeError(`payload range ${offset}+${length} is outside a payload of ${payloadSize(size)} bytes`)
  let at = offset
  let written = 0
  if (at < NONCE) {
    const n = Math.min(NONCE, end) - at
    into.set(nonce.subarray(at, at + n), 0)
    written += n
    at += n
  }
  if (at >= end) return
  const first = Math.floor((at - NONCE) / SEALED)
  const final = Math.floor((end - 1 - NONCE) / SEALED)
  const plainStart = first * CHUNK
  const plainEnd = Math.min(size, (final + 1) * CHUNK)
  const plain = buffers.alloc(plainEnd - plainStart)
  try {
    const got = await read(plain, plain.byteLength, plainStart)
    if (got !== plain.byteLength) throw new CairnError('ERR_FILE_CHANGED', `the file is shorter than when it was read (${plainStart + got} bytes, expected ${size})`)
    sealRange(key, first, final, chunkCount(size) - 1, plain, at, end, into.subarray(written), tags)
  } finally {
    buffers.release(plain)
  }
}

/** Seals chunks `first` … `final` of `plain` (which starts at chunk `first`) and copies payload bytes [at, end) of them into `into`. */
function sealRange (key: Uint8Array, first: number, final: number, last: number, plain: Buffer, at: number, end: number, into: Uint8Array, tags?: Buffer): void {
  let written = 0
  for (let index = first; index <= final; index++) {
    const from = (index - first) * CHUNK
    const parts = seal(key, index, index === last, plain.subarray(from, Math.min(plain.byteLength, from + CHUNK)))
    if (tags !== undefined && tags.compare(parts[1], 0, TAG, index * TAG, (index + 1) * TAG) !== 0) {
      throw new CairnError('ERR_FILE_CHANGED', `the file changed after it was read: bytes ${index * CHUNK}–${index * CHUNK + CHUNK} differ`)
    }
    // the chunk's place in the payload
    let partStart = NONCE + index * SEALED
    for (const part of parts) {
      const lo = Math.max(at, partStart)
      const hi = Math.min(end, partStart + part.byteLength)
      if (hi > lo) {
        into.set(part.subarray(lo - partStart, hi - partStart), written)
        written += hi - lo
      }
      partStart += part.byteLength
    }
  }
}

/**
 * Opens a payload pushed in pieces of any size (nonce first): each `update`
 * returns the plaintext now authenticated, `final` checks that the last
 * chunk was marked last.
 */
export class PayloadOpener {
  private readonly nonce = Buffer.alloc(NONCE)
  private nonceUsed = 0
  private key: Uint8Array | undefined
  private readonly chunks = new HeldChunks(SEALED)
  private index = 0

  constructor (private readonly fileKey: Uint8Array) {}

  update (bytes: Uint8Array): Buffer[] {
    const out: Buffer[] = []
    let rest = bytes
    if (this.key === undefined) {
      const n = Math.min(NONCE - this.nonceUsed, rest.byteLength)
      this.nonce.set(rest.subarray(0, n), this.nonceUsed)
      this.nonceUsed += n
      rest = rest.subarray(n)
      if (this.nonceUsed < NONCE) return out
      this.key = payloadKey(this.fileKey, this.nonce)
    }
    const key = this.key
    this.chunks.update(rest, chunk => out.push(open(key, this.index++, false, chunk)))
    return out
  }

  final (): Buffer[] {
    if (this.key === undefined) throw truncated()
    const body = open(this.key, this.index++, true, this.chunks.last())
    if (body.byteLength === 0 && this.index > 1) throw new CairnError('ERR_DECRYPTION_FAILED', 'the age payload ends in an empty chunk after others (not allowed by the age format)')
    return [body]
  }
}
