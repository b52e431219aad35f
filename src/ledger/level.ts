/**
 * The ledger on the repo's LevelDB. Entries live in sublevel `ledger/entries`
 * keyed by seq; the indexes derived from them (deal records, per-deal entry
 * list, balances, provider counters, nonces) live beside them, and each entry
 * commits together with every index it changes and the caller's extra writes
 * in one `batch(…, {sync: true})` (SPEC §5): LevelDB applies a batch whole or
 * not at all, so a crash leaves the ledger at an entry boundary.
 *
 * Appends are serialised through one queue, so seq and prev stay consistent
 * under concurrency, and every append waiting while a batch is being synced
 * joins the next one (group commit): one fsync for many entries.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import type { AbstractBatchOperation } from 'abstract-level'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CairnError } from '../errors.js'
import { TimeSlicer } from '../slice.js'
import { parseDealId } from '../deal/proposal.js'
import { verifyByDid, concatTag, Tag, type Signer } from '../deal/signing.js'
import type { Database } from '../repo/repo.js'
import { buildEntry, checkFields, decodeRecord, MalformedRecord, recordCid, seqKey, sha256 } from './entry.js'
import { balanceFrom, counterpartyOf, dealOf, nextBalance, nextCounters, nextDeal, zeroCounters } from './indexes.js'
import type { Balance, DealRecord, EntryFields, EntryKind, ExtraOp, Ledger, LedgerEntry, LogOptions, ProviderCounters, VerifyOptions, VerifyReport } from './interface.js'

function sublevel (db: Database, name: string) {
  return db.sublevel<string, Uint8Array>(['ledger', name], { valueEncoding: 'view' })
}
type Sub = ReturnType<typeof sublevel>
type BatchOp = AbstractBatchOperation<Database, string, Uint8Array>

/** Most entries one batch carries. */
const MAX_GROUP = 512

interface Pending {
  kind: EntryKind
  fields: EntryFields
  extra: Iterable<ExtraOp>
  resolve: (entry: LedgerEntry) => void
  reject: (err: unknown) => void
}

export interface LevelLedgerOptions {
  /** clock in unix milliseconds, for tests */
  now?: () => number
}

export class LevelLedger implements Ledger {
  private readonly entries: Sub
  private readonly byDeal: Sub
  private readonly deals: Sub
  private readonly balances: Sub
  private readonly providers: Sub
  private readonly nonces: Sub
  private headSeq = 0
  private headCid: CID | null = null
  private pending: Pending[] = []
  private flushing: Promise<void> | undefined
  private readonly now: () => number

  private constructor (readonly db: Database, private readonly signer: Signer, options: LevelLedgerOptions) {
    const sub = (name: string): Sub => sublevel(db, name)
    this.entries = sub('entries')
    this.byDeal = sub('by-deal')
    this.deals = sub('deals')
    this.balances = sub('balances')
    this.providers = sub('providers')
    this.nonces = sub('nonces')
    this.now = options.now ?? Date.now
  }

  /** Opens the ledger on an open repo database; `signer` is the node's identity. */
  static async open (db: Database, signer: Signer, options: LevelLedgerOptions = {}): Promise<LevelLedger> {
    const ledger = new LevelLedger(db, signer, options)
    for await (const [key, value] of ledger.entries.iterator({ reverse: true, limit: 1 })) {
      ledger.headSeq = Number(key)
      ledger.headCid = recordCid(value)
    }
    return ledger
  }

  get did (): string { return this.signer.did }

  head (): { seq: number, cid: CID } | null {
    return this.headCid === null ? null : { seq: this.headSeq, cid: this.headCid }
  }

  append (kind: EntryKind, fields: EntryFields, extra: Iterable<ExtraOp> = []): Promise<LedgerEntry> {
    checkFields(kind, fields)
    return new Promise((resolve, reject) => {
      this.pending.push({ kind, fields, extra, resolve, reject })
      if (this.flushing === undefined) this.flushing = this.drain()
    })
  }

  /** Resolves once every append queued so far has committed or failed. */
  async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
  }

  private async drain (): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, MAX_GROUP)
        await this.commit(group)
      }
    } finally {
      this.flushing = undefined
    }
  }

  private async commit (group: Pending[]): Promise<void> {
    // index values written earlier in this group, which reads must see
    const overlay = new Map<string, unknown>()
    const read = async <T>(space: Sub, name: string, key: string): Promise<T | undefined> => {
      const k = `${name}\0${key}`
      if (overlay.has(k)) return overlay.get(k) as T
      const bytes = await space.get(key)
      return bytes === undefined ? undefined : dagCbor.decode(bytes) as T
    }
    const ops: BatchOp[] = []
    const done: Array<[Pending, LedgerEntry]> = []
    const slicer = new TimeSlicer()
    let seq = this.headSeq
    let prev = this.headCid
    for (const item of group) {
      try {
        const entry = buildEntry(this.signer, seq + 1, prev, this.now(), item.kind, item.fields)
        const writes: Array<[Sub, string, string, unknown]> = []
        const dealId = dealOf(entry.kind, entry.fields)
        if (dealId !== undefined) {
          const id = dealId.toString()
          const deal = nextDeal(await read<DealRecord>(this.deals, 'deals', id), entry)
          if (deal !== undefined) writes.push([this.deals, 'deals', id, deal])
          ops.push({ type: 'put', sublevel: this.byDeal, key: `${id}/${seqKey(entry.seq)}`, value: new Uint8Array(0) })
          if ((entry.kind === 'deal-proposed' || entry.kind === 'deal-accepted') && typeof entry.fields.client === 'string' &&
            (typeof entry.fields.nonce === 'bigint' || typeof entry.fields.nonce === 'number')) {
            writes.push([this.nonces, 'nonces', nonceKey(entry.fields.client, BigInt(entry.fields.nonce)), id])
          }
        }
        const provider = entry.fields.provider
        if (typeof provider === 'string') {
          const counters = nextCounters(await read<ProviderCounters>(this.providers, 'providers', provider), entry)
          if (counters !== undefined) writes.push([this.providers, 'providers', provider, counters])
        }
        const counterparty = counterpartyOf(entry, this.did)
        if (counterparty !== undefined) {
          writes.push([this.balances, 'balances', counterparty, nextBalance(await read<Balance>(this.balances, 'balances', counterparty), entry, this.did)])
        }
        ops.push({ type: 'put', sublevel: this.entries, key: seqKey(entry.seq), value: entry.recordBytes })
        for (const [space, name, key, value] of writes) {
          overlay.set(`${name}\0${key}`, value)
          ops.push({ type: 'put', sublevel: space, key, value: dagCbor.encode(value) })
        }
        // the extra writes may be many (an upload's block index) and produced lazily: taken in
        // time slices, and only once all of them are in hand do they join the batch
        const extra: BatchOp[] = []
        for (const op of item.extra) {
          extra.push(op as BatchOp)
          if (slicer.due) await slicer.pause()
        }
        for (const op of extra) ops.push(op)
        done.push([item, entry])
        seq = entry.seq
        prev = entry.cid
      } catch (err) {
        // a bad entry (e.g. an illegal transition) fails alone; the rest of the group goes on
        item.reject(err)
      }
    }
    if (done.length === 0) return
    // a chained batch is filled in time slices: thousands of operations in one
    // db.batch([...]) call would hold the event loop for tens of milliseconds
    const batch = this.db.batch()
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value, { sublevel: op.sublevel })
        else batch.del(op.key, { sublevel: op.sublevel })
        if (slicer.due) await slicer.pause()
      }
      await batch.write({ sync: true })
    } catch (err) {
      await batch.close().catch(() => {})
      const failure = new CairnError('ERR_IO', `could not commit ${done.length} ledger entries: ${(err as Error).message}`, { cause: err })
      for (const [item] of done) item.reject(failure)
      return
    }
    this.headSeq = seq
    this.headCid = prev
    for (const [item, entry] of done) item.resolve(entry)
  }

  async get (seq: number): Promise<LedgerEntry | undefined> {
    const bytes = await this.entries.get(seqKey(seq))
    return bytes === undefined ? undefined : decodeRecord(bytes)
  }

  async * log (options: LogOptions = {}): AsyncIterable<LedgerEntry> {
    const limit = options.limit ?? Infinity
    if (limit <= 0) return
    let count = 0
    if (options.deal !== undefined) {
      const id = parseDealId(options.deal).toString()
      for await (const key of this.byDeal.keys({ gt: `${id}/`, lt: `${id}/~`, reverse: true })) {
        const entry = await this.get(Number(key.slice(id.length + 1)))
        if (entry === undefined || (options.kind !== undefined && entry.kind !== options.kind)) continue
        yield entry
        if (++count >= limit) return
      }
      return
    }
    for await (const value of this.entries.values({ reverse: true })) {
      const entry = decodeRecord(value)
      if (options.kind !== undefined && entry.kind !== options.kind) continue
      yield entry
      if (++count >= limit) return
    }
  }

  async verify (options: VerifyOptions = {}): Promise<VerifyReport> {
    const all = options.signatures === 'all'
    let expected = 1
    let prev: LedgerEntry | null = null
    const broken = (seq: number, cid: CID | undefined, reason: string): CairnError =>
      new CairnError('ERR_LEDGER_BROKEN', `ledger entry ${seq}${cid === undefined ? '' : ` (${cid.toString()})`} ${reason}`, { details: { seq, cid: cid?.toString() } })
    const signatureOk = (e: LedgerEntry): boolean => {
      try {
        return verifyByDid(e.signer, concatTag(Tag.ledgerEntry, e.entryBytes), e.signature)
      } catch {
        return false
      }
    }
    // records in batches (nextv), links compared as digest bytes
    let prevDigest: Uint8Array | null = null
    const iterator = this.entries.iterator()
    try {
      for (let batch = await iterator.nextv(1024); batch.length > 0; batch = await iterator.nextv(1024)) {
        for (const [key, value] of batch) {
          const seq = Number(key)
          if (seq !== expected) {
            throw broken(expected, undefined, seq > expected ? `is missing (the next stored entry is ${seq})` : `is stored under the wrong key ${key}`)
          }
          const digest = sha256(value)
          const cid = cidOf(digest)
          let entry: LedgerEntry
          try {
            entry = decodeRecord(value, cid)
          } catch (err) {
            if (err instanceof MalformedRecord) throw broken(seq, cid, `is corrupt: ${err.message}`)
            throw err
          }
          if (entry.seq !== seq) throw broken(seq, cid, `says it is entry ${entry.seq}`)
          if (entry.signer !== this.did) throw broken(seq, cid, `is signed by ${entry.signer}, not by this node (${this.did})`)
          const linked = prev === null || prevDigest === null
            ? entry.prev === null
            : entry.prev !== null && entry.prev.multihash.code === 0x12 && entry.prev.code === 0x71 && equalBytes(entry.prev.multihash.digest, prevDigest)
          if (!linked) {
            // either the previous record was altered (its hash changed) or this link was; the signatures tell which
            if (prev !== null && !signatureOk(prev)) throw broken(prev.seq, prev.cid, 'has a signature that does not verify: it was altered')
            throw broken(seq, cid, `links to ${String(entry.prev)}, but the previous entry is ${prev === null ? 'none' : prev.cid.toString()}`)
          }
          if (all && !signatureOk(entry)) throw broken(seq, cid, 'has a signature that does not verify')
          if (options.verifyEntry !== undefined) {
            try {
              await options.verifyEntry(entry)
            } catch (err) {
              throw broken(seq, entry.cid, `fails its check: ${(err as Error).message}`)
            }
          }
          prev = entry
          prevDigest = digest
          expected++
          if (options.onProgress !== undefined && (expected & 0x3ff) === 0) options.onProgress(expected - 1)
        }
      }
    } finally {
      await iterator.close()
    }
    if (prev !== null && !all && !signatureOk(prev)) throw broken(prev.seq, prev.cid, 'has a signature that does not verify')
    return { entries: expected - 1, head: prev === null ? null : { seq: prev.seq, cid: prev.cid } }
  }

  async * export (): AsyncIterable<string> {
    for await (const value of this.entries.values()) {
      yield exportLine(decodeRecord(value))
    }
  }

  async balance (): Promise<Balance[]> {
    const out: Balance[] = []
    for await (const value of this.balances.values()) out.push(dagCbor.decode(value) as Balance)
    return out.map(balanceFrom)
  }

  async deal (id: CID | string): Promise<DealRecord | undefined> {
    const bytes = await this.deals.get(parseDealId(id).toString())
    if (bytes === undefined) return undefined
    const record = dagCbor.decode(bytes) as DealRecord
    if (record.pieceSize !== undefined) record.pieceSize = BigInt(record.pieceSize)
    return record
  }

  async counters (provider: string): Promise<ProviderCounters> {
    const bytes = await this.providers.get(provider)
    return bytes === undefined ? zeroCounters() : dagCbor.decode(bytes) as ProviderCounters
  }

  async nonceUsed (client: string, nonce: bigint): Promise<boolean> {
    return (await this.nonces.get(nonceKey(client, nonce))) !== undefined
  }
}

function cidOf (digest: Uint8Array): CID {
  return CID.createV1(0x71, createDigest(0x12, digest))
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

function nonceKey (client: string, nonce: bigint): string {
  return `${client}/${nonce.toString().padStart(20, '0')}`
}

/**
 * One export line: the signed record (what a third party verifies), its CID,
 * and the entry decoded for people to read (the verifier checks it matches).
 */
export function exportLine (entry: LedgerEntry): string {
  const { seq, prev, at, kind, fields } = entry
  return new TextDecoder().decode(dagJson.encode({ seq, cid: entry.cid, signer: entry.signer, entry: { ...fields, seq, prev, at, kind }, record: entry.recordBytes }))
}
