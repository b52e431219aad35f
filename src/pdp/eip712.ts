/**
 * The client's authorisation of a data-set operation, checked as
 * FilecoinWarmStorageService checks it on chain (FilOzone/filecoin-services,
 * `service_contracts/src/lib/SignatureVerificationLib.sol`): an EIP-712 digest
 * (https://eips.ethereum.org/EIPS/eip-712) over the operation under the
 * `FilecoinWarmStorageService` v1 domain, and the signer recovered the way
 * Solidity's `ecrecover` recovers it, which must be the payer.
 *
 * Written by hand on @noble (keccak_256, secp256k1) rather than taken from a
 * library: the contract pins fixed type strings and a raw `ecrecover` — 65
 * bytes r‖s‖v, v of 27/28 or 0/1, no low-s rule — while the small typed-data
 * libraries either keep the digest to themselves (micro-eth-signer exports no
 * digest) or recover under their own rules, and viem is a client stack far too
 * large to be a provider's runtime dependency (it is the test oracle instead).
 * The typed-data encoding below is the EIP-712 `encodeType`/`encodeData`/
 * `hashStruct` for the handful of types FWSS uses.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { CairnError } from '../errors.js'

/** The EIP-712 domain FWSS signs under: the chain and the service contract. */
export interface Eip712Domain {
  chainId: bigint
  /** 0x-prefixed, 20 bytes */
  verifyingContract: string
}

export { CALIBRATION } from './calibration.js'

export interface MetadataEntry { key: string, value: string }

type Field = { name: string, type: string }

/**
 * The types FWSS verifies, as `SignatureVerificationLib` spells them. synapse-core
 * 0.5.2 signs `DeleteDataSet(uint256 dataSetId)`; the contract's current source
 * names the same message `TerminateService(uint256 dataSetId)`. Both are here.
 */
export const FWSS_TYPES: Record<string, readonly Field[]> = {
  EIP712Domain: [
    { name: 'name', type: 'string' },
    { name: 'version', type: 'string' },
    { name: 'chainId', type: 'uint256' },
    { name: 'verifyingContract', type: 'address' }
  ],
  MetadataEntry: [{ name: 'key', type: 'string' }, { name: 'value', type: 'string' }],
  CreateDataSet: [
    { name: 'clientDataSetId', type: 'uint256' },
    { name: 'payee', type: 'address' },
    { name: 'metadata', type: 'MetadataEntry[]' }
  ],
  Cid: [{ name: 'data', type: 'bytes' }],
  PieceMetadata: [{ name: 'pieceIndex', type: 'uint256' }, { name: 'metadata', type: 'MetadataEntry[]' }],
  AddPieces: [
    { name: 'clientDataSetId', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'pieceData', type: 'Cid[]' },
    { name: 'pieceMetadata', type: 'PieceMetadata[]' }
  ],
  SchedulePieceRemovals: [{ name: 'clientDataSetId', type: 'uint256' }, { name: 'pieceIds', type: 'uint256[]' }],
  DeleteDataSet: [{ name: 'dataSetId', type: 'uint256' }],
  TerminateService: [{ name: 'dataSetId', type: 'uint256' }]
}

const encoder = new TextEncoder()

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) { out.set(p, offset); offset += p.length }
  return out
}

function uint256 (value: bigint): Uint8Array {
  if (value < 0n || value >= 1n << 256n) throw new CairnError('ERR_INVALID_EXTRA_DATA', `${value} does not fit a uint256`)
  const out = new Uint8Array(32)
  let v = value
  for (let i = 31; i >= 0 && v > 0n; i--) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

/** A 0x-prefixed 20-byte address as its bytes. */
export function addressBytes (address: string, label = 'address'): Uint8Array {
  if (typeof address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${label} must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(String(address).slice(0, 60))}`)
  }
  return Uint8Array.from(Buffer.from(address.slice(2), 'hex'))
}

function hex (bytes: Uint8Array): string { return '0x' + Buffer.from(bytes).toString('hex') }

/** EIP-712 `encodeType`: the primary type, then every type it references, sorted by name. */
function encodeType (primary: string): string {
  const found = new Set<string>()
  const visit = (type: string): void => {
    const base = type.replace(/\[\]$/, '')
    if (found.has(base) || FWSS_TYPES[base] === undefined) return
    found.add(base)
    for (const field of FWSS_TYPES[base] ?? []) visit(field.type)
  }
  visit(primary)
  found.delete(primary)
  return [primary, ...[...found].sort()].map((name) => `${name}(${(FWSS_TYPES[name] ?? []).map((f) => `${f.type} ${f.name}`).join(',')})`).join('')
}

/** EIP-712 `encodeData` of one value of `type`, as the 32-byte word it contributes. */
function encodeValue (type: string, value: unknown): Uint8Array {
  if (type.endsWith('[]')) {
    const inner = type.slice(0, -2)
    return keccak_256(concat((value as unknown[]).map((v) => encodeValue(inner, v))))
  }
  if (FWSS_TYPES[type] !== undefined) return hashStruct(type, value as Record<string, unknown>)
  switch (type) {
    case 'uint256': return uint256(value as bigint)
    case 'address': { const out = new Uint8Array(32); out.set(addressBytes(value as string), 12); return out }
    case 'string': return keccak_256(encoder.encode(value as string))
    case 'bytes': return keccak_256(value as Uint8Array)
    default: throw new TypeError(`no EIP-712 encoding for type ${type}`)
  }
}

/** EIP-712 `hashStruct(s) = keccak256(typeHash ‖ encodeData(s))`. */
export function hashStruct (type: string, value: Record<string, unknown>): Uint8Array {
  const fields = FWSS_TYPES[type]
  if (fields === undefined) throw new TypeError(`unknown EIP-712 type ${type}`)
  return keccak_256(concat([keccak_256(encoder.encode(encodeType(type))), ...fields.map((f) => encodeValue(f.type, value[f.name]))]))
}

/** The digest a wallet signs: keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)). */
export function typedDataDigest (domain: Eip712Domain, primaryType: string, message: Record<string, unknown>): Uint8Array {
  const separator = hashStruct('EIP712Domain', { name: 'FilecoinWarmStorageService', version: '1', chainId: domain.chainId, verifyingContract: domain.verifyingContract })
  return keccak_256(concat([Uint8Array.of(0x19, 0x01), separator, hashStruct(primaryType, message)]))
}

const CURVE_N = secp256k1.Point.CURVE().n

/**
 * The address that signed `digest`, recovered as the EVM's `ecrecover` does
 * behind `SignatureVerificationLib.recoverSigner`: 65 bytes r‖s‖v, v below 27
 * shifted up by 27, then 27 or 28; r and s in 1…n−1; high s accepted.
 * ERR_BAD_SIGNATURE where the contract would revert or recover nothing.
 */
export function recoverSigner (digest: Uint8Array, signature: Uint8Array): string {
  if (!(signature instanceof Uint8Array) || signature.length !== 65) {
    throw new CairnError('ERR_BAD_SIGNATURE', `an EIP-712 signature is 65 bytes (r, s, v), got ${(signature as Uint8Array | undefined)?.length ?? 0}`)
  }
  let v = signature[64] as number
  if (v < 27) v += 27
  if (v !== 27 && v !== 28) throw new CairnError('ERR_BAD_SIGNATURE', `signature v must be 27 or 28 (or 0 or 1), got ${signature[64]}`)
  const r = BigInt(hex(signature.subarray(0, 32)))
  const s = BigInt(hex(signature.subarray(32, 64)))
  if (r === 0n || r >= CURVE_N || s === 0n || s >= CURVE_N) throw new CairnError('ERR_BAD_SIGNATURE', 'signature r or s is out of range')
  let point
  try {
    point = new secp256k1.Signature(r, s, v - 27).recoverPublicKey(digest)
  } catch (err) {
    throw new CairnError('ERR_BAD_SIGNATURE', 'no public key recovers from this signature', { cause: err })
  }
  return hex(keccak_256(point.toBytes(false).subarray(1)).subarray(12))
}

/** Throws ERR_WRONG_SIGNER unless `signature` over `digest` recovers to `expected`. */
export function checkSigner (digest: Uint8Array, signature: Uint8Array, expected: string, operation: string): void {
  const signer = recoverSigner(digest, signature)
  if (signer.toLowerCase() !== expected.toLowerCase()) {
    throw new CairnError('ERR_WRONG_SIGNER', `${operation} is signed by ${signer}, not by the payer ${expected.toLowerCase()} (wrong key, altered field, or another chain id or service contract)`)
  }
}

// ---- extraData: Solidity ABI decoding of the few tuples FWSS takes ----

/** Most entries any array of `extraData` may hold, and most bytes of one string or signature. */
const MAX_ITEMS = 10_000
const MAX_BYTES = 128 * 1024

type AbiType = 'address' | 'uint256' | 'bytes' | 'string' | 'string[]' | 'string[][]'

function bad (message: string): CairnError {
  return new CairnError('ERR_INVALID_EXTRA_DATA', `extraData: ${message}`)
}

function readWord (data: Uint8Array, at: number): bigint {
  if (at < 0 || at + 32 > data.length) throw bad(`reads past its end at byte ${at} of ${data.length}`)
  return BigInt(hex(data.subarray(at, at + 32)))
}

function readOffset (data: Uint8Array, at: number, base: number): number {
  const offset = readWord(data, at)
  if (offset > BigInt(data.length)) throw bad(`offset ${offset} at byte ${at} points past its end`)
  return base + Number(offset)
}

function readLength (data: Uint8Array, at: number, max: number): number {
  const length = readWord(data, at)
  if (length > BigInt(max)) throw bad(`a length of ${length} at byte ${at} is over the limit of ${max}`)
  return Number(length)
}

function decodeDynamic (type: AbiType, data: Uint8Array, start: number): unknown {
  switch (type) {
    case 'bytes':
    case 'string': {
      const length = readLength(data, start, MAX_BYTES)
      if (start + 32 + length > data.length) throw bad(`a ${type} of ${length} bytes at byte ${start} runs past its end`)
      const bytes = data.slice(start + 32, start + 32 + length)
      if (type === 'bytes') return bytes
      try { return new TextDecoder('utf-8', { fatal: true }).decode(bytes) } catch { throw bad(`the string at byte ${start} is not UTF-8`) }
    }
    case 'string[]':
    case 'string[][]': {
      const inner = type === 'string[]' ? 'string' : 'string[]'
      const count = readLength(data, start, MAX_ITEMS)
      const base = start + 32
      return Array.from({ length: count }, (_, i) => decodeDynamic(inner, data, readOffset(data, base + 32 * i, base)))
    }
    default: throw new TypeError(`${type} is not dynamic`)
  }
}

/** `abi.decode(data, (types…))` for the static and dynamic types FWSS's extraData uses. */
export function decodeAbi (types: readonly AbiType[], input: string | Uint8Array): unknown[] {
  let data: Uint8Array
  if (typeof input === 'string') {
    if (!/^0x([0-9a-fA-F]{2})*$/.test(input)) throw bad('must be 0x-prefixed hex')
    data = Uint8Array.from(Buffer.from(input.slice(2), 'hex'))
  } else {
    data = input
  }
  return types.map((type, i) => {
    const head = 32 * i
    switch (type) {
      case 'uint256': return readWord(data, head)
      case 'address': {
        const value = readWord(data, head)
        if (value >> 160n !== 0n) throw bad(`the address at byte ${head} has bits above 160`)
        return '0x' + value.toString(16).padStart(40, '0')
      }
      default: return decodeDynamic(type, data, readOffset(data, head, 0))
    }
  })
}

function entries (keys: string[], values: string[], label: string): MetadataEntry[] {
  if (keys.length !== values.length) throw bad(`${label} has ${keys.length} keys and ${values.length} values`)
  return keys.map((key, i) => ({ key, value: values[i] as string }))
}

export interface CreateDataSetAuthorization {
  payer: string
  clientDataSetId: bigint
  payee: string
  metadata: MetadataEntry[]
}

/**
 * Checks `extraData` of a data-set creation — ABI `(address payer, uint256
 * clientDataSetId, string[] keys, string[] values, bytes signature)` — signed as
 * `CreateDataSet` for this provider's `payee` by the payer.
 */
export function verifyCreateDataSet (domain: Eip712Domain, extraData: string | Uint8Array, payee: string): CreateDataSetAuthorization {
  const [payer, clientDataSetId, keys, values, signature] = decodeAbi(['address', 'uint256', 'string[]', 'string[]', 'bytes'], extraData) as [string, bigint, string[], string[], Uint8Array]
  const metadata = entries(keys, values, 'metadata')
  checkSigner(typedDataDigest(domain, 'CreateDataSet', { clientDataSetId, payee, metadata }), signature, payer, 'CreateDataSet')
  return { payer, clientDataSetId, payee: payee.toLowerCase(), metadata }
}

export interface AddPiecesAuthorization {
  nonce: bigint
  metadata: MetadataEntry[][]
}

/**
 * Checks `extraData` of adding pieces — ABI `(uint256 nonce, string[][] keys,
 * string[][] values, bytes signature)` — signed as `AddPieces` over the data
 * set's `clientDataSetId` and the pieces' CID bytes by the data set's payer.
 */
export function verifyAddPieces (domain: Eip712Domain, extraData: string | Uint8Array, context: { payer: string, clientDataSetId: bigint, pieces: Uint8Array[] }): AddPiecesAuthorization {
  const [nonce, keys, values, signature] = decodeAbi(['uint256', 'string[][]', 'string[][]', 'bytes'], extraData) as [bigint, string[][], string[][], Uint8Array]
  if (keys.length !== context.pieces.length || values.length !== context.pieces.length) throw bad(`metadata is given for ${keys.length} pieces, ${context.pieces.length} are added`)
  const metadata = keys.map((k, i) => entries(k, values[i] as string[], `metadata of piece ${i}`))
  checkSigner(typedDataDigest(domain, 'AddPieces', {
    clientDataSetId: context.clientDataSetId,
    nonce,
    pieceData: context.pieces.map((data) => ({ data })),
    pieceMetadata: metadata.map((m, pieceIndex) => ({ pieceIndex: BigInt(pieceIndex), metadata: m }))
  }), signature, context.payer, 'AddPieces')
  return { nonce, metadata }
}

/** Checks `extraData` — ABI `(bytes signature)` — of scheduling piece removals, signed by the payer. */
export function verifySchedulePieceRemovals (domain: Eip712Domain, extraData: string | Uint8Array, context: { payer: string, clientDataSetId: bigint, pieceIds: bigint[] }): void {
  const [signature] = decodeAbi(['bytes'], extraData) as [Uint8Array]
  checkSigner(typedDataDigest(domain, 'SchedulePieceRemovals', { clientDataSetId: context.clientDataSetId, pieceIds: context.pieceIds }), signature, context.payer, 'SchedulePieceRemovals')
}

/**
 * Checks `extraData` — ABI `(bytes signature)` — of deleting a data set, signed
 * by the payer as `DeleteDataSet` (synapse-core 0.5.2) or `TerminateService`
 * (the contract's current name for it).
 */
export function verifyDeleteDataSet (domain: Eip712Domain, extraData: string | Uint8Array, context: { payer: string, dataSetId: bigint }): void {
  const [signature] = decodeAbi(['bytes'], extraData) as [Uint8Array]
  const message = { dataSetId: context.dataSetId }
  const signer = recoverSigner(typedDataDigest(domain, 'DeleteDataSet', message), signature)
  if (signer === context.payer.toLowerCase()) return
  checkSigner(typedDataDigest(domain, 'TerminateService', message), signature, context.payer, 'DeleteDataSet')
}
