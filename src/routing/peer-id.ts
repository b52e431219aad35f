/**
 * A cairn node's Ed25519 key as a libp2p peer ID, the name content routers
 * give providers (libp2p peer-ids spec,
 * https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md).
 *
 * The peer ID of an Ed25519 key is the identity multihash of the key's
 * protobuf encoding `PublicKey { Type = Ed25519 (1), Data = 32 bytes }`, i.e.
 * `00 24 | 08 01 12 20 | key`; its string form is that multihash in
 * base58btc (`12D3KooW…`) or a CIDv1 with the libp2p-key codec (0x72) in
 * base32 or base36. Written here rather than pulled from @libp2p/peer-id,
 * which brings the whole libp2p crypto stack for these 38 bytes; the tests
 * hold it against @libp2p/peer-id.
 */
import { base32 } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CairnError } from '../errors.js'

/** multicodec libp2p-key */
export const LIBP2P_KEY = 0x72

/** identity multihash (0x00) of 36 bytes (0x24), then protobuf field 1 (Type) = 1 (Ed25519), field 2 (Data) of 32 bytes */
const PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)

/** The peer ID multihash (38 bytes) of an Ed25519 public key. */
export function peerIdBytes (publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new RangeError(`an Ed25519 public key is 32 bytes, got ${publicKey.length}`)
  const out = new Uint8Array(PREFIX.length + 32)
  out.set(PREFIX)
  out.set(publicKey, PREFIX.length)
  return out
}

/** The peer ID of an Ed25519 public key in its usual string form, base58btc (`12D3KooW…`). */
export function peerIdFromPublicKey (publicKey: Uint8Array): string {
  return base58btc.baseEncode(peerIdBytes(publicKey))
}

/** The same peer ID as a CIDv1 (libp2p-key) in base32, the form the Delegated Routing API prefers in paths. */
export function peerIdCid (publicKey: Uint8Array): string {
  return CID.createV1(LIBP2P_KEY, createDigest(0x00, peerIdBytes(publicKey).subarray(2))).toString(base32)
}

/**
 * The Ed25519 public key inside a peer ID string (base58btc multihash, or a
 * libp2p-key CIDv1 in base32 or base36). Peer IDs of other key types hash
 * their key (sha2-256) and cannot be checked without it: ERR_INVALID_PEER_ID.
 */
export function publicKeyFromPeerId (value: string): Uint8Array {
  if (typeof value !== 'string' || value.length === 0 || value.length > 128) {
    throw new CairnError('ERR_INVALID_PEER_ID', `expected a peer ID string, got ${JSON.stringify(value)?.slice(0, 140)}`)
  }
  let mh: Uint8Array
  try {
    if (value.startsWith('1') || value.startsWith('Qm')) {
      mh = base58btc.baseDecode(value)
    } else {
      const cid = CID.parse(value, value.startsWith('k') ? base36 : base32)
      if (cid.version !== 1 || cid.code !== LIBP2P_KEY) throw new Error(`a CID naming a peer must be CIDv1 with the libp2p-key codec (0x72), got codec 0x${cid.code.toString(16)}`)
      mh = cid.multihash.bytes
    }
  } catch (err) {
    throw new CairnError('ERR_INVALID_PEER_ID', `${JSON.stringify(value)} is not a peer ID: ${(err as Error).message}`)
  }
  if (mh.length !== PREFIX.length + 32 || !PREFIX.every((b, i) => mh[i] === b)) {
    throw new CairnError('ERR_INVALID_PEER_ID', `${value} is not the peer ID of an Ed25519 key (expected an identity multihash of 08 01 12 20 ‖ 32 bytes)`)
  }
  return mh.slice(PREFIX.length)
}
