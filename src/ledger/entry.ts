/**
 * Ledger entries on disk. An entry {seq, prev, at, kind, …fields} is encoded
 * as DAG-CBOR and signed under the `cairn/ledger-entry/v1` tag; the stored
 * record is DAG-CBOR {entry: bytes, signer, signature}. An entry's CID is the
 * CID (dag-cbor, sha2-256) of its record, and the next entry's `prev` is that
 * CID, so the hash chain covers every signature as well as every entry: the
 * head's signature vouches for the whole history.
 */
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { concatTag, Tag, type Signer } from '../protocol/signing.js'
import { ENTRY_KINDS, type EntryFields, type EntryFieldsOf, type EntryKind, type LedgerEntry } from './interface.js'

const DAG_CBOR = 0x71
const SHA2_256 = 0x12
const RESERVED = new Set(['seq', 'prev', 'at', 'kind'])
const U64_MAX = (1n << 64n) - 1n

export function sha256 (bytes: Uint8Array): Uint8Array {
  const d = createHash('sha256').update(bytes).digest()
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

export function recordCid (recordBytes: Uint8Array): CID {
  return CID.createV1(DAG_CBOR, createDigest(SHA2_256, sha256(recordBytes)))
}

/** Ledger keys sort by seq: zero-padded decimal. */
export function seqKey (seq: number): string {
  return seq.toString().padStart(16, '0')
}

export function isEntryKind (value: unknown): value is EntryKind {
  return typeof value === 'string' && (ENTRY_KINDS as readonly string[]).includes(value)
}

/** Fields are the caller's; a bad one is a programmer error. */
export function checkFields (kind: EntryKind, fields: EntryFields): void {
  if (!isEntryKind(kind)) throw new TypeError(`unknown ledger entry kind ${JSON.stringify(kind)}; expected one of ${ENTRY_KINDS.join(', ')}`)
  for (const key of Object.keys(fields)) {
    if (RESERVED.has(key)) throw new TypeError(`ledger entry field ${JSON.stringify(key)} is reserved`)
    checkValue(fields[key], key)
  }
  parseFields(kind, fields)
}

// What a typed field must hold (src/ledger/interface.ts EntryFieldsOf). A
// field a kind does not declare is not checked: entries are open records.
type FieldCheck = (value: unknown) => boolean
const isString: FieldCheck = (v) => typeof v === 'string'
const isCid: FieldCheck = (v) => CID.asCID(v) !== null
const isInt: FieldCheck = (v) => typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v))
const isNumber: FieldCheck = (v) => typeof v === 'number' && Number.isSafeInteger(v)
const isBytes: FieldCheck = (v) => v instanceof Uint8Array
const isSigned: FieldCheck = (v) => {
  const m = v as { payload?: unknown, signer?: unknown, signature?: unknown } | null
  return m !== null && typeof m === 'object' && 'payload' in m && typeof m.signer === 'string' && m.signature instanceof Uint8Array
}
const isStrings: FieldCheck = (v) => Array.isArray(v) && v.every(isString)
const isNumbers: FieldCheck = (v) => Array.isArray(v) && v.every(isNumber)
const isPieces: FieldCheck = (v) => Array.isArray(v) && v.every((p) => p !== null && typeof p === 'object' && isNumber((p as { pieceId?: unknown }).pieceId))
const isBoolean: FieldCheck = (v) => typeof v === 'boolean'

type Checks = Record<string, FieldCheck>
const onDeal: Checks = { provider: isString }
const terms: Checks = { ...onDeal, client: isString, nonce: isInt, pieceCid: isCid, payloadCid: isCid, pieceSize: isInt, payloadSize: isInt, proposal: isSigned }
const ended: Checks = { ...onDeal, code: isString, message: isString, reason: isString, pieceCid: isCid, uploadBy: isNumber, end: isNumber, status: isSigned, cancel: isSigned }
const piece: Checks = { ...onDeal, pieceCid: isCid }
const proofResult: Checks = { ...onDeal, period: isNumber, challenge: isCid, pieceCid: isCid, seed: isBytes, count: isNumber, ms: isInt, code: isString, message: isString, providerCode: isString, attempts: isNumber }
const settlement: Checks = { ...onDeal, dataSet: isNumber, from: isString, to: isString, amount: isInt, period: isNumber, fee: isInt, reason: isString }
const dataSet: Checks = { payer: isString, payee: isString, pieces: isPieces, pieceIds: isNumbers, start: isNumber, end: isNumber, padded: isInt, bytes: isInt }

const FIELD_CHECKS: Record<EntryKind, Checks> = {
  'deal-proposed': { ...terms, endpoint: isString, maxPrice: isInt, replicaOf: isString, recipients: isStrings },
  'deal-accepted': { ...terms, start: isNumber, end: isNumber, uploadBy: isNumber, challenges: isNumber, acceptance: isSigned, status: isSigned },
  'deal-rejected': ended,
  'transfer-started': piece,
  'piece-stored': piece,
  'deal-active': { ...onDeal, endpoint: isString, pieceCid: isCid, pieceCidV1: isCid, payloadCid: isCid, payloadSize: isInt, blocks: isNumber, replicaOf: isString, status: isSigned },
  'challenge-issued': { ...onDeal, period: isNumber, seed: isBytes, count: isNumber, deadline: isNumber },
  'proof-passed': proofResult,
  'proof-failed': proofResult,
  'proof-missed': proofResult,
  'payment-accrued': settlement,
  'collateral-slashed': settlement,
  'deal-expired': ended,
  'deal-terminated': ended,
  'deal-failed': ended,
  'deal-repaired': { ...onDeal, reason: isString, replacement: (v) => isCid(v) || isString(v), replacementProvider: isString, reencrypted: isBoolean },
  'proof-answered': { ...onDeal, client: isString, seed: isBytes, count: isNumber, request: isSigned },
  'data-set-created': dataSet,
  'pieces-added': dataSet,
  'pieces-removed': dataSet,
  'data-set-deleted': dataSet,
  'data-set-expired': dataSet,
  'data-set-proven': { ...dataSet, period: isNumber, seed: isString, count: isNumber },
  'data-set-audited': { ...dataSet, endpoint: isString, provider: isString, outcome: isString, period: isNumber, seed: isString, count: isNumber, ms: isInt, leafCount: isString, code: isString, message: isString }
}

/**
 * An entry's fields as its kind's type (EntryFieldsOf), checked once where
 * entries are built or read: every deal kind names its deal (a CID; an older
 * writer's deal id as a string is read as the CID it spells), every data set
 * kind its data set, and each typed field holds its type. Throws a TypeError
 * naming the field; the fields are not changed otherwise, so the stored bytes
 * stay the writer's.
 */
export function parseFields<K extends EntryKind> (kind: K, fields: EntryFields): EntryFieldsOf[K] {
  const out = { ...fields }
  if (kind.startsWith('data-set') || kind.startsWith('pieces-') || (kind === 'payment-accrued' && fields.deal === undefined && fields.dataSet !== undefined)) {
    if (!isNumber(fields.dataSet)) throw new TypeError(`a ${kind} entry needs the data set id (an integer) in field "dataSet"`)
  } else {
    const deal = CID.asCID(fields.deal) ?? (typeof fields.deal === 'string' ? cidOrNull(fields.deal) : null)
    if (deal === null) throw new TypeError(`a ${kind} entry needs the deal id (a CID) in field "deal"`)
    out.deal = deal
  }
  for (const [field, check] of Object.entries(FIELD_CHECKS[kind])) {
    const value = fields[field]
    if (value !== undefined && !check(value)) throw new TypeError(`ledger entry field ${field} of a ${kind} entry does not hold what the kind says (src/ledger/interface.ts)`)
  }
  return out as EntryFieldsOf[K]
}

function cidOrNull (text: string): CID | null {
  try { return CID.parse(text) } catch { return null }
}

function checkValue (value: unknown, path: string): void {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new TypeError(`ledger entry field ${path} is ${value}; only integers are allowed (use bigint for amounts)`)
  if (value === undefined) throw new TypeError(`ledger entry field ${path} is undefined`)
  // DAG-CBOR integers are 64-bit: a larger one would be written but could never be read back
  if (typeof value === 'bigint' && (value > U64_MAX || value < -U64_MAX - 1n)) throw new TypeError(`ledger entry field ${path} is ${value}, outside the 64-bit integers DAG-CBOR holds`)
  if (Array.isArray(value)) value.forEach((v, i) => checkValue(v, `${path}[${i}]`))
  else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && CID.asCID(value) === null) {
    for (const [k, v] of Object.entries(value)) checkValue(v, `${path}.${k}`)
  }
}

export function buildEntry (signer: Signer, seq: number, prev: CID | null, at: number, kind: EntryKind, fields: EntryFields): LedgerEntry {
  const entryBytes = dagCbor.encode({ ...fields, seq, prev, at, kind })
  const signature = signer.sign(concatTag(Tag.ledgerEntry, entryBytes))
  const recordBytes = dagCbor.encode({ entry: entryBytes, signer: signer.did, signature })
  return { seq, cid: recordCid(recordBytes), prev, at, kind, fields: parseFields(kind, fields), signer: signer.did, signature, entryBytes, recordBytes } as LedgerEntry
}

/** Thrown by decodeRecord; the caller names the entry. */
export class MalformedRecord extends Error {}

/** Decodes a stored record; `cid` may be passed when already computed. */
export function decodeRecord (recordBytes: Uint8Array, cid: CID = recordCid(recordBytes)): LedgerEntry {
  let record: unknown = parseCanonicalRecord(recordBytes)
  let value: unknown
  if (record === undefined) {
    try {
      record = dagCbor.decode(recordBytes)
    } catch (err) {
      throw new MalformedRecord(`record is not valid DAG-CBOR (${(err as Error).message})`)
    }
  }
  const r = record as { entry?: unknown, signer?: unknown, signature?: unknown }
  if (r === null || typeof r !== 'object' || !(r.entry instanceof Uint8Array) || typeof r.signer !== 'string' || !(r.signature instanceof Uint8Array) || Object.keys(r).length !== 3) {
    throw new MalformedRecord('record is not {entry: bytes, signer, signature}')
  }
  try {
    value = dagCbor.decode(r.entry)
  } catch (err) {
    throw new MalformedRecord(`entry is not valid DAG-CBOR (${(err as Error).message})`)
  }
  const e = value as Record<string, unknown>
  if (e === null || typeof e !== 'object' || !Number.isSafeInteger(e.seq) || !Number.isSafeInteger(e.at) || !isEntryKind(e.kind) || (e.prev !== null && CID.asCID(e.prev) === null)) {
    throw new MalformedRecord('entry lacks a valid seq, prev, at or kind')
  }
  const { seq, prev, at, kind, ...raw } = e
  let fields: EntryFieldsOf[EntryKind]
  try {
    fields = parseFields(kind, raw)
  } catch (err) {
    throw new MalformedRecord((err as Error).message)
  }
  return {
    seq: seq as number,
    cid,
    prev: prev === null ? null : CID.asCID(prev),
    at: at as number,
    kind: kind as EntryKind,
    fields,
    signer: r.signer,
    signature: r.signature,
    entryBytes: r.entry,
    recordBytes
  } as LedgerEntry
}

const KEY_ENTRY = Uint8Array.of(0x65, 0x65, 0x6e, 0x74, 0x72, 0x79)
const KEY_SIGNER = Uint8Array.of(0x66, 0x73, 0x69, 0x67, 0x6e, 0x65, 0x72)
const KEY_SIGNATURE = Uint8Array.of(0x69, 0x73, 0x69, 0x67, 0x6e, 0x61, 0x74, 0x75, 0x72, 0x65, 0x58, 0x40)

/**
 * The record exactly as buildEntry writes it — a3 "entry" bytes "signer"
 * ascii-text "signature" 64-bytes, minimal lengths, nothing after — read
 * without a general decoder (verify is bound by decoding, docs/performance.md). Anything
 * else returns undefined and goes to the strict DAG-CBOR decoder.
 */
function parseCanonicalRecord (b: Uint8Array): { entry: Uint8Array, signer: string, signature: Uint8Array } | undefined {
  let i = 0
  const expect = (key: Uint8Array): boolean => {
    if (b.length < i + key.length) return false
    for (let k = 0; k < key.length; k++) if (b[i + k] !== key[k]) return false
    i += key.length
    return true
  }
  const length = (major: number): number | undefined => {
    const first = b[i++]
    if (first === undefined || first >> 5 !== major) return undefined
    const info = first & 0x1f
    if (info < 24) return info
    if (info === 24 && b[i] !== undefined && b[i] >= 24) return b[i++]
    if (info === 25 && i + 1 < b.length && ((b[i] << 8) | b[i + 1]) >= 256) { i += 2; return (b[i - 2] << 8) | b[i - 1] }
    return undefined
  }
  if (b[i++] !== 0xa3 || !expect(KEY_ENTRY)) return undefined
  const entryLength = length(2)
  if (entryLength === undefined || i + entryLength > b.length) return undefined
  const entry = b.subarray(i, i + entryLength)
  i += entryLength
  if (!expect(KEY_SIGNER)) return undefined
  const signerLength = length(3)
  if (signerLength === undefined || i + signerLength > b.length) return undefined
  for (let k = i; k < i + signerLength; k++) if (b[k] >= 0x80) return undefined
  const signer = Buffer.from(b.buffer, b.byteOffset + i, signerLength).toString('latin1')
  i += signerLength
  if (!expect(KEY_SIGNATURE) || i + 64 !== b.length) return undefined
  return { entry, signer, signature: b.subarray(i) }
}
