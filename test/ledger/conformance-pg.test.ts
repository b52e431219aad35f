/**
 * The ledger conformance suite on PostgreSQL (each test a database of its
 * own), and what only a shared database has: several nodes, each with its own
 * pool and ledger object, appending to one chain.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { createSigner } from '../../src/protocol/signing.js'
import { StateLedger } from '../../src/ledger/state.js'
import { Db } from '../../src/postgres/db.js'
import { migrate } from '../../src/postgres/migrate.js'
import { PgStore } from '../../src/state/pg.js'
import { testDatabase } from '../helpers/postgres.js'
import { dealId } from './helpers.js'
import { ledgerSuite } from './suite.js'

/** A migrated database and `nodes` pools on it. */
async function cluster (nodes: number): Promise<{ stores: PgStore[], cleanup: () => Promise<void> }> {
  const database = await testDatabase()
  const pools: Db[] = []
  for (let i = 0; i < nodes; i++) pools.push(await Db.connect({ url: database.url }))
  await migrate(pools[0] as Db)
  return {
    stores: pools.map(db => new PgStore(db)),
    cleanup: async () => {
      for (const db of pools) await db.close()
      await database.cleanup()
    }
  }
}

ledgerSuite(test, 'StateLedger on PgStore', async () => {
  const { stores: [state], cleanup } = await cluster(1)
  const signer = createSigner(randomBytes(32))
  const fixture = {
    ledger: await StateLedger.openOn(state as PgStore, signer),
    signer,
    state: state as PgStore,
    reopen: async () => (fixture.ledger = await StateLedger.openOn(state as PgStore, signer)),
    cleanup
  }
  return fixture
})

test('three nodes appending at once to one database form one chain that verifies on each', async t => {
  const { stores, cleanup } = await cluster(3)
  t.teardown(cleanup)
  const signer = createSigner(randomBytes(32))
  const ledgers = await Promise.all(stores.map(async store => await StateLedger.openOn(store, signer)))
  const appended = await Promise.all(ledgers.map(async (ledger, node) =>
    await Promise.all(Array.from({ length: 60 }, async (_, i) => await ledger.append('deal-proposed', { deal: dealId(node * 1000 + i) })))))
  const seqs = appended.flat().map(e => e.seq).sort((a, b) => a - b)
  t.deepEqual(seqs, Array.from({ length: 180 }, (_, i) => i + 1))
  for (const ledger of ledgers) t.like(await ledger.verify({ signatures: 'all' }), { entries: 180 })
  // each node's head follows the chain once it reads it, and its next append links to the real head
  const next = await (ledgers[0] as StateLedger).append('deal-accepted', { deal: dealId(2000) })
  t.is(next.seq, 181)
  t.is((await (ledgers[2] as StateLedger).refreshHead())?.seq, 181)
  t.true((ledgers[2] as StateLedger).head()!.cid.equals(next.cid))
})

test('a node with another key sees the shared chain as not its own', async t => {
  const { stores, cleanup } = await cluster(2)
  t.teardown(cleanup)
  const ours = await StateLedger.openOn(stores[0] as PgStore, createSigner(randomBytes(32)))
  await ours.append('deal-proposed', { deal: dealId(1) })
  const stranger = await StateLedger.openOn(stores[1] as PgStore, createSigner(randomBytes(32)))
  const err = await t.throwsAsync(stranger.verify())
  t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
  t.regex(err!.message, /signed by/)
})
