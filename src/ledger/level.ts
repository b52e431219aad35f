/**
 * The ledger on the repo's LevelDB: the state-store ledger (src/ledger/state.ts)
 * over a LevelStore on the repo's database, with the commit it has always had.
 * Entries and indexes live in the sublevels `ledger/<space>`; each group of
 * appends commits with every index it changes and the caller's extra writes
 * in one `batch(…, {sync: true})`: LevelDB applies a batch whole or not at
 * all, so a crash leaves the ledger at an entry boundary.
 *
 * One process holds a LevelDB, so the head and the provider's totals (read by
 * every entry and every ask) are kept in memory, and extra writes may be any
 * batch operation of the repo's database (a key of its root, or of a sublevel
 * it names), as they always could.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { AbstractBatchOperation } from 'abstract-level'
import { CairnError } from '../errors.js'
import { TimeSlicer } from '../slice.js'
import type { Signer } from '../protocol/signing.js'
import type { Database } from '../repo/repo.js'
import { LevelStore } from '../state/level.js'
import { buildEntry, seqKey } from './entry.js'
import { deriveWrites, STATS_KEY, type IndexSpace, type IndexWrite } from './indexes.js'
import type { ExtraOp, LedgerEntry } from './interface.js'
import type { Space } from '../state/spaces.js'
import { encodeIndexValue, indexView, StateLedger, valuesFor, type LedgerOptions, type Pending } from './state.js'

export { encodeIndexValue, exportLine } from './state.js'

function sublevel (db: Database, name: string) {
  return db.sublevel<string, Uint8Array>(['ledger', name], { valueEncoding: 'view' })
}
type Sub = ReturnType<typeof sublevel>
type BatchOp = AbstractBatchOperation<Database, string, Uint8Array>

export type LevelLedgerOptions = LedgerOptions

export class LevelLedger extends StateLedger {
  private readonly entries: Sub
  private readonly indexes = new Map<IndexSpace, Sub>()
  /** the stats index as last committed: read by every entry and by every ask, so kept in memory */
  private statsValue: unknown

  private constructor (readonly db: Database, signer: Signer, options: LevelLedgerOptions) {
    super(new LevelStore(db), signer, options)
    this.entries = sublevel(db, 'entries')
  }

  /** Opens the ledger on an open repo database; `signer` is the node's identity. */
  static async open (db: Database, signer: Signer, options: LevelLedgerOptions = {}): Promise<LevelLedger> {
    const ledger = new LevelLedger(db, signer, options)
    await ledger.load()
    return ledger
  }

  private index (space: IndexSpace): Sub {
    let sub = this.indexes.get(space)
    if (sub === undefined) {
      sub = sublevel(this.db, space)
      this.indexes.set(space, sub)
    }
    return sub
  }

  /** A write to a state space as a batch operation of the repo's database (src/state/spaces.ts says where each space lives). */
  private batchOp (space: Space, op: ExtraOp): BatchOp {
    const where = 'sublevel' in space.level
      ? { sublevel: this.db.sublevel<string, Uint8Array>([...space.level.sublevel], { valueEncoding: 'view' }), key: op.key }
      : { key: space.level.prefix + op.key }
    return op.type === 'put' ? { type: 'put', ...where, value: op.value } : { type: 'del', ...where }
  }

  protected override forgetCache (): void {
    this.statsValue = undefined
  }

  protected override async readIndex (space: IndexSpace, key: string): Promise<unknown> {
    if (space === 'stats' && key === STATS_KEY) {
      if (this.statsValue === undefined) {
        const stored = await this.index('stats').get(STATS_KEY)
        this.statsValue = stored === undefined ? null : dagCbor.decode(stored)
      }
      return this.statsValue ?? undefined
    }
    const bytes = await this.index(space).get(key)
    return bytes === undefined ? undefined : dagCbor.decode(bytes)
  }

  protected override async commit (group: Pending[]): Promise<void> {
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
          await item.guard?.(indexView(read, this.store))
          const entry = buildEntry(this.signer, unitSeq + 1, unitPrev, this.now(), item.kind, item.fields)
          const writes: IndexWrite[] = deriveWrites(entry, await valuesFor(entry, this.did, read), this.did)
          unitOps.push({ type: 'put', sublevel: this.entries, key: seqKey(entry.seq), value: entry.recordBytes })
          for (const w of writes) {
            const k = `${w.space}\0${w.key}`
            if ('del' in w) {
              staged.set(k, undefined)
              unitOps.push({ type: 'del', sublevel: this.index(w.space), key: w.key })
            } else {
              staged.set(k, w.value)
              unitOps.push({ type: 'put', sublevel: this.index(w.space), key: w.key, value: encodeIndexValue(w.space, w.value) })
            }
          }
          // the extra writes may be many (an upload's block index) and produced lazily: taken in
          // time slices, and only once all of them are in hand do they join the batch
          for (const op of item.extra ?? []) {
            unitOps.push(op.space === undefined ? op as BatchOp : this.batchOp(op.space, op))
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
}
