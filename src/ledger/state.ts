/**
 * The ledger on a state store (src/state/interface.ts): LevelDB for one node,
 * PostgreSQL for a cluster whose nodes share one chain. Entries live in space
 * `ledger/entries` keyed by seq; the indexes derived from them
 * (src/ledger/indexes.ts: deal records, per-deal entry list, balances,
 * provider counters, nonces, the provider's totals and schedule, piece
 * holders, witnessed heads, the head) live beside them, and each entry
 * commits together with every index it changes and the caller's extra writes
 * in one transaction, so a crash leaves the ledger at an entry boundary.
 *
 * An append takes the ledger head lock (`locks.ledgerHead`) first, then reads
 * the last entry from the store — not from memory: on PostgreSQL another node
 * may have appended since — and links to it, so entries from every node form
 * one gapless chain (docs/cluster.md "One ledger chain from many nodes").
 * Appends waiting while a transaction commits join the next one (group
 * commit): one WAL flush or fsync for many entries. A ledger whose indexes were
 * written by another index version is re-indexed from its chain when opened.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CairnError } from '../errors.js'
import { TimeSlicer } from '../slice.js'
import { parseDealId } from '../protocol/proposal.js'
import { verifyByDid, concatTag, Tag, type Signer } from '../protocol/signing.js'
import type { StateReader, StateStore, StateTransaction, WriteOp } from '../state/interface.js'
import { locks, spaces, type Space } from '../state/spaces.js'
import { buildEntry, checkFields, decodeRecord, MalformedRecord, recordCid, seqKey, sha256 } from './entry.js'
import { dataSetKey } from './data-set-index.js'
import {
  balanceFrom, dataSetRecordFrom, dealRecordFrom, deriveWrites, INDEX_SPACES, INDEX_VERSION, isValueless, nonceKey, readsOf, secondsKey, STATS_KEY,
  statsFrom, storedIndexValue, VALUELESS, VERSION_KEY, zeroCounters, type IndexSpace, type IndexValues
} from './indexes.js'
import type {
  AppendItem, Balance, DataSetLedgerRecord, DealRecord, IndexView, EntryFields, EntryKind, ExtraOp, Ledger, LedgerEntry, LedgerStats, LogOptions, ProviderCounters,
  VerifyOptions, VerifyReport, WitnessedHead
} from './interface.js'

/** Most entries one transaction carries. */
export const MAX_GROUP = 512

/** The state space of each ledger index. */
export const indexSpace: Record<IndexSpace, Space> = {
  'by-deal': spaces.ledgerByDeal,
  deals: spaces.ledgerDeals,
  balances: spaces.ledgerBalances,
  providers: spaces.ledgerProviders,
  nonces: spaces.ledgerNonces,
  stats: spaces.ledgerStats,
  due: spaces.ledgerDue,
  holders: spaces.ledgerHolders,
  witnessed: spaces.ledgerWitnessed,
  'data-sets': spaces.ledgerDataSets,
  'data-set-due': spaces.ledgerDataSetDue,
  meta: spaces.ledgerMeta
}

export interface Pending {
  items: readonly AppendItem[]
  resolve: (entries: LedgerEntry[]) => void
  reject: (err: unknown) => void
}

export interface LedgerOptions {
  /** clock in unix milliseconds, for tests */
  now?: () => number
}

/** An index value as stored. */
export function encodeIndexValue (space: IndexSpace, value: unknown): Uint8Array {
  return isValueless(space) ? VALUELESS : dagCbor.encode(storedIndexValue(space, value))
}

/** The index values read to derive an entry's writes, through `read`. */
export async function valuesFor (entry: LedgerEntry, self: string, read: (space: IndexSpace, key: string) => unknown): Promise<IndexValues> {
  const reads = readsOf(entry, self)
  const deal = reads.deal === undefined ? undefined : await read('deals', reads.deal)
  const counters = reads.provider === undefined ? undefined : await read('providers', reads.provider)
  const balance = reads.counterparty === undefined ? undefined : await read('balances', reads.counterparty)
  const dataSet = reads.dataSet === undefined ? undefined : await read('data-sets', reads.dataSet)
  return {
    dataSet: dataSet === undefined ? undefined : dataSetRecordFrom(dataSet),
    deal: deal === undefined ? undefined : dealRecordFrom(deal),
    counters: counters as ProviderCounters | undefined,
    balance: balance === undefined ? undefined : balanceFrom(balance as Balance),
    stats: statsFrom(await read('stats', STATS_KEY))
  }
}

/** The indexes a guard sees (AppendItem.guard), through `read`. */
export function indexView (read: (space: IndexSpace, key: string) => Promise<unknown>, state: StateReader): IndexView {
  return {
    state: async (space, key) => await state.get(space, key),
    stats: async () => statsFrom(await read('stats', STATS_KEY)),
    deal: async (id) => {
      const value = await read('deals', id)
      return value === undefined ? undefined : dealRecordFrom(value)
    },
    nonceUsed: async (client, nonce) => (await read('nonces', nonceKey(client, nonce))) !== undefined
  }
}

/**
 * The space an extra write goes to: the one it names, or — for a raw key of
 * the repo's LevelDB root, as the provider writes its indexes (`blocks!…`) —
 * the space kept under that key's prefix.
 */
export function extraWrite (op: ExtraOp): WriteOp {
  let space = op.space
  let key = op.key
  if (space === undefined) {
    if (op.sublevel !== undefined) throw new TypeError('an extra ledger write to a sublevel must name its state space')
    const match = Object.values(spaces).find(s => 'prefix' in s.level && typeof key === 'string' && key.startsWith(s.level.prefix))
    if (match === undefined || !('prefix' in match.level)) throw new TypeError(`an extra ledger write to ${JSON.stringify(key)} is in no state space`)
    space = match
    key = key.slice(match.level.prefix.length)
  }
  return op.type === 'put' ? { type: 'put', space, key, value: op.value } : { type: 'del', space, key }
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

async function lastEntry (reader: StateReader): Promise<{ seq: number, cid: CID } | null> {
  for await (const [key, value] of reader.iterate(spaces.ledgerEntries, { reverse: true, limit: 1 })) return { seq: Number(key), cid: recordCid(value) }
  return null
}

async function readIndexFrom (reader: StateReader, space: IndexSpace, key: string): Promise<unknown> {
  const bytes = await reader.get(indexSpace[space], key)
  return bytes === undefined ? undefined : dagCbor.decode(bytes)
}

export class StateLedger implements Ledger {
  protected headSeq = 0
  protected headCid: CID | null = null
  private pending: Pending[] = []
  private flushing: Promise<void> | undefined
  protected readonly now: () => number

  protected constructor (readonly store: StateStore, protected readonly signer: Signer, options: LedgerOptions) {
    this.now = options.now ?? Date.now
  }

  /** Opens the ledger on a state store; `signer` is the node's (the cluster's) identity. */
  static async openOn (store: StateStore, signer: Signer, options: LedgerOptions = {}): Promise<StateLedger> {
    const ledger = new StateLedger(store, signer, options)
    await ledger.load()
    return ledger
  }

  protected async load (): Promise<void> {
    await this.refreshHead()
    const version = await this.store.get(spaces.ledgerMeta, VERSION_KEY)
    if (version === undefined || dagCbor.decode(version) !== INDEX_VERSION) await this.reindex()
  }

  /**
   * Reads the head from the store. `head()` gives the last one this ledger saw
   * (its own appends, `open`, `verify`); on a cluster other nodes move it too.
   */
  async refreshHead (): Promise<{ seq: number, cid: CID } | null> {
    const head = await lastEntry(this.store)
    this.headSeq = head?.seq ?? 0
    this.headCid = head?.cid ?? null
    return head
  }

  /**
   * Rebuilds every index from the chain (a ledger written by an older version).
   * The version mark is written last, so an interrupted rebuild starts over.
   */
  protected async reindex (): Promise<void> {
    const replay = new IndexReplay(this.did)
    for await (const [, value] of this.store.iterate(spaces.ledgerEntries)) await replay.apply(decodeRecord(value))
    let ops: WriteOp[] = []
    const flush = async (): Promise<void> => {
      await this.store.batch(ops)
      ops = []
    }
    for (const space of INDEX_SPACES) {
      for await (const [key] of this.store.iterate(indexSpace[space])) {
        ops.push({ type: 'del', space: indexSpace[space], key })
        if (ops.length >= 10_000) await flush()
      }
    }
    await flush()
    for (const [space, values] of replay.spaces) {
      for (const [key, value] of values) {
        ops.push({ type: 'put', space: indexSpace[space], key, value: encodeIndexValue(space, value) })
        if (ops.length >= 10_000) await flush()
      }
    }
    ops.push({ type: 'put', space: spaces.ledgerMeta, key: VERSION_KEY, value: dagCbor.encode(INDEX_VERSION) })
    await flush()
    this.forgetCache()
  }

  /** Drops what a subclass keeps of the indexes in memory. */
  protected forgetCache (): void {}

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
      // started after the current task's synchronous code: appends made together (a burst of
      // callers, a loop) form the first group instead of one entry committing alone before them
      if (this.flushing === undefined) this.flushing = new Promise<void>((resolve) => { queueMicrotask(resolve) }).then(async () => { await this.drain() })
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

  protected async readIndex (space: IndexSpace, key: string): Promise<unknown> {
    return await readIndexFrom(this.store, space, key)
  }

  /**
   * One transaction for a group of appends. The extra writes are taken in hand
   * before it (they may be lazy, and the transaction may run more than once);
   * each unit (one appendAll) runs inside `atomically`, so a bad one fails
   * alone and leaves none of its writes.
   */
  protected async commit (group: Pending[]): Promise<void> {
    const slicer = new TimeSlicer()
    const ready: Array<{ unit: Pending, extras: WriteOp[][] }> = []
    for (const unit of group) {
      try {
        const extras: WriteOp[][] = []
        for (const item of unit.items) {
          const ops: WriteOp[] = []
          for (const op of item.extra ?? []) {
            ops.push(extraWrite(op))
            if (slicer.due) await slicer.pause()
          }
          extras.push(ops)
        }
        ready.push({ unit, extras })
      } catch (err) {
        unit.reject(err)
      }
    }
    if (ready.length === 0) return
    let outcome: { results: Array<LedgerEntry[] | { error: unknown }>, head: { seq: number, cid: CID } | null }
    try {
      outcome = await this.store.transaction(async (tx) => {
        await tx.lock(locks.ledgerHead)
        let head = await lastEntry(tx)
        await this.prefetchReads(tx, ready.flatMap(({ unit }) => unit.items))
        const results: Array<LedgerEntry[] | { error: unknown }> = []
        for (const { unit, extras } of ready) {
          try {
            const entries = await tx.atomically(async () => await this.appendUnit(tx, unit.items, extras, head))
            results.push(entries)
            const last = entries.at(-1) as LedgerEntry
            head = { seq: last.seq, cid: last.cid }
          } catch (err) {
            results.push({ error: err })
          }
        }
        return { results, head }
      })
    } catch (err) {
      const count = ready.reduce((n, { unit }) => n + unit.items.length, 0)
      const failure = err instanceof CairnError && err.code !== 'ERR_IO'
        ? err
        : new CairnError('ERR_IO', `could not commit ${count} ledger entries: ${(err as Error).message}`, { cause: err })
      for (const { unit } of ready) unit.reject(failure)
      return
    }
    if (outcome.head !== null && outcome.head.seq >= this.headSeq) {
      this.headSeq = outcome.head.seq
      this.headCid = outcome.head.cid
    }
    this.forgetCache()
    outcome.results.forEach((result, i) => {
      const { unit } = ready[i] as { unit: Pending }
      if (Array.isArray(result)) unit.resolve(result)
      else unit.reject(result.error)
    })
  }

  /** The index values the group's entries will read, fetched in a few statements rather than one round trip each. */
  private async prefetchReads (tx: StateTransaction, items: readonly AppendItem[]): Promise<void> {
    const wanted: Record<'deals' | 'providers' | 'balances', string[]> = { deals: [], providers: [], balances: [] }
    for (const item of items) {
      try {
        const reads = readsOf({ kind: item.kind, fields: item.fields } as LedgerEntry, this.did)
        if (reads.deal !== undefined) wanted.deals.push(reads.deal)
        if (reads.provider !== undefined) wanted.providers.push(reads.provider)
        if (reads.counterparty !== undefined) wanted.balances.push(reads.counterparty)
      } catch {
        // a malformed entry fails on its own when it is built
      }
    }
    await tx.prefetch(spaces.ledgerStats, [STATS_KEY])
    for (const [space, keys] of Object.entries(wanted) as Array<[IndexSpace, string[]]>) if (keys.length > 0) await tx.prefetch(indexSpace[space], keys)
  }

  private async appendUnit (tx: StateTransaction, items: readonly AppendItem[], extras: WriteOp[][], head: { seq: number, cid: CID } | null): Promise<LedgerEntry[]> {
    const entries: LedgerEntry[] = []
    let seq = head?.seq ?? 0
    let prev = head?.cid ?? null
    const read = async (space: IndexSpace, key: string): Promise<unknown> => await readIndexFrom(tx, space, key)
    for (const [i, item] of items.entries()) {
      await item.guard?.(indexView(read, tx))
      const entry = buildEntry(this.signer, seq + 1, prev, this.now(), item.kind, item.fields)
      const writes = deriveWrites(entry, await valuesFor(entry, this.did, read), this.did)
      tx.put(spaces.ledgerEntries, seqKey(entry.seq), entry.recordBytes)
      for (const w of writes) {
        if ('del' in w) tx.del(indexSpace[w.space], w.key)
        else tx.put(indexSpace[w.space], w.key, encodeIndexValue(w.space, w.value))
      }
      for (const op of extras[i] ?? []) {
        if (op.type === 'put') tx.put(op.space, op.key, op.value)
        else tx.del(op.space, op.key)
      }
      entries.push(entry)
      seq = entry.seq
      prev = entry.cid
    }
    return entries
  }

  async get (seq: number): Promise<LedgerEntry | undefined> {
    const bytes = await this.store.get(spaces.ledgerEntries, seqKey(seq))
    return bytes === undefined ? undefined : decodeRecord(bytes)
  }

  async * log (options: LogOptions = {}): AsyncIterable<LedgerEntry> {
    const limit = options.limit ?? Infinity
    if (limit <= 0) return
    let count = 0
    if (options.deal !== undefined) {
      const id = parseDealId(options.deal).toString()
      for await (const [key] of this.store.iterate(spaces.ledgerByDeal, { gt: `${id}/`, lt: `${id}/~`, reverse: true })) {
        const entry = await this.get(Number(key.slice(id.length + 1)))
        if (entry === undefined || (options.kind !== undefined && entry.kind !== options.kind)) continue
        yield entry
        if (++count >= limit) return
      }
      return
    }
    for await (const [, value] of this.store.iterate(spaces.ledgerEntries, { reverse: true })) {
      const entry = decodeRecord(value)
      if (options.kind !== undefined && entry.kind !== options.kind) continue
      yield entry
      if (++count >= limit) return
    }
  }

  /**
   * Verifies the chain up to the head as it stands when verify starts. On a
   * cluster other nodes append meanwhile, so an index found ahead of that head
   * is looked at again (a few times) before it is called broken.
   */
  async verify (options: VerifyOptions = {}): Promise<VerifyReport> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.refreshHead()
      try {
        return await this.verifyUpTo(options, head?.seq ?? 0)
      } catch (err) {
        const indexBroken = err instanceof CairnError && err.details?.index !== undefined
        if (!indexBroken || attempt >= 5 || (await lastEntry(this.store))?.seq === head?.seq) throw err
      }
    }
  }

  private async verifyUpTo (options: VerifyOptions, upTo: number): Promise<VerifyReport> {
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
    // links compared as digest bytes
    let prevDigest: Uint8Array | null = null
    for await (const [key, value] of this.store.iterate(spaces.ledgerEntries, { lte: seqKey(upTo) })) {
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
      for await (const [key, stored] of this.store.iterate(indexSpace[space])) {
        if (!derived.has(key)) throw fail(space, key, `holds ${text(safeDecode(space, stored))}, which no entry of the chain gives`)
        const value = derived.get(key)
        if (!equalBytes(encodeIndexValue(space, value), stored)) {
          throw fail(space, key, differ(space, safeDecode(space, stored), value))
        }
        derived.delete(key)
        compared++
      }
      const missing = derived.keys().next()
      if (missing.done !== true) throw fail(space, missing.value, `is missing; the chain gives ${text(storedIndexValue(space, derived.get(missing.value)))}`)
    }
    return compared
  }

  async * export (): AsyncIterable<string> {
    for await (const [, value] of this.store.iterate(spaces.ledgerEntries)) {
      yield exportLine(decodeRecord(value))
    }
  }

  async balance (): Promise<Balance[]> {
    const out: Balance[] = []
    for await (const [, value] of this.store.iterate(spaces.ledgerBalances)) out.push(dagCbor.decode(value) as Balance)
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
    return (await this.store.get(spaces.ledgerNonces, nonceKey(client, nonce))) !== undefined
  }

  async stats (): Promise<LedgerStats> {
    return statsFrom(await this.readIndex('stats', STATS_KEY))
  }

  async due (until: number, limit: number): Promise<Array<{ at: number, deal: string }>> {
    const out: Array<{ at: number, deal: string }> = []
    for await (const [key] of this.store.iterate(spaces.ledgerDue, { lt: secondsKey(until + 1), limit })) {
      const slash = key.indexOf('/')
      out.push({ at: Number(key.slice(0, slash)), deal: key.slice(slash + 1) })
    }
    return out
  }

  async dataSet (id: number): Promise<DataSetLedgerRecord | undefined> {
    const value = await this.readIndex('data-sets', dataSetKey(id))
    return value === undefined ? undefined : dataSetRecordFrom(value)
  }

  async dataSetsDue (until: number, limit: number): Promise<Array<{ at: number, dataSet: number }>> {
    const out: Array<{ at: number, dataSet: number }> = []
    for await (const [key] of this.store.iterate(spaces.ledgerDataSetDue, { lt: secondsKey(until + 1), limit })) {
      const slash = key.indexOf('/')
      out.push({ at: Number(key.slice(0, slash)), dataSet: Number(key.slice(slash + 1)) })
    }
    return out
  }

  async holders (pieceCid: string): Promise<string[]> {
    const out: string[] = []
    for await (const [key] of this.store.iterate(spaces.ledgerHolders, { gt: `${pieceCid}/`, lt: `${pieceCid}/~` })) out.push(key.slice(pieceCid.length + 1))
    return out
  }

  async * witnessed (did?: string): AsyncIterable<WitnessedHead> {
    const range = did === undefined ? {} : { gt: `${did}/`, lt: `${did}/~` }
    for await (const [key, value] of this.store.iterate(spaces.ledgerWitnessed, range)) {
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
