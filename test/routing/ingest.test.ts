/**
 * The indexer's ingest (docs/routing.md, "Ingest"): each advertisement CAR is
 * verified block by block, its signature against its provider's key, and its
 * place in the provider's chain; replays are no-ops, gaps are refused naming
 * the indexer's head, a chain start resets the provider.
 */
import test from 'ava'
import * as dagCbor from '@ipld/dag-cbor'
import { cborBlock, signAdvertisement } from '../../src/routing/advertisement.js'
import { Ingester } from '../../src/routing/ingest.js'
import type { IndexStore } from '../../src/routing/interface.js'
import { LevelIndexStore } from '../../src/routing/level-index.js'
import { peerIdFromPublicKey } from '../../src/routing/peer-id.js'
import { advertisement, carOf, chunked, dealIdBytes, GATEWAY, newIdentity, randomCids, tempDb } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

async function world (): Promise<{ ingester: Ingester, store: IndexStore, cleanup: () => Promise<void> }> {
  const { db, cleanup } = await tempDb()
  const store = await LevelIndexStore.open(db)
  return { ingester: new Ingester(store), store, cleanup: async () => { await store.close(); await cleanup() } }
}

async function count (store: IndexStore, multihash: Uint8Array): Promise<number> {
  let n = 0
  for await (const _ of store.find(multihash, 100)) n++
  return n
}

const mhs = (n: number): Uint8Array[] => randomCids(n).map(c => c.multihash.bytes)

test('a chain of advertisements: added, replayed (a no-op), followed, withdrawn', async (t) => {
  const { ingester, store, cleanup } = await world()
  try {
    const signer = newIdentity()
    const provider = peerIdFromPublicKey(signer.publicKey)
    const context = dealIdBytes()
    const m = mhs(40)
    const first = advertisement(signer, null, { context, add: m })
    t.like(await ingester.ingest(chunked(first.car)), { provider, applied: true, multihashes: 40 })
    t.is(await count(store, m[7] as Uint8Array), 1)
    const replay = await ingester.ingest(chunked(first.car))
    t.like(replay, { applied: false, multihashes: 0 })
    t.is(replay.head.toString(), first.cid.toString())
    const moved = advertisement(signer, first.cid, { addresses: ['/dns/provider.example/tcp/443/tls/http'] })
    t.like(await ingester.ingest(chunked(moved.car)), { applied: true, multihashes: 0 })
    t.deepEqual((await store.provider(provider))?.addresses, ['/dns/provider.example/tcp/443/tls/http'])
    const withdrawal = advertisement(signer, moved.cid, { context, remove: true })
    t.like(await ingester.ingest(chunked(withdrawal.car)), { applied: true, removed: true })
    t.is(await count(store, m[7] as Uint8Array), 0)
    t.is((await store.provider(provider))?.head.toString(), withdrawal.cid.toString())
  } finally {
    await cleanup()
  }
})

test('an advertisement that does not follow the indexer\'s head is refused with ERR_AD_CHAIN_GAP naming that head', async (t) => {
  const { ingester, cleanup } = await world()
  try {
    const signer = newIdentity()
    const first = advertisement(signer, null, { context: dealIdBytes(), add: mhs(2) })
    const second = advertisement(signer, first.cid, { context: dealIdBytes(), add: mhs(2) })
    // the indexer has never seen this provider: it names no head
    const unknown = await rejectsCode(t, ingester.ingest(chunked(second.car)), 'ERR_AD_CHAIN_GAP')
    t.is((unknown as unknown as { details: { head: unknown } }).details.head, null)
    await ingester.ingest(chunked(first.car))
    await ingester.ingest(chunked(second.car))
    // a fork from the first advertisement: the head is the second
    const fork = advertisement(signer, first.cid, { context: dealIdBytes(), add: mhs(2) })
    const gap = await rejectsCode(t, ingester.ingest(chunked(fork.car)), 'ERR_AD_CHAIN_GAP')
    t.is((gap as unknown as { details: { head: unknown } }).details.head, second.cid.toString())
  } finally {
    await cleanup()
  }
})

test('a new chain start (previous null) drops what the provider had indexed; its old advertisements stay no-ops', async (t) => {
  const { ingester, store, cleanup } = await world()
  try {
    const signer = newIdentity()
    const old = mhs(5)
    const first = advertisement(signer, null, { context: dealIdBytes(), add: old })
    await ingester.ingest(chunked(first.car))
    const fresh = mhs(5)
    const restart = advertisement(signer, null, { context: dealIdBytes(), add: fresh })
    t.like(await ingester.ingest(chunked(restart.car)), { applied: true })
    t.is(await count(store, old[0] as Uint8Array), 0)
    t.is(await count(store, fresh[0] as Uint8Array), 1)
    // replaying the old chain start cannot bring back what it held
    t.like(await ingester.ingest(chunked(first.car)), { applied: false })
    t.is(await count(store, old[0] as Uint8Array), 0)
  } finally {
    await cleanup()
  }
})

test('two advertisements racing to follow the same head: one is applied, the other refused', async (t) => {
  const { ingester, cleanup } = await world()
  try {
    const signer = newIdentity()
    const first = advertisement(signer, null, { context: dealIdBytes(), add: mhs(1) })
    await ingester.ingest(chunked(first.car))
    const a = advertisement(signer, first.cid, { context: dealIdBytes(), add: mhs(300) })
    const b = advertisement(signer, first.cid, { context: dealIdBytes(), add: mhs(300) })
    const results = await Promise.allSettled([ingester.ingest(chunked(a.car)), ingester.ingest(chunked(b.car))])
    t.is(results.filter(r => r.status === 'fulfilled').length, 1)
    const refused = results.find(r => r.status === 'rejected') as PromiseRejectedResult
    t.is((refused.reason as { code: string }).code, 'ERR_AD_CHAIN_GAP')
  } finally {
    await cleanup()
  }
})

test('CARs that do not hold exactly a verified advertisement and its chunks are refused, each with its code', async (t) => {
  const { ingester, store, cleanup } = await world()
  try {
    const signer = newIdentity()
    const made = advertisement(signer, null, { context: dealIdBytes(), add: mhs(3) })
    const chunk = made.chunks[0] as { cid: typeof made.cid, bytes: Uint8Array }
    const extra = cborBlock({ something: 'else' })
    const corrupt = Uint8Array.from(chunk.bytes)
    corrupt[corrupt.length - 1] ^= 1
    // a valid signature over an advertisement naming another key
    const other = signAdvertisement(newIdentity(), { previous: null, addresses: [], contextId: new Uint8Array(0), metadata: GATEWAY, entries: null, isRm: false, at: 1 })
    const lying = dagCbor.decode(other.block.bytes) as Record<string, unknown>
    lying.provider = peerIdFromPublicKey(signer.publicKey)
    const forged = cborBlock(lying)
    const cases: Array<[string, Uint8Array, string]> = [
      ['an entry chunk left out', carOf(made.cid, [made.ad]), 'ERR_CAR_BLOCK_MISSING'],
      ['a block that is not an entry chunk', carOf(made.cid, [made.ad, chunk, extra]), 'ERR_INVALID_ADVERTISEMENT'],
      ['a chunk whose bytes do not hash to its CID', carOf(made.cid, [made.ad, { cid: chunk.cid, bytes: corrupt }]), 'ERR_BLOCK_MISMATCH'],
      ['the root block missing', carOf(made.cid, [chunk]), 'ERR_CAR_ROOT_MISSING'],
      ['a forged provider', carOf(forged.cid, [forged]), 'ERR_BAD_SIGNATURE'],
      ['a root that is not an advertisement', carOf(extra.cid, [extra]), 'ERR_INVALID_ADVERTISEMENT'],
      ['a chunk named twice', carOf(made.cid, [made.ad, chunk, chunk]), 'ERR_CAR_DUPLICATE_BLOCK'],
      ['not a CAR (a header that is not a map)', Uint8Array.of(0x01, 0x01), 'ERR_CAR_HEADER'],
      ['a truncated CAR', made.car.subarray(0, made.car.length - 10), 'ERR_CAR_TRUNCATED']
    ]
    for (const [name, car, code] of cases) await t.throwsAsync(ingester.ingest(chunked(car)), { code }, name)
    t.deepEqual(await store.stats(), { providers: 0, multihashes: 0 }, 'nothing was indexed')
  } finally {
    await cleanup()
  }
})
