/**
 * The ledger on the repo's LevelDB. Entries live in sublevel `ledger/entries`
 * keyed by seq; the indexes derived from them (src/ledger/indexes.ts: deal
 * records, per-deal entry list, balances, provider counters, nonces, the
 * provider's totals and schedule, piece holders, witnessed heads, the head)
 * live beside them, and each entry commits together with every index it
 * changes and the caller's extra writes in one `batch(…, {sync: true})`
 * (docs/ledger.md): LevelDB applies a batch whole or not at all, so a crash leaves
 * the ledger at an entry boundary.
 *
 * Appends are serialised through one queue, so seq and prev stay consistent
 * under concurrency, and every append waiting while a batch is being synced
 * joins the next one (group commit): one fsync for many entries. A ledger
 * whose indexes were written by another index version is re-indexed from its
 * chain when opened.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import type { AbstractBatchOperation } from 'abstract-level'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CairnError } from '../errors.js'
import { TimeSlicer } from '../slice.js'
import { parseDealId } from '../protocol/proposal.js'
import { verifyByDid, concatTag, Tag, type Signer } from '../protocol/signing.js'
import type { Database } from '../repo/repo.js'
import { buildEntry, checkFields, decodeRecord, MalformedRecord, recordCid, seqKey, sha256 } from './entry.js'
import {
  balanceFrom, dealRecordFrom, deriveWrites, INDEX_SPACES, INDEX_VERSION, isValueless, nonceKey, readsOf, secondsKey, STATS_KEY,
  statsFrom, storedIndexValue, VALUELESS, VERSION_KEY, zeroCounters, type IndexSpace, type IndexValues, type IndexWrite
} from './indexes.js'
import type {
  AppendItem, Balance, DealRecord, EntryFields, EntryKind, ExtraOp, Ledger, LedgerEntry, LedgerStats, LogOptions, ProviderCounters,
  VerifyOptions, VerifyReport, WitnessedHead
} from './interface.js'

function sublevel (db: Database, name: string) {
  return db.sublevel<string, Uint8Array>(['ledger', name], { valueEncoding: 'view' })
}
type Sub = ReturnType<typeof sublevel>
type BatchOp = AbstractBatchOperation<Database, string, Uint8Array>

/** Most entries one batch carries. */
const MAX_GROUP = 512

interface Pending {
  items: readonly AppendItem[]
  resolve: (entries: LedgerEntry[]) => void
  reject: (err: unknown) => void
}

export interface LevelLedgerOptions {
  /** clock in unix milliseconds, for tests */
  now?: () => number
}

/** An index value as stored. */
export function encodeIndexValue (space: IndexSpace, value: unknown): Uint8Array {
  return isValueless(space) ? VALUELESS : dagCbor.encode(storedIndexValue(space, value))
}

/** The index values read to derive an entry's writes, through `read`. */
async function valuesFor (entry: LedgerEntry, self: string, read: (space: IndexSpace, key: string) => unknown): Promise<IndexValues> {
  const reads = readsOf(entry, self)
  const deal = reads.deal === undefined ? undefined : await read('deals', reads.deal)
  const counters = reads.provider === undefined ? undefined : await read('providers', reads.provider)
  const balance = reads.counterparty === undefined ? undefined : await read('balances', reads.counterparty)
  return {
    deal: deal === undefined ? undefined : dealRecordFrom(deal),
    counters: counters as ProviderCounters | undefined,
    balance: balance === undefined ? undefined : balanceFrom(balance as Balance),
    stats: statsFrom(await read('stats', STATS_KEY))
  }
}

/**
 * The indexes of a chain, derived by replaying it entry by entry in memory
 * with the same pure functions an append uses (re-indexing, `verify`).
 */
class IndexReplay {
  readonly spaces = new Map<IndexSpace, Map<string, unknown>>(INDEX_SPACES.map(s => [s, new Map()]))
  constructor (private readonly self: string) {}

  async apply (entry: LedgerEntry): Promise<void> {
    const values = await valuesFor(entry, this.self, (space, key) => this.spaces.get(space)?.get(key))
    for (const w of deriveWrites(entry, values, this.self)) {
      const space = this.spaces.get(w.space) as Map<string, unknown>
      if ('del' in w) space.delete(w.key)
      else space.set(w.key, w.value)
    }
  }
}

export class LevelLedger implements Ledger {
  private readonly entries: Sub
  private readonly indexes: Record<IndexSpace, Sub>
  private headSeq = 0
  private headCid: CID | null = null
  /** the stats index as last committed: read by every entry and by every ask, so kept in memory */
  private statsValue: unknown
  private pending: Pending[] = []
  private flushing: Promise<void> | undefined
  private readonly now: () => number

  private constructor (readonly db: Database, private readonly signer: Signer, options: LevelLedgerOptions) {
    this.entries = sublevel(db, 'entries')
    this.indexes = Object.fromEntries(INDEX_SPACES.map(s => [s, sublevel(db, s)])) as Record<IndexSpace, Sub>
    this.now = options.now ?? Date.now
  }

  /** Opens the ledger on an open repo database; `signer` is the node's identity. */
  static async open (db: Database, signer: Signer, options: LevelLedgerOptions = {}): Promise<LevelLedger> {
    const ledger = new LevelLedger(db, signer, options)
    for await (const [key, value] of ledger.entries.iterator({ reverse: true, limit: 1 })) {
      ledger.headSeq = Number(key)
      ledger.headCid = recordCid(value)
    }
    const version = await ledger.indexes.meta.get(VERSION_KEY)
    if (version === undefined || dagCbor.decode(version) !== INDEX_VERSION) await ledger.reindex()
    return ledger
  }

  /**
   * Rebuilds every index from the chain (a ledger written by an older version).
   * The version mark is written last, so an interrupted rebuild starts over.
   */
  private async reindex (): Promise<void> {
    const replay = new IndexReplay(this.did)
    for await (const value of this.entries.values()) await replay.apply(decodeRecord(value))
    for (const space of INDEX_SPACES) await this.indexes[space].clear()
    let batch = this.db.batch()
    let size = 0
    for (const [space, values] of replay.spaces) {
      for (const [key, value] of values) {
        batch.put(key, encodeIndexValue(space, value), { sublevel: this.indexes[space] })
        if (++size % 10_000 === 0) {
          await batch.write()
          batch = this.db.batch()
        }
      }
    }
    batch.put(VERSION_KEY, dagCbor.encode(INDEX_VERSION), { sublevel: this.indexes.meta })
    await batch.write({ sync: true })
    this.statsValue = undefined
  }

  get did (): string { return this.signer.did }

  head (): { seq: number, cid: CID } | null {
    return this.headCid === null ? null : { seq: this.headSeq, cid: this.headCid }
  }

  append (kind: EntryKind, fields: EntryFields, extra: Iterable<ExtraOp> = []): Promise<LedgerEntry> {
    return this.appendAll([{ kind, fields, extra }]).then(([entry]) => entry as LedgerEntry)
  }

  appendAll (items: readonly AppendItem[]): Promise<LedgerEntry[]> {
    for (const item of items) checkFields(item.kind, item.fields)
    if (items.length === 0) return Promise.resolve([])
    return new Promise((resolve, reject) => {
      this.pending.push({ items, resolve, reject })
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
        const group: Pending[] = []
        let entries = 0
        while (this.pending.length > 0 && (group.length === 0 || entries + (this.pending[0] as Pending).items.length <= MAX_GROUP)) {
          const next = this.pending.shift() as Pending
          group.push(next)
          entries += next.items.length
        }
        await this.commit(group)
      }
    } finally {
      this.flushing = undefined
    }
  }

  private async readIndex (space: IndexSpace, key: string): Promise<unknown> {
    if (space === 'stats' && key === STATS_KEY) {
      if (this.statsValue === undefined) {
        const stored = await this.indexes.stats.get(STATS_KEY)
        this.statsValue = stored === undefined ? null : dagCbor.decode(stored)
      }
      return this.statsValue ?? undefined
    }
    const bytes = await this.indexes[space].get(key)
    return bytes === undefined ? undefined : dagCbor.decode(bytes)
  }

  private async commit (group: Pending[]): Promise<void> {
    // index values written earlier in this group, which reads must see (undefined: deleted)
    const overlay = new Map<string, unknown>()
    const ops: BatchOp[] = []
    const done: Array<[Pending, LedgerEntry[]]> = []
    const slicer = new TimeSlicer()
    let seq = this.headSeq
    let prev = this.headCid
    for (const unit of group) {
      // a unit (one appendAll) commits whole or not at all: its writes are staged apart until it is complete
      const staged = new Map<string, unknown>()
      const read = async (space: IndexSpace, key: string): Promise<unknown> => {
        const k = `${space}\0${key}`
        if (staged.has(k)) return staged.get(k)
        if (overlay.has(k)) return overlay.get(k)
        return await this.readIndex(space, key)
      }
      const unitOps: BatchOp[] = []
      const entries: LedgerEntry[] = []
      let unitSeq = seq
      let unitPrev = prev
      try {
        for (const item of unit.items) {
          const entry = buildEntry(this.signer, unitSeq + 1, unitPrev, this.now(), item.kind, item.fields)
          const writes: IndexWrite[] = deriveWrites(entry, await valuesFor(entry, this.did, read), this.did)
          unitOps.push({ type: 'put', sublevel: this.entries, key: seqKey(entry.seq), value: entry.recordBytes })
          for (const w of writes) {
            const k = `${w.space}\0${w.key}`
            if ('del' in w) {
              staged.set(k, undefined)
              unitOps.push({ type: 'del', sublevel: this.indexes[w.space], key: w.key })
            } else {
              staged.set(k, w.value)
              unitOps.push({ type: 'put', sublevel: this.indexes[w.space], key: w.key, value: encodeIndexValue(w.space, w.value) })
            }
          }
          // the extra writes may be many (an upload's block index) and produced lazily: taken in
          // time slices, and only once all of them are in hand do they join the batch
          for (const op of item.extra ?? []) {
            unitOps.push(op as BatchOp)
            if (slicer.due) await slicer.pause()
          }
          entries.push(entry)
          unitSeq = entry.seq
          unitPrev = entry.cid
        }
      } catch (err) {
        // a bad entry (e.g. an illegal transition) fails its unit alone; the rest of the group goes on
        unit.reject(err)
        continue
      }
      for (const [k, v] of staged) overlay.set(k, v)
      for (const op of unitOps) ops.push(op)
      done.push([unit, entries])
      seq = unitSeq
      prev = unitPrev
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
      const count = done.reduce((n, [, e]) => n + e.length, 0)
      const failure = new CairnError('ERR_IO', `could not commit ${count} ledger entries: ${(err as Error).message}`, { cause: err })
      for (const [unit] of done) unit.reject(failure)
      return
    }
    this.headSeq = seq
    this.headCid = prev
    const stats = `stats\0${STATS_KEY}`
    if (overlay.has(stats)) this.statsValue = overlay.get(stats) ?? null
    for (const [unit, entries] of done) unit.resolve(entries)
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
      for await (const key of this.indexes['by-deal'].keys({ gt: `${id}/`, lt: `${id}/~`, reverse: true })) {
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
    // the indexes are re-derived from the chain as it is read, then compared with the stored ones
    const replay = new IndexReplay(this.did)
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
          try {
            await replay.apply(entry)
          } catch (err) {
            throw broken(seq, entry.cid, `cannot follow the entries before it: ${(err as Error).message}`)
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
    const indexed = await this.compareIndexes(replay)
    return { entries: expected - 1, indexed, head: prev === null ? null : { seq: prev.seq, cid: prev.cid } }
  }

  /**
   * Compares every stored index entry with the one the chain gives, space by
   * space in key order, and throws ERR_LEDGER_BROKEN at the first that differs,
   * is missing or is derived from nothing (an edited balance, a deal state
   * changed by hand, entries cut off the end while the head index stayed).
   */
  private async compareIndexes (replay: IndexReplay): Promise<number> {
    let compared = 0
    const text = (value: unknown): string => {
      const t = new TextDecoder().decode(dagJson.encode(value ?? null))
      return t.length > 200 ? t.slice(0, 200) + '…' : t
    }
    // what the stored value says against what the chain gives: only the fields that differ
    const differ = (space: IndexSpace, stored: unknown, derived: unknown): string => {
      const a = storedIndexValue(space, stored)
      const b = storedIndexValue(space, derived)
      if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object' || Array.isArray(a) || Array.isArray(b) || CID.asCID(a) !== null || CID.asCID(b) !== null) {
        return `holds ${text(a)}; the chain gives ${text(b)}`
      }
      const x = a as Record<string, unknown>
      const y = b as Record<string, unknown>
      const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].filter(k => text(x[k]) !== text(y[k]))
      const side = (r: Record<string, unknown>): string => keys.map(k => `${k} ${r[k] === undefined ? 'unset' : text(r[k])}`).join(', ')
      return `holds ${side(x)}; the chain gives ${side(y)}`
    }
    const fail = (space: IndexSpace, key: string, reason: string): CairnError =>
      new CairnError('ERR_LEDGER_BROKEN', `ledger index ${space}/${key} ${reason}`, { details: { index: space, key } })
    for (const space of INDEX_SPACES) {
      const derived = replay.spaces.get(space) as Map<string, unknown>
      if (space === 'meta') derived.set(VERSION_KEY, INDEX_VERSION)
      const iterator = this.indexes[space].iterator()
      try {
        for (let batch = await iterator.nextv(1024); batch.length > 0; batch = await iterator.nextv(1024)) {
          for (const [key, stored] of batch) {
            if (!derived.has(key)) throw fail(space, key, `holds ${text(safeDecode(space, stored))}, which no entry of the chain gives`)
            const value = derived.get(key)
            if (!equalBytes(encodeIndexValue(space, value), stored)) {
              throw fail(space, key, differ(space, safeDecode(space, stored), value))
            }
            derived.delete(key)
            compared++
          }
        }
      } finally {
        await iterator.close()
      }
      const missing = derived.keys().next()
      if (missing.done !== true) throw fail(space, missing.value, `is missing; the chain gives ${text(storedIndexValue(space, derived.get(missing.value)))}`)
    }
    return compared
  }

  async * export (): AsyncIterable<string> {
    for await (const value of this.entries.values()) {
      yield exportLine(decodeRecord(value))
    }
  }

  async balance (): Promise<Balance[]> {
    const out: Balance[] = []
    for await (const value of this.indexes.balances.values()) out.push(dagCbor.decode(value) as Balance)
    return out.map(balanceFrom)
  }

  async deal (id: CID | string): Promise<DealRecord | undefined> {
    const value = await this.readIndex('deals', parseDealId(id).toString())
    return value === undefined ? undefined : dealRecordFrom(value)
  }

  async counters (provider: string): Promise<ProviderCounters> {
    return (await this.readIndex('providers', provider) as ProviderCounters | undefined) ?? zeroCounters()
  }

  async nonceUsed (client: string, nonce: bigint): Promise<boolean> {
    return (await this.indexes.nonces.get(nonceKey(client, nonce))) !== undefined
  }

  async stats (): Promise<LedgerStats> {
    return statsFrom(await this.readIndex('stats', STATS_KEY))
  }

  async due (until: number, limit: number): Promise<Array<{ at: number, deal: string }>> {
    const out: Array<{ at: number, deal: string }> = []
    for await (const key of this.indexes.due.keys({ lt: secondsKey(until + 1), limit })) {
      const slash = key.indexOf('/')
      out.push({ at: Number(key.slice(0, slash)), deal: key.slice(slash + 1) })
    }
    return out
  }

  async holders (pieceCid: string): Promise<string[]> {
    const out: string[] = []
    for await (const key of this.indexes.holders.keys({ gt: `${pieceCid}/`, lt: `${pieceCid}/~` })) out.push(key.slice(pieceCid.length + 1))
    return out
  }

  async * witnessed (did?: string): AsyncIterable<WitnessedHead> {
    const range = did === undefined ? {} : { gt: `${did}/`, lt: `${did}/~` }
    for await (const [key, value] of this.indexes.witnessed.iterator(range)) {
      const [owner, seq, cid] = key.split('/') as [string, string, string]
      const { entry, via } = dagCbor.decode(value) as { entry: number, via: string }
      yield { did: owner, seq: Number(seq), cid: CID.parse(cid), entry, via }
    }
  }
}

function safeDecode (space: IndexSpace, bytes: Uint8Array): unknown {
  if (isValueless(space)) return null
  try { return dagCbor.decode(bytes) } catch { return `${bytes.length} bytes that are not DAG-CBOR` }
}

function cidOf (digest: Uint8Array): CID {
  return CID.createV1(0x71, createDigest(0x12, digest))
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

/**
 * One export line: the signed record (what a third party verifies), its CID,
 * and the entry decoded for people to read (the verifier checks it matches).
 */
export function exportLine (entry: LedgerEntry): string {
  const { seq, prev, at, kind, fields } = entry
  return new TextDecoder().decode(dagJson.encode({ seq, cid: entry.cid, signer: entry.signer, entry: { ...fields, seq, prev, at, kind }, record: entry.recordBytes }))
}
