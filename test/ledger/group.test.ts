/**
 * Group commit: appends made together — callers of one burst, a loop that
 * does not await each append — commit in one transaction, the first one
 * included (on PostgreSQL each transaction costs a WAL flush and its round
 * trips; docs/cluster.md "Measured").
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StateLedger } from '../../src/ledger/state.js'
import { createSigner } from '../../src/protocol/signing.js'
import type { StateStore } from '../../src/state/interface.js'
import { LevelStore } from '../../src/state/level.js'
import { dealId } from './helpers.js'

test('a burst of appends commits in one transaction, the first one with the rest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-ledger-group-'))
  const level = await LevelStore.open(join(dir, 'db'))
  t.teardown(async () => { await level.close(); await rm(dir, { recursive: true, force: true }) })
  let transactions = 0
  const counted: StateStore = new Proxy(level, {
    get (target, name, receiver) {
      if (name === 'transaction') return async (fn: Parameters<StateStore['transaction']>[0]) => { transactions++; return await target.transaction(fn) }
      const value = Reflect.get(target, name, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
  const ledger = await StateLedger.openOn(counted, createSigner(randomBytes(32)))
  const before = transactions
  const entries = await Promise.all(Array.from({ length: 50 }, async (_, i) => await ledger.append('deal-proposed', { deal: dealId(i + 1) })))
  t.is(transactions - before, 1)
  t.deepEqual(entries.map(e => e.seq), Array.from({ length: 50 }, (_, i) => i + 1))
  t.like(await ledger.verify(), { entries: 50 })
})
