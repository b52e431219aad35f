/**
 * The conformance suite every IndexStore backend runs (as abstract-level's
 * `suite({ test, factory })`): the LevelDB index (level-index.test.ts) and the
 * PostgreSQL one (pg-index.test.ts).
 */
import type { ExecutionContext, TestFn } from 'ava'
import type { CID } from 'multiformats/cid'
import type { IndexChange, IndexHit, IndexStore } from '../../src/routing/interface.js'
import { dealIdBytes, GATEWAY, randomCids } from './helpers.js'

export interface StoreUnderTest {
  store: IndexStore
  /** closes the store and opens it again on the same data */
  reopen: () => Promise<IndexStore>
  cleanup: () => Promise<void>
}

async function all (it: AsyncIterable<IndexHit>): Promise<IndexHit[]> {
  const out: IndexHit[] = []
  for await (const hit of it) out.push(hit)
  return out
}

const mhs = (n: number): Uint8Array[] => randomCids(n).map(c => c.multihash.bytes)
const adCid = (): CID => randomCids(1)[0] as CID
const ADDR = ['/ip4/127.0.0.1/tcp/7470/http']

function add (peerId: string, context: Uint8Array, multihashes: Uint8Array[], reset = false): IndexChange {
  return { peerId, addresses: ADDR, ad: adCid(), at: Date.now(), reset, context: { id: context, metadata: GATEWAY, remove: false, multihashes } }
}

function remove (peerId: string, context: Uint8Array): IndexChange {
  return { peerId, addresses: ADDR, ad: adCid(), at: Date.now(), reset: false, context: { id: context, metadata: GATEWAY, remove: true, multihashes: [] } }
}

const P1 = '12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt'
const P2 = '12D3KooWQ1cixoKAf8h4DQhwnm8tgwnZvXs8r8oGkaAmkNAidJmZ'

export function indexStoreSuite (test: TestFn, name: string, factory: () => Promise<StoreUnderTest>): void {
  const run = (title: string, fn: (s: StoreUnderTest, t: ExecutionContext) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => {
      const s = await factory()
      try {
        await fn(s, t)
      } finally {
        await s.cleanup()
      }
    })
  }

  run('an added context is found by each multihash, with the provider\'s record and metadata', async ({ store }, t) => {
    const context = dealIdBytes()
    const m = mhs(50)
    const change = add(P1, context, m)
    await store.apply(change)
    for (const h of [m[0], m[49]] as Uint8Array[]) {
      const hits = await all(store.find(h, 10))
      t.is(hits.length, 1)
      t.is(hits[0]?.provider.peerId, P1)
      t.deepEqual(hits[0]?.provider.addresses, ADDR)
      t.deepEqual(hits[0]?.metadata, GATEWAY)
    }
    t.deepEqual(await all(store.find(mhs(1)[0] as Uint8Array, 10)), [])
    t.is((await store.provider(P1))?.head.toString(), change.ad.toString())
    t.true(await store.hasAdvertisement(P1, change.ad))
    t.false(await store.hasAdvertisement(P1, adCid()))
    t.false(await store.hasAdvertisement(P2, change.ad))
    t.deepEqual(await store.stats(), { providers: 1, multihashes: 50 })
  })

  run('a multihash held by two providers and in two contexts of one: a hit for each; withdrawing one context leaves the others', async ({ store }, t) => {
    const shared = mhs(1)
    const [a, b, c] = [dealIdBytes(), dealIdBytes(), dealIdBytes()]
    await store.apply(add(P1, a, shared))
    await store.apply(add(P1, b, shared))
    await store.apply(add(P2, c, shared))
    t.is((await all(store.find(shared[0] as Uint8Array, 10))).length, 3)
    await store.apply(remove(P1, a))
    const left = await all(store.find(shared[0] as Uint8Array, 10))
    t.deepEqual(left.map(h => h.provider.peerId).sort(), [P1, P2].sort())
    await store.apply(remove(P1, b))
    t.deepEqual((await all(store.find(shared[0] as Uint8Array, 10))).map(h => h.provider.peerId), [P2])
    t.deepEqual(await store.stats(), { providers: 2, multihashes: 1 })
    // withdrawing an unknown context changes nothing but the head
    await store.apply(remove(P2, dealIdBytes()))
    t.is((await all(store.find(shared[0] as Uint8Array, 10))).length, 1)
  })

  run('adding the same multihashes to a context again does not count them twice', async ({ store }, t) => {
    const context = dealIdBytes()
    const m = mhs(10)
    await store.apply(add(P1, context, m))
    await store.apply(add(P1, context, [...m.slice(0, 5), ...m.slice(0, 5)]))
    t.deepEqual(await store.stats(), { providers: 1, multihashes: 10 })
    t.is((await all(store.find(m[3] as Uint8Array, 10))).length, 1)
  })

  run('a chain restart drops everything the provider had, and nothing of another provider', async ({ store }, t) => {
    const old = mhs(20)
    const other = mhs(5)
    await store.apply(add(P1, dealIdBytes(), old))
    await store.apply(add(P2, dealIdBytes(), other))
    const fresh = mhs(3)
    const restart = add(P1, dealIdBytes(), fresh, true)
    await store.apply(restart)
    t.deepEqual(await all(store.find(old[0] as Uint8Array, 10)), [])
    t.is((await all(store.find(fresh[0] as Uint8Array, 10)))[0]?.provider.head.toString(), restart.ad.toString())
    t.is((await all(store.find(other[0] as Uint8Array, 10))).length, 1)
    t.deepEqual(await store.stats(), { providers: 2, multihashes: 8 })
  })

  run('an address update moves the provider without touching its entries', async ({ store }, t) => {
    const m = mhs(2)
    await store.apply(add(P1, dealIdBytes(), m))
    const moved = ['/dns/provider.example/tcp/443/tls/http']
    await store.apply({ peerId: P1, addresses: moved, ad: adCid(), at: Date.now(), reset: false })
    t.deepEqual((await all(store.find(m[1] as Uint8Array, 10)))[0]?.provider.addresses, moved)
    t.deepEqual((await store.provider(P1))?.addresses, moved)
  })

  run('find gives at most `limit` hits', async ({ store }, t) => {
    const shared = mhs(1)
    for (let i = 0; i < 12; i++) await store.apply(add(P1, dealIdBytes(), shared))
    t.is((await all(store.find(shared[0] as Uint8Array, 5))).length, 5)
    t.is((await all(store.find(shared[0] as Uint8Array, 100))).length, 12)
  })

  run('what was applied is there after the store is closed and opened again', async (s, t) => {
    const m = mhs(4)
    const change = add(P1, dealIdBytes(), m)
    await s.store.apply(change)
    const store = await s.reopen()
    t.is((await all(store.find(m[2] as Uint8Array, 10)))[0]?.provider.peerId, P1)
    t.true(await store.hasAdvertisement(P1, change.ad))
    t.is((await store.provider(P1))?.head.toString(), change.ad.toString())
  })
}
