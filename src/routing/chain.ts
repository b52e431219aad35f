/**
 * A provider's own advertisement chain, kept in its repo's LevelDB (sublevel
 * `routing/announce`) so that announcing survives a restart: every
 * advertisement by sequence number, its entry chunks, which deals are
 * advertised, and how far each indexer has acknowledged.
 *
 *   head             {seq, cid} of the newest advertisement
 *   genesis          seq of the newest chain start (previous = null)
 *   ad/<seq>         advertisement block (seq zero-padded to 12 digits)
 *   seq/<cid>        seq of an advertisement, to resume from an indexer's head
 *   chunk/<cid>      entry chunk block
 *   deal/<id>        a deal whose entries are advertised, and the entry chains
 *                    that hold them (withdrawn: absent)
 *   acked/<url>      seq of the last advertisement that indexer took
 *
 * An advertisement, its chunks and the deal record it changes are written in
 * one batch, so the chain on disk never links a block it does not hold.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { encodeFramePrefix, encodeHeader } from '../car/index.js'
import type { Database } from '../repo/repo.js'
import { cborBlockOf, decodeAdvertisement, decodeEntryChunk, type Block, type SignedAdvertisement } from './advertisement.js'

export interface ChainHead {
  seq: number
  cid: CID
}

/** One advertisement to append, with the entry chunks it links. */
export interface NewAdvertisement {
  block: Block
  chunks: Block[]
  /** it starts a chain (previous = null) */
  genesis: boolean
}

export interface AdvertisedDeal {
  id: string
  /** the advertisement that added its last entries */
  seq: number
  /** first entry chunk of each advertisement holding its multihashes */
  entries: CID[]
}

const seqKey = (seq: number): string => `ad/${String(seq).padStart(12, '0')}`

export class AdChain {
  private readonly sub
  private cachedHead: ChainHead | null | undefined

  constructor (db: Database) {
    this.sub = db.sublevel<string, Uint8Array>(['routing', 'announce'], { valueEncoding: 'view' })
  }

  async head (): Promise<ChainHead | undefined> {
    if (this.cachedHead === undefined) {
      const bytes = await this.sub.get('head')
      const value = bytes === undefined ? null : dagCbor.decode(bytes) as ChainHead
      this.cachedHead = value
    }
    return this.cachedHead ?? undefined
  }

  /** Seq of the newest chain start; 1 for a chain never restarted, 0 for no chain. */
  async genesis (): Promise<number> {
    const bytes = await this.sub.get('genesis')
    return bytes === undefined ? ((await this.head()) === undefined ? 0 : 1) : dagCbor.decode(bytes) as number
  }

  /**
   * Appends advertisements (each already linking the one before) and records
   * the deal they advertise (with the entry chains holding its multihashes)
   * or withdraw (`entries` undefined).
   */
  async append (ads: NewAdvertisement[], deal?: { id: string, entries?: CID[] }): Promise<ChainHead> {
    let seq = (await this.head())?.seq ?? 0
    const batch = this.sub.batch()
    let head: ChainHead | undefined
    for (const ad of ads) {
      seq++
      batch.put(seqKey(seq), ad.block.bytes)
      batch.put(`seq/${ad.block.cid.toString()}`, dagCbor.encode(seq))
      for (const chunk of ad.chunks) batch.put(`chunk/${chunk.cid.toString()}`, chunk.bytes)
      if (ad.genesis) batch.put('genesis', dagCbor.encode(seq))
      head = { seq, cid: ad.block.cid }
    }
    if (head === undefined) throw new RangeError('append needs at least one advertisement')
    if (deal !== undefined) {
      if (deal.entries !== undefined) batch.put(`deal/${deal.id}`, dagCbor.encode({ seq: head.seq, entries: deal.entries }))
      else batch.del(`deal/${deal.id}`)
    }
    batch.put('head', dagCbor.encode(head))
    await batch.write()
    this.cachedHead = head
    return head
  }

  async advertisement (seq: number): Promise<{ block: Block, ad: SignedAdvertisement } | undefined> {
    const bytes = await this.sub.get(seqKey(seq))
    if (bytes === undefined) return undefined
    const block = cborBlockOf(bytes)
    return { block, ad: decodeAdvertisement(block) }
  }

  async seqOf (cid: CID | string): Promise<number | undefined> {
    const bytes = await this.sub.get(`seq/${cid.toString()}`)
    return bytes === undefined ? undefined : dagCbor.decode(bytes) as number
  }

  /** The advertisement at `seq` and its entry chunks as the CARv1 an indexer takes (docs/routing.md, "Ingest"). */
  async car (seq: number): Promise<{ cid: CID, bytes: Uint8Array }> {
    const found = await this.advertisement(seq)
    if (found === undefined) throw new RangeError(`no advertisement ${seq} in the chain`)
    const parts: Uint8Array[] = [encodeHeader([found.block.cid]), encodeFramePrefix(found.block.cid, found.block.bytes.length), found.block.bytes]
    for (let next = found.ad.entries; next !== null;) {
      const bytes = await this.sub.get(`chunk/${next.toString()}`)
      if (bytes === undefined) throw new RangeError(`entry chunk ${next.toString()} of advertisement ${seq} is missing`)
      parts.push(encodeFramePrefix(next, bytes.length), bytes)
      next = decodeEntryChunk({ cid: next, bytes }).next
    }
    return { cid: found.block.cid, bytes: Buffer.concat(parts) }
  }

  async isAdvertised (dealId: string): Promise<boolean> {
    return (await this.sub.get(`deal/${dealId}`)) !== undefined
  }

  /** Deals whose entries are advertised now, with the entry chains that hold them. */
  async * advertised (): AsyncGenerator<AdvertisedDeal> {
    for await (const [key, value] of this.sub.iterator({ gte: 'deal/', lt: 'deal0' })) {
      const { seq, entries } = dagCbor.decode(value) as { seq: number, entries: CID[] }
      yield { id: key.slice('deal/'.length), seq, entries }
    }
  }

  async acked (indexer: string): Promise<number> {
    const bytes = await this.sub.get(`acked/${indexer}`)
    return bytes === undefined ? 0 : dagCbor.decode(bytes) as number
  }

  async setAcked (indexer: string, seq: number): Promise<void> {
    await this.sub.put(`acked/${indexer}`, dagCbor.encode(seq))
  }
}
