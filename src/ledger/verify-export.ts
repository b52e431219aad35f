/**
 * A third party's check of `cairn ledger export`: given only the lines (and,
 * optionally, the did:key expected to have signed them), recompute every
 * record's CID, check seq continuity and prev links, check the readable copy
 * of each entry matches its signed bytes, and verify every signature.
 * Depends on nothing of the node but the format, so it can be lifted out whole.
 */
import { createHash, createPublicKey, verify } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CairnError } from '../errors.js'

const TAG = new TextEncoder().encode('cairn/ledger-entry/v1\n')
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

export interface ExportReport {
  entries: number
  signer: string | null
  head: { seq: number, cid: CID } | null
}

export interface VerifyExportOptions {
  /** called with each entry once it has checked out */
  onEntry?: (seq: number, cid: CID) => void
}

export async function verifyExport (lines: Iterable<string> | AsyncIterable<string>, expectedSigner?: string, options: VerifyExportOptions = {}): Promise<ExportReport> {
  let expected = 1
  let prev: CID | null = null
  let signer: string | null = expectedSigner ?? null
  let key: ReturnType<typeof createPublicKey> | undefined
  for await (const raw of lines) {
    const text = raw.trim()
    if (text === '') continue
    const fail = (reason: string, cid?: CID): never => {
      throw new CairnError('ERR_LEDGER_BROKEN', `exported entry ${expected}${cid === undefined ? '' : ` (${cid.toString()})`} ${reason}`, { details: { seq: expected, cid: cid?.toString() } })
    }
    let line: Record<string, unknown>
    try {
      line = dagJson.decode(new TextEncoder().encode(text)) as Record<string, unknown>
    } catch {
      return fail('is not valid DAG-JSON')
    }
    if (!(line.record instanceof Uint8Array)) return fail('has no record bytes')
    const recordBytes = line.record
    const cid = CID.createV1(0x71, createDigest(0x12, new Uint8Array(createHash('sha256').update(recordBytes).digest())))
    const claimed = CID.asCID(line.cid)
    if (claimed === null || !claimed.equals(cid)) fail(`claims CID ${String(line.cid)}, its record hashes to ${cid.toString()}`, cid)
    let record: { entry: Uint8Array, signer: string, signature: Uint8Array }
    let entry: Record<string, unknown>
    try {
      record = dagCbor.decode(recordBytes)
      entry = dagCbor.decode(record.entry)
    } catch {
      return fail('has a record that is not valid DAG-CBOR', cid)
    }
    if (!(record.entry instanceof Uint8Array) || typeof record.signer !== 'string' || !(record.signature instanceof Uint8Array)) fail('has a malformed record', cid)
    if (entry.seq !== expected || line.seq !== expected) fail(`is numbered ${String(entry.seq)}`, cid)
    const entryPrev = entry.prev === null ? null : CID.asCID(entry.prev)
    if (entryPrev === undefined || (prev === null ? entryPrev !== null : entryPrev === null || !entryPrev.equals(prev))) {
      fail(`links to ${String(entry.prev)}, the previous entry is ${String(prev)}`, cid)
    }
    if (!equalBytes(dagCbor.encode(line.entry), record.entry)) fail('has a readable copy that differs from its signed bytes', cid)
    if (signer === null) signer = record.signer
    if (record.signer !== signer) fail(`is signed by ${record.signer}, expected ${signer}`, cid)
    if (key === undefined) key = publicKey(signer, fail)
    const message = new Uint8Array(TAG.length + record.entry.length)
    message.set(TAG)
    message.set(record.entry, TAG.length)
    if (record.signature.length !== 64 || !verify(null, message, key, record.signature)) fail('has a signature that does not verify', cid)
    options.onEntry?.(expected, cid)
    prev = cid
    expected++
  }
  return { entries: expected - 1, signer, head: prev === null ? null : { seq: expected - 1, cid: prev } }
}

function publicKey (did: string, fail: (reason: string) => never): ReturnType<typeof createPublicKey> {
  let bytes: Uint8Array | undefined
  try {
    bytes = did.startsWith('did:key:z') ? base58btc.decode(did.slice(8)) : undefined
  } catch {}
  if (bytes === undefined || bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) return fail(`is signed by ${did}, which is not an Ed25519 did:key`)
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, bytes.subarray(2)]), format: 'der', type: 'spki' })
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}
