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
import { concatTag, Tag, type Signer } from '../deal/signing.js'
import { ENTRY_KINDS, type EntryFields, type EntryKind, type LedgerEntry } from './interface.js'

const DAG_CBOR = 0x71
const SHA2_256 = 0x12
const RESERVED = new Set(['seq', 'prev', 'at', 'kind'])

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
}

function checkValue (value: unknown, path: string): void {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new TypeError(`ledger entry field ${path} is ${value}; only integers are allowed (use bigint for amounts)`)
  if (value === undefined) throw new TypeError(`ledger entry field ${path} is undefined`)
  if (Array.isArray(value)) value.forEach((v, i) => checkValue(v, `${path}[${i}]`))
  else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && CID.asCID(value) === null) {
    for (const [k, v] of Object.entries(value)) checkValue(v, `${path}.${k}`)
  }
}

export function buildEntry (signer: Signer, seq: number, prev: CID | null, at: number, kind: EntryKind, fields: EntryFields): LedgerEntry {
  const entryBytes = dagCbor.encode({ ...fields, seq, prev, at, kind })
  const signature = signer.sign(concatTag(Tag.ledgerEntry, entryBytes))
  const recordBytes = dagCbor.encode({ entry: entryBytes, signer: signer.did, signature })
  return { seq, cid: recordCid(recordBytes), prev, at, kind, fields, signer: signer.did, signature, entryBytes, recordBytes }
}

/** Thrown by decodeRecord; the caller names the entry. */
export class MalformedRecord extends Error {}

/** Decodes a stored record; `cid` may be passed when already computed. */
export function decodeRecord (recordBytes: Uint8Array, cid: CID = recordCid(recordBytes)): LedgerEntry {
  let record: unknown, value: unknown
  try {
    record = dagCbor.decode(recordBytes)
  } catch (err) {
    throw new MalformedRecord(`record is not valid DAG-CBOR (${(err as Error).message})`)
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
  const { seq, prev, at, kind, ...fields } = e
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
  }
}
