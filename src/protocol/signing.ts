/**
 * Domain-tagged signatures (docs/protocol.md "Signed messages"): the signed bytes are utf8(tag) ‖
 * DAG-CBOR(payload). The tag names the message type and its version, so a
 * signature made for one kind of message can never be replayed as another.
 *
 * Ed25519 runs through node:crypto (OpenSSL): about ten times faster than the
 * pure-JS implementation for signing and verifying, which the ledger needs
 * (docs/performance.md). Tests check both implementations agree.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { ed25519 } from '@noble/curves/ed25519.js'
import { CairnError } from '../errors.js'
import { didFromPublicKey, publicKeyFromDid } from '../repo/identity.js'

export const Tag = {
  ask: 'cairn/ask/v1\n',
  proposal: 'cairn/deal-proposal/v1\n',
  // v2 of the proposal, acceptance and proof: v1 plus the sender's ledger head (docs/protocol.md "Witnessed heads")
  proposalV2: 'cairn/deal-proposal/v2\n',
  acceptance: 'cairn/deal-acceptance/v1\n',
  acceptanceV2: 'cairn/deal-acceptance/v2\n',
  status: 'cairn/deal-status/v1\n',
  proof: 'cairn/proof/v1\n',
  proofV2: 'cairn/proof/v2\n',
  proofRequest: 'cairn/proof-request/v1\n',
  cancel: 'cairn/deal-cancel/v1\n',
  upload: 'cairn/upload/v1\n',
  ledgerEntry: 'cairn/ledger-entry/v1\n',
  advertisement: 'cairn/advertisement/v1\n'
} as const

export type Tag = typeof Tag[keyof typeof Tag]

/** Anything that can sign as a did:key — a repo `Identity` qualifies. */
export interface Signer {
  readonly did: string
  sign (message: Uint8Array): Uint8Array
}

/** A payload with its signer's did and an Ed25519 signature over tag ‖ DAG-CBOR(payload). */
export interface Signed<T> {
  payload: T
  signer: string
  signature: Uint8Array
}

const tagBytes = new Map<string, Uint8Array>()

/** The exact bytes a signature covers. */
export function signingBytes (tag: Tag, payload: unknown): Uint8Array {
  return concatTag(tag, dagCbor.encode(payload))
}

export function concatTag (tag: Tag, body: Uint8Array): Uint8Array {
  let prefix = tagBytes.get(tag)
  if (prefix === undefined) {
    prefix = new TextEncoder().encode(tag)
    tagBytes.set(tag, prefix)
  }
  const out = new Uint8Array(prefix.length + body.length)
  out.set(prefix)
  out.set(body, prefix.length)
  return out
}

export function sign<T> (signer: Signer, tag: Tag, payload: T): Signed<T> {
  return { payload, signer: signer.did, signature: signer.sign(signingBytes(tag, payload)) }
}

/**
 * Checks an envelope: its signer is `expectedSigner` (when given), the did is
 * a valid Ed25519 key, and the signature covers tag ‖ DAG-CBOR(payload).
 * Throws ERR_WRONG_SIGNER, ERR_INVALID_KEY or ERR_BAD_SIGNATURE.
 */
export function verifySigned<T> (tag: Tag, envelope: Signed<T>, expectedSigner?: string): Signed<T> {
  if (expectedSigner !== undefined && envelope.signer !== expectedSigner) {
    throw new CairnError('ERR_WRONG_SIGNER', `${tagName(tag)} must be signed by ${expectedSigner}, but is signed by ${String(envelope.signer)}`)
  }
  publicKeyOf(envelope.signer, 'signer')
  if (!(envelope.signature instanceof Uint8Array) || envelope.signature.length !== 64) {
    const found = envelope.signature instanceof Uint8Array ? `${envelope.signature.length} bytes` : typeof envelope.signature
    throw new CairnError('ERR_BAD_SIGNATURE', `${tagName(tag)} signature must be 64 bytes of Ed25519, found ${found}`)
  }
  if (!verifyByDid(envelope.signer, signingBytes(tag, envelope.payload), envelope.signature)) {
    throw new CairnError('ERR_BAD_SIGNATURE', `${tagName(tag)} signature does not verify for ${envelope.signer}`)
  }
  return envelope
}

function tagName (tag: Tag): string {
  return tag.slice('cairn/'.length, tag.lastIndexOf('/'))
}

const keyCache = new Map<string, { publicKey: Uint8Array, keyObject: KeyObject }>()

/**
 * The Ed25519 public key of a did:key, checked to be 32 bytes encoding a point
 * on the curve (ERR_INVALID_KEY otherwise). Results are cached per did.
 */
export function publicKeyOf (did: string, label = 'did'): Uint8Array {
  return cachedKey(did, label).publicKey
}

function cachedKey (did: string, label: string): { publicKey: Uint8Array, keyObject: KeyObject } {
  const hit = keyCache.get(did)
  if (hit !== undefined) return hit
  let publicKey: Uint8Array
  try {
    publicKey = publicKeyFromDid(did)
  } catch (err) {
    throw new CairnError('ERR_INVALID_KEY', `${label}: ${(err as Error).message}`)
  }
  const entry = { publicKey, keyObject: keyObjectOf(publicKey, label) }
  if (keyCache.size > 10_000) keyCache.clear()
  keyCache.set(did, entry)
  return entry
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

function keyObjectOf (publicKey: Uint8Array, label: string): KeyObject {
  if (publicKey.length !== 32) throw new CairnError('ERR_INVALID_KEY', `${label}: an Ed25519 public key is 32 bytes, found ${publicKey.length}`)
  try {
    // OpenSSL accepts any 32 bytes here; refuse keys that are not curve points up front
    ed25519.Point.fromBytes(publicKey)
  } catch {
    throw new CairnError('ERR_INVALID_KEY', `${label}: the Ed25519 public key is not a point on the curve`)
  }
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' })
}

/** Ed25519 verification through node:crypto; false for any malformed input. */
export function verifyEd25519 (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false
  let keyObject: KeyObject
  try {
    keyObject = cachedKey(didFromPublicKey(publicKey), 'public key').keyObject
  } catch {
    return false
  }
  return cryptoVerify(null, message, keyObject, signature)
}

/** Ed25519 verification against a did:key; throws ERR_INVALID_KEY for a malformed did, false for a bad signature. */
export function verifyByDid (did: string, message: Uint8Array, signature: Uint8Array): boolean {
  const { keyObject } = cachedKey(did, 'signer')
  return signature.length === 64 && cryptoVerify(null, message, keyObject, signature)
}

/** A signer backed by node:crypto, from a 32-byte Ed25519 secret key (RFC 8032 seed). */
export function createSigner (secretKey: Uint8Array): Signer {
  if (secretKey.length !== 32) throw new CairnError('ERR_INVALID_KEY', `an Ed25519 secret key is 32 bytes, found ${secretKey.length}`)
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, secretKey]), format: 'der', type: 'pkcs8' })
  const publicKey = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length))
  const did = didFromPublicKey(publicKey)
  return {
    did,
    sign: (message) => new Uint8Array(cryptoSign(null, message, privateKey))
  }
}

/** The wire form of an envelope: DAG-JSON (docs/protocol.md). */
export function encodeSignedJson<T> (envelope: Signed<T>): Uint8Array {
  return dagJson.encode(envelope)
}

/** Parses a DAG-JSON envelope into `{payload, signer, signature}` without checking the payload or signature. */
export function decodeSignedJson (bytes: Uint8Array | string): Signed<unknown> {
  let value: unknown
  try {
    value = dagJson.decode(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes)
  } catch (err) {
    throw new CairnError('ERR_INVALID_MESSAGE', `not valid DAG-JSON: ${(err as Error).message}`)
  }
  return envelopeShape(value)
}

export function decodeSignedCbor (bytes: Uint8Array): Signed<unknown> {
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new CairnError('ERR_INVALID_MESSAGE', `not valid DAG-CBOR: ${(err as Error).message}`)
  }
  return envelopeShape(value)
}

function envelopeShape (value: unknown): Signed<unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CairnError('ERR_INVALID_MESSAGE', 'signed message: expected an object {payload, signer, signature}')
  }
  const map = value as Record<string, unknown>
  for (const key of Object.keys(map)) {
    if (key !== 'payload' && key !== 'signer' && key !== 'signature') throw new CairnError('ERR_INVALID_MESSAGE', `signed message: unknown field ${JSON.stringify(key)}`)
  }
  if (map.payload === undefined) throw new CairnError('ERR_INVALID_MESSAGE', 'signed message: missing field "payload"')
  if (typeof map.signer !== 'string') throw new CairnError('ERR_INVALID_MESSAGE', 'signed message: "signer" must be a did:key string')
  if (!(map.signature instanceof Uint8Array)) throw new CairnError('ERR_INVALID_MESSAGE', 'signed message: "signature" must be bytes')
  return { payload: map.payload, signer: map.signer, signature: map.signature }
}
