/**
 * The indexer's side of an announcement (docs/routing.md, "Ingest"): one
 * advertisement and its entry chunks arrive as a CARv1 rooted at the
 * advertisement. Every block is checked against its CID as it is read, the
 * advertisement's signature against its provider's key, and its place in the
 * provider's chain: it must follow the advertisement the indexer applied
 * last for that provider (IPNI processes a chain from the last one it saw),
 * or restart the chain (`previous` null). A replayed advertisement is a
 * no-op; one that does not follow is refused with ERR_AD_CHAIN_GAP naming the
 * indexer's head, so the provider can resume from there.
 */
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { cidKey, readCar } from '../car/index.js'
import { decodeAdvertisement, decodeEntryChunk, MAX_CHUNKS_PER_AD, type Block } from './advertisement.js'
import type { IndexStore } from './interface.js'

/** Largest entry chunk block taken (ENTRIES_PER_CHUNK sha2-256 multihashes are ~600 KB). */
const MAX_INGEST_BLOCK = 4 * 1024 * 1024

export interface IngestResult {
  provider: string
  /** the provider's head at the indexer after this advertisement */
  head: CID
  /** false when the advertisement had been applied before (a replay) */
  applied: boolean
  /** multihashes the advertisement added */
  multihashes: number
  /** true when it withdrew a context */
  removed: boolean
}

export class Ingester {
  /** the chain check and the apply of one advertisement run alone, so two cannot both follow the same head */
  private tail: Promise<unknown> = Promise.resolve()

  constructor (private readonly store: IndexStore, private readonly now: () => number = Date.now) {}

  async ingest (body: AsyncIterable<Uint8Array>): Promise<IngestResult> {
    const blocks = new Map<string, Block>()
    let root: CID | undefined
    for await (const block of readCar(body, { unique: true, maxBlockSize: MAX_INGEST_BLOCK, onHeader: (h) => { root = h.roots[0] } })) {
      blocks.set(cidKey(block.cid), { cid: block.cid, bytes: block.bytes })
    }
    const adBlock = root === undefined ? undefined : blocks.get(cidKey(root))
    if (root === undefined || adBlock === undefined) throw new CairnError('ERR_CAR_ROOT_MISSING', `the CAR lacks its root block, the advertisement ${String(root)}`)
    const ad = decodeAdvertisement(adBlock)
    blocks.delete(cidKey(root))
    const multihashes: Uint8Array[] = []
    let chunks = 0
    for (let next = ad.entries; next !== null;) {
      const block = blocks.get(cidKey(next))
      if (block === undefined) throw new CairnError('ERR_CAR_BLOCK_MISSING', `advertisement ${root.toString()}: entry chunk ${next.toString()} is not in the CAR`)
      if (++chunks > MAX_CHUNKS_PER_AD) throw new CairnError('ERR_INVALID_ADVERTISEMENT', `advertisement ${root.toString()} has more than ${MAX_CHUNKS_PER_AD} entry chunks`)
      blocks.delete(cidKey(next))
      const chunk = decodeEntryChunk(block)
      for (const m of chunk.entries) multihashes.push(m)
      next = chunk.next
    }
    if (blocks.size > 0) throw new CairnError('ERR_INVALID_ADVERTISEMENT', `advertisement ${root.toString()}: the CAR holds ${blocks.size} block(s) that are not its entry chunks`)
    const adCid = root

    const run = this.tail.then(async (): Promise<IngestResult> => {
      const known = await this.store.provider(ad.provider)
      if (known !== undefined && await this.store.hasAdvertisement(ad.provider, adCid)) {
        return { provider: ad.provider, head: known.head, applied: false, multihashes: 0, removed: false }
      }
      if (ad.previous !== null && (known === undefined || !known.head.equals(ad.previous))) {
        const head = known?.head.toString() ?? null
        throw new CairnError('ERR_AD_CHAIN_GAP', `advertisement ${adCid.toString()} follows ${ad.previous.toString()}, but this indexer's last advertisement from ${ad.provider} is ${head ?? 'none'}`, { details: { provider: ad.provider, head } })
      }
      const hasContext = ad.contextId.length > 0 && (ad.isRm || ad.entries !== null)
      await this.store.apply({
        peerId: ad.provider,
        addresses: ad.addresses,
        ad: adCid,
        at: this.now(),
        reset: ad.previous === null,
        context: hasContext ? { id: ad.contextId, metadata: ad.metadata, remove: ad.isRm, multihashes } : undefined
      })
      return { provider: ad.provider, head: adCid, applied: true, multihashes: multihashes.length, removed: ad.isRm }
    })
    this.tail = run.catch(() => {})
    return await run
  }
}
