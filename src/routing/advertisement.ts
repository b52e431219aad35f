/**
 * Advertisements: what a provider tells indexers it serves, in the spirit of
 * IPNI (https://github.com/ipni/specs/blob/main/IPNI.md, "Advertisements").
 * The format is cairn's own and is described in docs/routing.md:
 *
 * - an advertisement is a DAG-CBOR map `{previous, provider, addresses,
 *   contextId, metadata, entries, isRm, at, signature}`; its CID (dag-cbor,
 *   sha2-256) names it and the next advertisement of the same provider links
 *   it as `previous`, so a provider's advertisements form one hash chain;
 * - `provider` is the provider's libp2p peer ID (its Ed25519 key), and
 *   `signature` is that key's Ed25519 signature over
 *   `cairn/advertisement/v1\n` ‖ DAG-CBOR(the map without `signature`);
 * - `entries` links the first of a chain of entry chunks
 *   `{entries: [multihash bytes…], next: CID | null}` holding the multihashes
 *   served under `contextId` (a deal id); `isRm` withdraws every multihash of
 *   `contextId`; an advertisement with neither only updates the addresses;
 * - `metadata` is IPNI's: uvarint protocol codes from the multicodec table,
 *   here `transport-ipfs-gateway-http` (0x0920), which has no payload.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { varint } from 'multiformats'
import { sha256 } from '../car/index.js'
import { DAG_CBOR, SHA2_256 } from '../codecs.js'
import { CairnError, isCairnError } from '../errors.js'
import { concatTag, Tag, verifyEd25519 } from '../protocol/signing.js'
import { bytes as checkBytes, record, uint } from '../protocol/validate.js'
import type { Identity } from '../repo/identity.js'
import { urlFromMultiaddr } from './multiaddr.js'
import { peerIdFromPublicKey, publicKeyFromPeerId } from './peer-id.js'

export { DAG_CBOR }

/** Multihashes per entry chunk: about 600 KB of sha2-256 multihashes, well under IPNI's 4 MB per chunk. */
export const ENTRIES_PER_CHUNK = 16_384
/** Entry chunks per advertisement; a deal with more blocks is advertised in several, under one context. */
export const MAX_CHUNKS_PER_AD = 16
export const MAX_ENTRIES_PER_AD = ENTRIES_PER_CHUNK * MAX_CHUNKS_PER_AD
export const MAX_MULTIHASH_BYTES = 128
export const MAX_ADDRESSES = 16
export const MAX_ADDRESS_LENGTH = 256
export const MAX_CONTEXT_ID_BYTES = 64
/** IPNI recommends keeping metadata below 100 bytes. */
export const MAX_METADATA_BYTES = 100

/** Retrieval protocols from the multicodec table (IPNI "Metadata") that carry no payload. */
export const PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [0x0900, 'transport-bitswap'],
  [0x0920, 'transport-ipfs-gateway-http'],
  [0x0930, 'transport-filecoin-piece-http']
])
export const TRANSPORT_IPFS_GATEWAY_HTTP = 0x0920

export interface Advertisement {
  /** the provider's previous advertisement; null starts (or restarts) its chain */
  previous: CID | null
  /** the provider's libp2p peer ID (Ed25519) */
  provider: string
  /** where the provider is reached, as http(s) multiaddrs */
  addresses: string[]
  /** what the entries are grouped under and withdrawn by (a deal id); empty for an address update */
  contextId: Uint8Array
  metadata: Uint8Array
  /** the first entry chunk, or null (a withdrawal or an address update) */
  entries: CID | null
  isRm: boolean
  /** unix ms when it was made */
  at: number
}

export interface SignedAdvertisement extends Advertisement {
  signature: Uint8Array
}

export interface Block {
  cid: CID
  bytes: Uint8Array
}

export interface EntryChunk {
  entries: Uint8Array[]
  next: CID | null
}

/** A DAG-CBOR block of `value`, hashed with node:crypto. */
export function cborBlock (value: unknown): Block {
  return cborBlockOf(dagCbor.encode(value))
}

/** The block of DAG-CBOR bytes already encoded. */
export function cborBlockOf (bytes: Uint8Array): Block {
  return { cid: CID.createV1(DAG_CBOR, Digest.create(SHA2_256, sha256(bytes))), bytes }
}

function unsigned (ad: Advertisement): Advertisement {
  const { previous, provider, addresses, contextId, metadata, entries, isRm, at } = ad
  return { previous, provider, addresses, contextId, metadata, entries, isRm, at }
}

/** Signs an advertisement with the provider's key; `provider` is that key's peer ID. */
export function signAdvertisement (signer: Pick<Identity, 'publicKey' | 'sign'>, fields: Omit<Advertisement, 'provider'>): { ad: SignedAdvertisement, block: Block } {
  const ad: Advertisement = { ...fields, provider: peerIdFromPublicKey(signer.publicKey) }
  const signature = signer.sign(concatTag(Tag.advertisement, dagCbor.encode(unsigned(ad))))
  const signed: SignedAdvertisement = { ...unsigned(ad), signature }
  return { ad: signed, block: cborBlock(signed) }
}

const AD_FIELDS = ['previous', 'provider', 'addresses', 'contextId', 'metadata', 'entries', 'isRm', 'at', 'signature'] as const

function invalid (message: string): CairnError {
  return new CairnError('ERR_INVALID_ADVERTISEMENT', message)
}

/** Runs a labelled check, reporting its failure as an invalid advertisement. */
function checked<T> (fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (isCairnError(err) && err.code === 'ERR_INVALID_MESSAGE') throw invalid(err.message)
    throw err
  }
}

function linkOrNull (value: unknown, label: string): CID | null {
  if (value === null) return null
  const cid = CID.asCID(value)
  if (cid === null) throw invalid(`${label}: expected a link or null`)
  return cid
}

/**
 * An advertisement block, decoded, checked field by field and its signature
 * verified against the key in its `provider` peer ID. The block's bytes must
 * hash to its CID (the CAR reader checks that before this runs).
 */
export function decodeAdvertisement (block: Block): SignedAdvertisement {
  if (block.cid.code !== DAG_CBOR) throw invalid(`advertisement ${block.cid.toString()} is not DAG-CBOR (codec 0x${block.cid.code.toString(16)})`)
  let value: unknown
  try {
    value = dagCbor.decode(block.bytes)
  } catch (err) {
    throw invalid(`advertisement ${block.cid.toString()} is not valid DAG-CBOR: ${(err as Error).message}`)
  }
  const m = checked(() => record(value, 'advertisement', AD_FIELDS))
  if (typeof m.provider !== 'string') throw invalid('advertisement.provider: expected a peer ID string')
  const publicKey = publicKeyFromPeerId(m.provider)
  if (!Array.isArray(m.addresses) || m.addresses.length > MAX_ADDRESSES) throw invalid(`advertisement.addresses: expected a list of at most ${MAX_ADDRESSES} multiaddrs`)
  const addresses = m.addresses.map((a, i) => {
    if (typeof a !== 'string' || a.length > MAX_ADDRESS_LENGTH) throw invalid(`advertisement.addresses[${i}]: expected a multiaddr of at most ${MAX_ADDRESS_LENGTH} characters`)
    if (urlFromMultiaddr(a) === undefined) throw invalid(`advertisement.addresses[${i}]: ${a} is not an http(s) multiaddr`)
    return a
  })
  const contextId = checked(() => checkBytes(m.contextId, 'advertisement.contextId'))
  if (contextId.length > MAX_CONTEXT_ID_BYTES) throw invalid(`advertisement.contextId is ${contextId.length} bytes; the limit is ${MAX_CONTEXT_ID_BYTES}`)
  const metadata = checked(() => checkBytes(m.metadata, 'advertisement.metadata'))
  if (metadata.length > MAX_METADATA_BYTES) throw invalid(`advertisement.metadata is ${metadata.length} bytes; the limit is ${MAX_METADATA_BYTES}`)
  if (typeof m.isRm !== 'boolean') throw invalid('advertisement.isRm: expected a boolean')
  const ad: SignedAdvertisement = {
    previous: linkOrNull(m.previous, 'advertisement.previous'),
    provider: m.provider,
    addresses,
    contextId,
    metadata,
    entries: linkOrNull(m.entries, 'advertisement.entries'),
    isRm: m.isRm,
    at: checked(() => uint(m.at, 'advertisement.at')),
    signature: checked(() => checkBytes(m.signature, 'advertisement.signature', 64))
  }
  if (ad.isRm && ad.entries !== null) throw invalid('a withdrawal (isRm) carries no entries')
  if ((ad.isRm || ad.entries !== null) && ad.contextId.length === 0) throw invalid('an advertisement that adds or withdraws entries needs a contextId')
  if (!verifyEd25519(publicKey, concatTag(Tag.advertisement, dagCbor.encode(unsigned(ad))), ad.signature)) {
    throw new CairnError('ERR_BAD_SIGNATURE', `advertisement ${block.cid.toString()} is not signed by the key of ${ad.provider}`)
  }
  return ad
}

/** A valid multihash (code, length and digest agree), or ERR_INVALID_ADVERTISEMENT. */
export function checkMultihash (value: unknown, label: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length === 0 || value.length > MAX_MULTIHASH_BYTES) {
    throw invalid(`${label}: expected a multihash of at most ${MAX_MULTIHASH_BYTES} bytes`)
  }
  try {
    Digest.decode(value)
  } catch (err) {
    throw invalid(`${label}: not a multihash (${(err as Error).message})`)
  }
  return value
}

export function decodeEntryChunk (block: Block): EntryChunk {
  let value: unknown
  try {
    value = dagCbor.decode(block.bytes)
  } catch (err) {
    throw invalid(`entry chunk ${block.cid.toString()} is not valid DAG-CBOR: ${(err as Error).message}`)
  }
  const m = checked(() => record(value, 'entry chunk', ['entries', 'next']))
  if (!Array.isArray(m.entries) || m.entries.length > ENTRIES_PER_CHUNK) throw invalid(`entry chunk ${block.cid.toString()}: expected a list of at most ${ENTRIES_PER_CHUNK} multihashes`)
  return {
    entries: m.entries.map((e, i) => checkMultihash(e, `entry chunk ${block.cid.toString()} entries[${i}]`)),
    next: linkOrNull(m.next, 'entry chunk next')
  }
}

/**
 * The entry chunks of `multihashes` (at most MAX_ENTRIES_PER_AD), first chunk
 * first: the advertisement links the first, each links the next.
 */
export function entryChunks (multihashes: readonly Uint8Array[]): Block[] {
  if (multihashes.length > MAX_ENTRIES_PER_AD) throw new RangeError(`at most ${MAX_ENTRIES_PER_AD} multihashes per advertisement, got ${multihashes.length}`)
  const chunks: Block[] = []
  let next: CID | null = null
  // built from the last chunk back, since each links the one after it
  for (let end = multihashes.length; end > 0; end -= ENTRIES_PER_CHUNK) {
    const start = Math.max(0, end - ENTRIES_PER_CHUNK)
    const block = cborBlock({ entries: multihashes.slice(start, end), next })
    chunks.push(block)
    next = block.cid
  }
  return chunks.reverse()
}

/** IPNI metadata naming payload-free protocols by their multicodec codes. */
export function encodeMetadata (codes: readonly number[]): Uint8Array {
  const parts = [...codes].sort((a, b) => a - b).map(code => varint.encodeTo(code, new Uint8Array(varint.encodingLength(code))))
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

/**
 * The protocol names in IPNI metadata, read while its codes are ones known to
 * carry no payload (the payload of another would have to be understood to
 * find the code after it).
 */
export function protocolsOf (metadata: Uint8Array): string[] {
  const names: string[] = []
  let at = 0
  while (at < metadata.length) {
    let code: number
    let length: number
    try {
      [code, length] = varint.decode(metadata, at)
    } catch {
      break
    }
    const name = PROTOCOLS.get(code)
    if (name === undefined) break
    names.push(name)
    at += length
  }
  return names
}
