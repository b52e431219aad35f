/** The ledger conformance suite on the LevelDB ledger of a repo, and on the state-store ledger over LevelDB. */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { createSigner } from '../../src/protocol/signing.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { StateLedger } from '../../src/ledger/state.js'
import type { Database } from '../../src/repo/repo.js'
import { LevelStore } from '../../src/state/level.js'
import { ledgerSuite } from './suite.js'

async function levelDb (): Promise<{ db: Database, cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-ledger-suite-'))
  const db: Database = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  return { db, cleanup: async () => { await db.close(); await rm(dir, { recursive: true, force: true }) } }
}

ledgerSuite(test, 'LevelLedger', async () => {
  const { db, cleanup } = await levelDb()
  const signer = createSigner(randomBytes(32))
  const fixture = {
    ledger: await LevelLedger.open(db, signer),
    signer,
    state: new LevelStore(db),
    reopen: async () => (fixture.ledger = await LevelLedger.open(db, signer)),
    cleanup
  }
  return fixture
})

ledgerSuite(test, 'StateLedger on LevelStore', async () => {
  const { db, cleanup } = await levelDb()
  const signer = createSigner(randomBytes(32))
  const state = new LevelStore(db)
  const fixture = {
    ledger: await StateLedger.openOn(state, signer),
    signer,
    state,
    reopen: async () => (fixture.ledger = await StateLedger.openOn(state, signer)),
    cleanup
  }
  return fixture
})
