/**
 * CARv1 framing (https://ipld.io/specs/transport/car/carv1/): a varint-prefixed
 * DAG-CBOR header `{version: 1, roots}` then varint-prefixed `cid ‖ block`
 * frames. Small enough to write by hand, and it lets the gateway stream frames
 * straight to the socket.
 */
import * as dagCBOR from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'

function withLength (length: number, ...parts: Uint8Array[]): Uint8Array {
  const prefix = varint.encodingLength(length)
  const out = new Uint8Array(prefix + length)
  varint.encodeTo(length, out, 0)
  let offset = prefix
  for (const part of parts) { out.set(part, offset); offset += part.length }
  return out
}

export function carHeader (roots: CID[]): Uint8Array {
  const header = dagCBOR.encode({ version: 1, roots })
  return withLength(header.length, header)
}

export function carFrame (cid: CID, bytes: Uint8Array): Uint8Array {
  return withLength(cid.bytes.length + bytes.length, cid.bytes, bytes)
}
