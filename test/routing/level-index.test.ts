/** The LevelDB index runs the IndexStore conformance suite, and its own sweep of restarted providers. */
import test from 'ava'
import { Level } from 'level'
import type { Database } from '../../src/repo/repo.js'
import { LevelIndexStore } from '../../src/routing/level-index.js'
import { indexStoreSuite } from './index-store.js'
import { dealIdBytes, GATEWAY, randomCids, tempDb } from './helpers.js'

indexStoreSuite(test, 'level', async () => {
  const { db, cleanup } = await tempDb()
  let store = await LevelIndexStore.open(db)
  let current: Database = db
  return {
    store,
    reopen: async () => {
      await store.close()
      const location = (current as unknown as { location: string }).location
      await current.close()
      current = new Level<string, Uint8Array>(location, { valueEncoding: 'view' })
      await current.open()
      store = await LevelIndexStore.open(current)
      return store
    },
    cleanup: async () => {
      await store.close()
      if (current !== db) await current.close()
      await cleanup()
    }
  }
})

test('level: a restarted provider\'s old keys are swept from the database, not only hidden', async (t) => {
  const { db, cleanup } = await tempDb()
  const store = await LevelIndexStore.open(db)
  try {
    const peerId = '12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt'
    const m = randomCids(3000).map(c => c.multihash.bytes)
    const count = async (): Promise<number> => { let n = 0; for await (const _ of db.keys()) n++; return n }
    const apply = async (multihashes: Uint8Array[], reset: boolean): Promise<void> => {
      await store.apply({ peerId, addresses: ['/ip4/127.0.0.1/tcp/1/http'], ad: randomCids(1)[0] as never, at: 1, reset, context: { id: dealIdBytes(), metadata: GATEWAY, remove: false, multihashes } })
    }
    await apply(m, false)
    const before = await count()
    t.true(before >= 3000, 'a key per multihash')
    await apply(m.slice(0, 1), true)
    await store.swept()
    const after = await count()
    t.true(after < 40, `${after} keys left after the sweep (from ${before})`)
    t.deepEqual(await store.stats(), { providers: 1, multihashes: 1 })
  } finally {
    await store.close()
    await cleanup()
  }
})
