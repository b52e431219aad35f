/**
 * Block verification: the multihash in a CID against the block's bytes.
 * sha2-256 goes through node:crypto (OpenSSL, SHA-NI where present), several
 * times faster than the pure-JS hasher multiformats would pick.
 */
import { createHash } from 'node:crypto'
import { equals } from 'multiformats/bytes'
import type { CID } from 'multiformats/cid'
import { IDENTITY, SHA2_256 } from '../codecs.js'
import { CairnError } from '../errors.js'

export function sha256 (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** The block an identity CID carries inline, or undefined for any other CID. */
export function inlined (cid: CID): Uint8Array | undefined {
  return cid.multihash.code === IDENTITY ? cid.multihash.digest : undefined
}

/** True when `bytes` hash to `cid`; throws for a hash function cairn does not verify. */
export function matches (cid: CID, bytes: Uint8Array): boolean {
  const mh = cid.multihash
  switch (mh.code) {
    case SHA2_256: return equals(sha256(bytes), mh.digest)
    case IDENTITY: return equals(bytes, mh.digest)
    default:
      throw new CairnError('ERR_DAG_INVALID', `cannot verify block ${cid.toString()}: unsupported multihash 0x${mh.code.toString(16)} (expected sha2-256 or identity)`)
  }
}

/** Throws ERR_BLOCK_MISMATCH unless `bytes` hash to `cid`. */
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  if (!matches(cid, bytes)) throw mismatch(cid, bytes.byteLength)
}

export function mismatch (cid: CID, length: number): CairnError {
  return new CairnError('ERR_BLOCK_MISMATCH', `block ${cid.toString()} does not hash to its CID (${length} bytes)`, { details: { cid: cid.toString() } })
}

/** A compact, exact key for sets and maps of CIDs. */
export function cidKey (cid: CID): string {
  return Buffer.from(cid.bytes.buffer, cid.bytes.byteOffset, cid.bytes.byteLength).toString('latin1')
}
