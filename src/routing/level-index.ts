/**
 * The indexer's index on LevelDB (the repo's database, sublevels under
 * `indexer/`). Keys are binary and short, so a million multihashes stay a few
 * tens of MB: providers and contexts get small numbers, each entry is one key,
 * and each advertisement's multihashes are also kept as one value, for
 * withdrawing them:
 *
 *   mh   multihash ‖ u32 provider ‖ u32 context → metadata          (lookups: one range scan)
 *   ctx  u32 provider ‖ u32 context ‖ u32 part → multihash ‖ …     (withdrawals: one range scan)
 *
 * A multihash is self-delimiting (its varint code and length say where it
 * ends), so the range `multihash ‖ 0…` to `multihash ‖ f…` holds exactly its
 * entries, and a `ctx` value splits back into its multihashes. An
 * advertisement is applied in one batch: one write per multihash (each write
 * costs LevelDB's batch bookkeeping, which dominates ingest). A chain restart
 * gives the provider a new number instead of deleting its entries in that
 * batch: the old number is retired at once (lookups skip it) and its keys are
 * swept in the background, so a restart costs the same whatever the provider
 * had indexed.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'
import type { Database } from '../repo/repo.js'
import type { IndexChange, IndexedProvider, IndexHit, IndexStore } from './interface.js'
import { IndexWork } from './index-work.js'

interface ProviderRecord {
  n: number
  peerId: string
  addresses: string[]
  head: CID
  updatedAt: number
  /** live (multihash, context) entries under `n` */
  entries: number
}

const EMPTY = new Uint8Array(0)
/** `ctx` parts (each an advertisement's multihashes, up to 262,144) deleted per batch by the sweep */
const SWEEP_PARTS = 4

function u32 (n: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function readU32 (bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at)
}

/** The multihashes of a `ctx` value, each self-delimited by its varint code and length. */
function splitMultihashes (bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at < bytes.length;) {
    const [, codeLength] = varint.decode(bytes, at)
    const [size, sizeLength] = varint.decode(bytes, at + codeLength)
    const end = at + codeLength + sizeLength + size
    out.push(bytes.subarray(at, end))
    at = end
  }
  return out
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')

export class LevelIndexStore implements IndexStore {
  private readonly providers
  private readonly numbers
  private readonly contexts
  private readonly ads
  private readonly meta
  private readonly mh
  private readonly ctx
  /** provider number → record, for lookups (a few thousand providers at most) */
  private readonly byNumber = new Map<number, IndexedProvider | null>()
  /** applies run one at a time: numbers and counts are read, then written in one batch */
  private readonly work = new IndexWork()

  constructor (private readonly db: Database) {
    const sub = (name: string) => db.sublevel<string, Uint8Array>(['indexer', name], { valueEncoding: 'view' })
    const bin = (name: string) => db.sublevel<Uint8Array, Uint8Array>(['indexer', name], { keyEncoding: 'view', valueEncoding: 'view' })
    this.providers = sub('providers')
    this.numbers = sub('numbers')
    this.contexts = sub('contexts')
    this.ads = sub('ads')
    this.meta = sub('meta')
    this.mh = bin('mh')
    this.ctx = bin('ctx')
  }

  /** Opens the index and resumes sweeping the keys of any retired provider numbers. */
  static async open (db: Database): Promise<LevelIndexStore> {
    const store = new LevelIndexStore(db)
    store.sweep()
    return store
  }

  private async record (peerId: string): Promise<ProviderRecord | undefined> {
    const bytes = await this.providers.get(peerId)
    return bytes === undefined ? undefined : dagCbor.decode(bytes) as ProviderRecord
  }

  async provider (peerId: string): Promise<IndexedProvider | undefined> {
    const r = await this.record(peerId)
    return r === undefined ? undefined : publicView(r)
  }

  async hasAdvertisement (peerId: string, ad: CID): Promise<boolean> {
    return (await this.ads.get(`${peerId}/${ad.toString()}`)) !== undefined
  }

  private async counter (name: string): Promise<number> {
    const bytes = await this.meta.get(name)
    return bytes === undefined ? 0 : readU32(bytes, 0)
  }

  async apply (change: IndexChange): Promise<void> {
    await this.work.serial(async () => { await this.applyNow(change) })
  }

  private async applyNow (change: IndexChange): Promise<void> {
    const batch = this.db.batch()
    const existing = await this.record(change.peerId)
    let n = existing?.n
    let entries = existing?.entries ?? 0
    let nextNumber: number | undefined
    if (n === undefined || change.reset) {
      if (n !== undefined) batch.put(`retired/${n}`, EMPTY, { sublevel: this.meta })
      n = (await this.counter('providers')) + 1
      nextNumber = n
      entries = 0
      batch.put('providers', u32(n), { sublevel: this.meta })
      batch.put(String(n), new TextEncoder().encode(change.peerId), { sublevel: this.numbers })
    }
    const context = change.context
    if (context !== undefined) {
      const key = `${n}/${hex(context.id)}`
      const known = await this.contexts.get(key)
      let c: number
      if (known !== undefined) {
        c = readU32(known, 0)
      } else {
        c = (await this.counter('contexts')) + 1
        batch.put('contexts', u32(c), { sublevel: this.meta })
        batch.put(key, u32(c), { sublevel: this.contexts })
      }
      const prefix = concat(u32(n), u32(c))
      // what the context holds already, part by part
      const parts: Array<{ key: Uint8Array, multihashes: Uint8Array[] }> = []
      if (known !== undefined) {
        for await (const [key, value] of this.ctx.iterator({ gte: prefix, lt: concat(u32(n), u32(c + 1)) })) parts.push({ key, multihashes: splitMultihashes(value) })
      }
      if (context.remove) {
        for (const part of parts) {
          batch.del(part.key, { sublevel: this.ctx })
          for (const m of part.multihashes) batch.del(concat(m, prefix), { sublevel: this.mh })
          entries -= part.multihashes.length
        }
        if (known !== undefined) batch.del(key, { sublevel: this.contexts })
      } else {
        const seen = new Set<string>()
        for (const part of parts) for (const m of part.multihashes) seen.add(hex(m))
        const added: Uint8Array[] = []
        for (const m of context.multihashes) {
          // a multihash already held under this context only has its metadata written again
          batch.put(concat(m, prefix), context.metadata, { sublevel: this.mh })
          const id = hex(m)
          if (seen.has(id)) continue
          seen.add(id)
          added.push(m)
        }
        if (added.length > 0) {
          const part = parts.length === 0 ? 0 : readU32(parts[parts.length - 1]?.key as Uint8Array, 8) + 1
          batch.put(concat(prefix, u32(part)), concat(...added), { sublevel: this.ctx })
          entries += added.length
        }
      }
    }
    const record: ProviderRecord = { n, peerId: change.peerId, addresses: change.addresses, head: change.ad, updatedAt: change.at, entries }
    batch.put(change.peerId, dagCbor.encode(record), { sublevel: this.providers })
    batch.put(`${change.peerId}/${change.ad.toString()}`, EMPTY, { sublevel: this.ads })
    await batch.write()
    if (existing !== undefined) this.byNumber.delete(existing.n)
    this.byNumber.delete(n)
    if (nextNumber !== undefined && existing !== undefined) this.sweep()
  }

  private async byNum (n: number): Promise<IndexedProvider | null> {
    const cached = this.byNumber.get(n)
    if (cached !== undefined) return cached
    const peer = await this.numbers.get(String(n))
    let found: IndexedProvider | null = null
    if (peer !== undefined) {
      const r = await this.record(new TextDecoder().decode(peer))
      // a retired number still names the peer, whose record now carries another
      if (r !== undefined && r.n === n) found = publicView(r)
    }
    if (this.byNumber.size > 100_000) this.byNumber.clear()
    this.byNumber.set(n, found)
    return found
  }

  async * find (multihash: Uint8Array, limit: number): AsyncIterable<IndexHit> {
    let hits = 0
    let scanned = 0
    // entries of retired numbers may still be waiting for the sweep; they are skipped, within a bound
    const maxScan = limit + 10_000
    for await (const [key, metadata] of this.mh.iterator({ gte: concat(multihash, u32(0), u32(0)), lte: concat(multihash, u32(0xffffffff), u32(0xffffffff)) })) {
      if (key.length !== multihash.length + 8 || ++scanned > maxScan) break
      const provider = await this.byNum(readU32(key, multihash.length))
      if (provider === null) continue
      yield { provider, metadata: new Uint8Array(metadata) }
      if (++hits >= limit) return
    }
  }

  async stats (): Promise<{ providers: number, multihashes: number }> {
    let providers = 0
    let multihashes = 0
    for await (const bytes of this.providers.values()) {
      providers++
      multihashes += (dagCbor.decode(bytes) as ProviderRecord).entries
    }
    return { providers, multihashes }
  }

  /** Deletes the keys of retired provider numbers, a slice at a time, until none is left. */
  private sweep (): void {
    this.work.sweep(async () => {
      // numbers retired while a sweep runs are found by the next pass
      for (;;) {
        const retired: string[] = []
        for await (const key of this.meta.keys({ gte: 'retired/', lt: 'retired0' })) retired.push(key)
        if (retired.length === 0) return
        for (const key of retired) {
          if (this.work.closed) return
          await this.sweepNumber(key)
        }
      }
    })
  }

  private async sweepNumber (key: string): Promise<void> {
    const n = Number(key.slice('retired/'.length))
    for (;;) {
      if (this.work.closed) return
      const batch = this.db.batch()
      let count = 0
      for await (const [k, value] of this.ctx.iterator({ gte: u32(n), lt: u32(n + 1), limit: SWEEP_PARTS })) {
        batch.del(k, { sublevel: this.ctx })
        for (const m of splitMultihashes(value)) batch.del(concat(m, k.subarray(0, 8)), { sublevel: this.mh })
        count++
      }
      if (count === 0) {
        batch.del(key, { sublevel: this.meta })
        batch.del(String(n), { sublevel: this.numbers })
        for await (const c of this.contexts.keys({ gte: `${n}/`, lt: `${n}0` })) batch.del(c, { sublevel: this.contexts })
        await batch.write()
        return
      }
      await batch.write()
    }
  }

  /** Resolves when no sweep is running (tests, bench). */
  async swept (): Promise<void> {
    await this.work.swept()
  }

  async close (): Promise<void> {
    await this.work.close()
  }
}

function publicView (r: ProviderRecord): IndexedProvider {
  return { peerId: r.peerId, addresses: r.addresses, head: r.head, updatedAt: r.updatedAt }
}
