/**
 * The indexes are a pure function of the chain: `verify` re-derives every one
 * of them and names the first that disagrees (an edited balance or deal state,
 * entries cut off the end), a multi-entry append commits whole or not at all,
 * a ledger from an older index version is re-indexed on open, and the
 * provider's totals (deals by state, capacity reserved and used) move with
 * each entry in the same batch.
 */
import test from 'ava'
import * as dagCbor from '@ipld/dag-cbor'
import { Level } from 'level'
import { seqKey } from '../../src/ledger/entry.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { Repo } from '../../src/repo/repo.js'
import type { Database } from '../../src/repo/repo.js'
import { cairn, tempDir } from '../helpers/cli.js'
import { dealId, openLedger, other, provider } from './helpers.js'

function space (db: Database, name: string) {
  return db.sublevel<string, Uint8Array>(['ledger', name], { valueEncoding: 'view' })
}

async function brokenIndex (t: import('ava').ExecutionContext, ledger: LevelLedger, index: string, message: RegExp): Promise<void> {
  const err = await t.throwsAsync(ledger.verify())
  t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
  t.is((err as { details?: { index?: string } }).details?.index, index, err?.message)
  t.regex(err!.message, message)
}

test('verify re-derives the balances and names an edited one', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const me = f.signer.did
  await f.ledger.append('deal-proposed', { deal: dealId(1), provider })
  await f.ledger.append('payment-accrued', { deal: dealId(1), from: me, to: provider, amount: 40n })
  t.like(await f.ledger.verify(), { entries: 2 })
  const balances = space(f.db, 'balances')
  const stored = dagCbor.decode((await balances.get(provider))!) as Record<string, string>
  await balances.put(provider, dagCbor.encode({ ...stored, paid: '4', outstanding: '-4' }))
  t.is((await (await f.reopen()).balance())[0]?.paid, 4n, 'the forged number is what the index says')
  await brokenIndex(t, f.ledger, 'balances', /^ledger index balances\/did:key:\S+ holds paid "4", outstanding "-4"; the chain gives paid "40", outstanding "-40"$/)
})

test('verify names an edited deal state, a removed index entry and one made up', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  await f.ledger.append('deal-proposed', { deal: dealId(1), provider, client: f.signer.did, nonce: 3n })
  await f.ledger.append('deal-accepted', { deal: dealId(1) })
  const deals = space(f.db, 'deals')
  const id = dealId(1).toString()
  const original = (await deals.get(id))!
  await deals.put(id, dagCbor.encode({ ...(dagCbor.decode(original) as object), state: 'active' }))
  await brokenIndex(t, await f.reopen(), 'deals', /holds state "active"; the chain gives state "accepted"$/)
  await deals.put(id, original)
  const nonces = space(f.db, 'nonces')
  const [nonce] = await nonces.keys().all()
  await nonces.del(nonce!)
  await brokenIndex(t, await f.reopen(), 'nonces', /is missing; the chain gives/)
  await nonces.put(nonce!, dagCbor.encode(id))
  await space(f.db, 'deals').put(dealId(7).toString(), original)
  await brokenIndex(t, await f.reopen(), 'deals', /which no entry of the chain gives/)
  await space(f.db, 'deals').del(dealId(7).toString())
  t.like(await (await f.reopen()).verify(), { entries: 2 })
})

test('entries cut off the end are caught by the head index', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  for (let i = 1; i <= 5; i++) await f.ledger.append('deal-proposed', { deal: dealId(i), provider })
  const entries = space(f.db, 'entries')
  await entries.del(seqKey(5))
  await entries.del(seqKey(4))
  const err = await t.throwsAsync((await f.reopen()).verify())
  t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
  t.regex(err!.message, /index (meta\/head|by-deal|deals)/)
})

test('provider totals: deals by state, capacity reserved and used, earnings, schedule and holders', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const me = f.signer.did
  const accept = (n: number, size: bigint): Promise<unknown> => f.ledger.append('deal-accepted', {
    deal: dealId(n), client: other, provider: me, nonce: BigInt(n), pieceSize: size, payloadSize: size - 10n, start: 100, end: 200 + n, uploadBy: 50 + n
  })
  await accept(1, 1024n)
  await accept(2, 2048n)
  await accept(3, 4096n)
  t.like(await f.ledger.stats(), { deals: { accepted: 3 }, reserved: 7168n, used: 0n })
  t.deepEqual(await f.ledger.due(52, 10), [{ at: 51, deal: dealId(1).toString() }, { at: 52, deal: dealId(2).toString() }])
  await f.ledger.append('deal-active', { deal: dealId(1), pieceCid: dealId(99) })
  await f.ledger.append('deal-expired', { deal: dealId(2) })
  t.like(await f.ledger.stats(), { deals: { accepted: 1, active: 1, expired: 1 }, reserved: 4096n, used: 1024n, stored: 1014n })
  t.deepEqual((await f.ledger.due(1000, 10)).map(d => d.at), [53, 201])
  t.deepEqual(await f.ledger.holders(dealId(99).toString()), [dealId(1).toString()])
  await f.ledger.append('deal-expired', { deal: dealId(1) })
  t.deepEqual(await f.ledger.holders(dealId(99).toString()), [])
  // totals need not fit a 64-bit integer; an entry's own amount must
  t.throws(() => f.ledger.append('payment-accrued', { deal: dealId(3), from: other, to: me, amount: 1n << 64n }), { instanceOf: TypeError })
  await f.ledger.append('payment-accrued', { deal: dealId(3), from: other, to: me, amount: (1n << 64n) - 1n })
  await f.ledger.append('payment-accrued', { deal: dealId(3), from: other, to: me, amount: 2n })
  t.like(await f.ledger.stats(), { deals: { accepted: 1, expired: 2 }, reserved: 4096n, used: 0n, earned: (1n << 64n) + 1n })
  // a deal this node is the client of counts in none of these
  await f.ledger.append('deal-proposed', { deal: dealId(4), client: me, provider, nonce: 9n, pieceSize: 1n << 20n })
  t.like(await f.ledger.stats(), { reserved: 4096n })
  t.like(await f.ledger.verify(), { entries: 9 })
})

test('a ledger whose indexes are from an older version is re-indexed when opened', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const me = f.signer.did
  await f.ledger.append('deal-accepted', { deal: dealId(1), client: other, provider: me, nonce: 1n, pieceSize: 1024n, uploadBy: 10 })
  await f.ledger.append('payment-accrued', { deal: dealId(1), from: other, to: me, amount: 7n })
  // what an older version left: no version mark, no totals, no schedule
  await space(f.db, 'meta').clear()
  await space(f.db, 'stats').clear()
  await space(f.db, 'due').clear()
  const again = await f.reopen()
  t.like(await again.stats(), { deals: { accepted: 1 }, reserved: 1024n, earned: 7n })
  t.is((await again.due(10, 10)).length, 1)
  t.like(await again.verify(), { entries: 2 })
})

test('`cairn ledger verify` exits 3 after the balance index is edited', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const repo = await Repo.init(`${dir.path}/repo`)
  const ledger = await LevelLedger.open(await repo.db(), repo.identity)
  await ledger.append('deal-proposed', { deal: dealId(1), provider })
  await ledger.append('payment-accrued', { deal: dealId(1), from: repo.identity.did, to: provider, amount: 1000n })
  await repo.close()
  t.is((await cairn(['--repo', `${dir.path}/repo`, 'ledger', 'verify'])).code, 0)
  const db: Database = new Level<string, Uint8Array>(`${dir.path}/repo/db`, { valueEncoding: 'view' })
  await db.open()
  const balances = space(db, 'balances')
  const [key] = await balances.keys().all()
  const forged = { ...(dagCbor.decode((await balances.get(key!))!) as Record<string, unknown>), paid: 1, outstanding: -1 }
  await balances.put(key!, dagCbor.encode(forged))
  await db.close()
  const run = await cairn(['--repo', `${dir.path}/repo`, 'ledger', 'verify'])
  t.is(run.code, 3, run.stderr)
  t.regex(run.stderr, /ERR_LEDGER_BROKEN: ledger index balances\//)
})
