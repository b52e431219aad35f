/** The PostgreSQL index runs the IndexStore conformance suite, and its own sweep of restarted providers. */
import test from 'ava'
import { Db, type Queryable, type TransactionOptions } from '../../src/postgres/db.js'
import { migrate } from '../../src/postgres/migrate.js'
import { PgIndexStore } from '../../src/routing/pg-index.js'
import { testDatabase } from '../helpers/postgres.js'
import { indexStoreSuite } from './index-store.js'
import { dealIdBytes, GATEWAY, randomCids } from './helpers.js'

async function pgStore (): Promise<{ db: Db, store: PgIndexStore, url: string, cleanup: () => Promise<void> }> {
  const database = await testDatabase()
  const db = await Db.connect({ url: database.url, max: 4 })
  await migrate(db)
  const store = await PgIndexStore.open(db)
  return { db, store, url: database.url, cleanup: async () => { await store.close(); await db.close(); await database.cleanup() } }
}

indexStoreSuite(test, 'postgres', async () => {
  const first = await pgStore()
  let { store, db } = first
  return {
    store,
    reopen: async () => {
      await store.close()
      await db.close()
      db = await Db.connect({ url: first.url, max: 4 })
      store = await PgIndexStore.open(db)
      return store
    },
    cleanup: async () => {
      if (db !== first.db) { await store.close(); await db.close() }
      await first.cleanup()
    }
  }
})

test('postgres: a restarted provider\'s old rows are swept from the database, not only hidden', async (t) => {
  const { db, store, cleanup } = await pgStore()
  try {
    const peerId = '12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt'
    const m = randomCids(4100).map(c => c.multihash.bytes)
    const count = async (): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM indexer_entries')).rows[0]?.n)
    const apply = async (multihashes: Uint8Array[], reset: boolean): Promise<void> => {
      await store.apply({ peerId, addresses: ['/ip4/127.0.0.1/tcp/1/http'], ad: randomCids(1)[0] as never, at: 1, reset, context: { id: dealIdBytes(), metadata: GATEWAY, remove: false, multihashes } })
    }
    await apply(m, false)
    t.is(await count(), 4100, 'a row per multihash')
    await apply(m.slice(0, 1), true)
    await store.swept()
    t.is(await count(), 1)
    t.is(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM indexer_retired')).rows[0]?.n), 0)
    t.is(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM indexer_contexts')).rows[0]?.n), 1)
    t.deepEqual(await store.stats(), { providers: 1, multihashes: 1 })
  } finally {
    await cleanup()
  }
})

test('postgres: two indexers on one database applying for one provider at once keep one consistent count', async (t) => {
  const { db, store, url, cleanup } = await pgStore()
  const db2 = await Db.connect({ url, max: 4 })
  const other = await PgIndexStore.open(db2)
  try {
    const peerId = '12D3KooWQ1cixoKAf8h4DQhwnm8tgwnZvXs8r8oGkaAmkNAidJmZ'
    const context = dealIdBytes()
    const m = randomCids(200).map(c => c.multihash.bytes)
    const change = (multihashes: Uint8Array[]) => ({ peerId, addresses: ['/ip4/127.0.0.1/tcp/1/http'], ad: randomCids(1)[0] as never, at: 1, reset: false, context: { id: context, metadata: GATEWAY, remove: false, multihashes } })
    await Promise.all([store.apply(change(m.slice(0, 150))), other.apply(change(m.slice(50)))])
    t.deepEqual(await store.stats(), { providers: 1, multihashes: 200 })
    t.is(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM indexer_entries')).rows[0]?.n), 200)
  } finally {
    await other.close()
    await db2.close()
    await cleanup()
  }
})

test('postgres: an advertisement of 4,100 multihashes is applied in a handful of statements, not one per multihash', async (t) => {
  const { db, store, cleanup } = await pgStore()
  try {
    let statements = 0
    const transaction = db.transaction.bind(db)
    // counts the statements each transaction of the store sends
    db.transaction = (async (fn: (q: Queryable) => Promise<unknown>, options?: TransactionOptions) => await transaction(async (q) => await fn({
      query: async (sql: string, params?: unknown[]) => { statements++; return await q.query(sql, params) }
    } as Queryable), options)) as typeof db.transaction
    const m = randomCids(4100).map(c => c.multihash.bytes)
    await store.apply({ peerId: '12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt', addresses: ['/ip4/127.0.0.1/tcp/1/http'], ad: randomCids(1)[0] as never, at: 1, reset: false, context: { id: dealIdBytes(), metadata: GATEWAY, remove: false, multihashes: m } })
    t.true(statements > 0 && statements <= 10, `${statements} statements`)
    t.deepEqual(await store.stats(), { providers: 1, multihashes: 4100 })
  } finally {
    await cleanup()
  }
})
