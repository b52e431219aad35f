/**
 * CARv1 framing (https://ipld.io/specs/transport/car/carv1/): a header,
 * varint(length) ‖ dag-cbor {version: 1, roots}, then for each block
 * varint(length) ‖ CID bytes ‖ block bytes.
 *
 * Written by hand rather than with @ipld/car's CarWriter because the
 * importer streams blocks it re-reads from disk and needs exact byte counts
 * up front (the piece size), and the gateway streams frames straight to the
 * socket; the framing is a few lines.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'

export function encodeHeader (roots: CID[]): Uint8Array {
  const body = dagCbor.encode({ version: 1, roots })
  return withLength(body)
}

function withLength (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(varint.encodingLength(body.byteLength) + body.byteLength)
  varint.encodeTo(body.byteLength, out, 0)
  out.set(body, out.byteLength - body.byteLength)
  return out
}

/** The prefix of a block frame: varint(length of CID + block) ‖ CID bytes. */
export function encodeFramePrefix (cid: CID, blockLength: number): Uint8Array {
  const len = cid.bytes.byteLength + blockLength
  const out = new Uint8Array(varint.encodingLength(len) + cid.bytes.byteLength)
  varint.encodeTo(len, out, 0)
  out.set(cid.bytes, out.byteLength - cid.bytes.byteLength)
  return out
}

/** A whole block frame in one buffer: varint(length of CID + block) ‖ CID bytes ‖ block bytes. */
export function encodeFrame (cid: CID, bytes: Uint8Array): Uint8Array {
  const prefix = encodeFramePrefix(cid, bytes.byteLength)
  const out = new Uint8Array(prefix.byteLength + bytes.byteLength)
  out.set(prefix, 0)
  out.set(bytes, prefix.byteLength)
  return out
}

/** Bytes a block takes in a CAR, frame included. */
export function frameLength (cid: CID, blockLength: number): number {
  const len = cid.bytes.byteLength + blockLength
  return varint.encodingLength(len) + len
}

/**
 * Gathers small writes into chunks of at least `min` bytes so that a stream
 * of many small blocks does not become a stream of many small writes.
 */
export class Batcher {
  private parts: Uint8Array[] = []
  private size = 0
  constructor (private readonly min = 64 * 1024) {}

  /** Adds bytes; returns a chunk when enough has gathered. */
  push (bytes: Uint8Array): Uint8Array | undefined {
    this.parts.push(bytes)
    this.size += bytes.byteLength
    return this.size >= this.min ? this.flush() : undefined
  }

  flush (): Uint8Array | undefined {
    if (this.size === 0) return undefined
    const out = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size)
    this.parts = []
    this.size = 0
    return out
  }
}
