/**
 * A node's identity: an Ed25519 key pair, named by its `did:key`
 * (multicodec ed25519-pub 0xed, base58btc), as the did:key method specifies.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import { CairnError } from '../errors.js'

/** The fixed PKCS#8 prefix of a raw 32-byte Ed25519 secret key (RFC 8410). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

/** The fixed SubjectPublicKeyInfo prefix of an Ed25519 public key (RFC 8410): the raw 32 bytes follow. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

/** varint(0xed) — the multicodec prefix of an Ed25519 public key. */
const ED25519_PUB = Uint8Array.of(0xed, 0x01)

export interface Identity {
  readonly did: string
  readonly publicKey: Uint8Array
  sign (message: Uint8Array): Uint8Array
}

export function identityFromSecret (secretKey: Uint8Array): Identity {
  if (secretKey.length !== 32) throw new CairnError('ERR_REPO_CORRUPT', `identity key must be 32 bytes, found ${secretKey.length}`)
  // Ed25519 signatures are deterministic (RFC 8032), so OpenSSL's are byte for byte
  // noble's; node:crypto signs ~25× faster, which ledger appends need. The public key
  // comes from OpenSSL too: noble's first getPublicKey builds its base-point table
  // (~40 ms), a cost every command paid on opening the repo before it did anything.
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, secretKey]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
  if (spki.length !== SPKI_ED25519.length + 32 || !spki.subarray(0, SPKI_ED25519.length).equals(SPKI_ED25519)) {
    throw new CairnError('ERR_INTERNAL', 'OpenSSL returned an unexpected Ed25519 public key encoding')
  }
  const publicKey = new Uint8Array(spki.subarray(SPKI_ED25519.length))
  return {
    did: didFromPublicKey(publicKey),
    publicKey,
    sign: (message) => new Uint8Array(cryptoSign(null, message, privateKey))
  }
}

export function generateSecretKey (): Uint8Array {
  return ed25519.utils.randomSecretKey()
}

export function didFromPublicKey (publicKey: Uint8Array): string {
  const bytes = new Uint8Array(ED25519_PUB.length + publicKey.length)
  bytes.set(ED25519_PUB)
  bytes.set(publicKey, ED25519_PUB.length)
  return `did:key:${base58btc.encode(bytes)}`
}

/** The Ed25519 public key inside a `did:key:z6Mk…`, or ERR_INVALID_ARGUMENT. */
export function publicKeyFromDid (did: string): Uint8Array {
  if (typeof did !== 'string' || !did.startsWith('did:key:z')) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `expected a did:key:z6Mk… identifier, got ${JSON.stringify(did)}`)
  }
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(did.slice('did:key:'.length))
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `did:key is not valid base58btc: ${did}`)
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `did:key is not an Ed25519 key (expected 34 bytes starting 0xed01): ${did}`)
  }
  return bytes.subarray(2)
}

export function verifySignature (did: string, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return ed25519.verify(signature, message, publicKeyFromDid(did))
  } catch {
    return false
  }
}
