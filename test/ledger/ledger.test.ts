/** The LevelDB ledger beyond the conformance suite (suite.ts): extra writes as batch operations of the repo's database. */
import test from 'ava'
import { performance } from 'node:perf_hooks'
import { CID } from 'multiformats/cid'
import { createSigner } from '../../src/protocol/signing.js'
import type { ExtraOp } from '../../src/ledger/interface.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { dealId, openLedger, other, provider } from './helpers.js'

test('proof counters per deal and per provider, and consecutive faults', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const id = dealId(1)
  await f.ledger.append('deal-accepted', { deal: id, provider })
  await f.ledger.append('deal-active', { deal: id })
  for (const kind of ['proof-passed', 'proof-failed', 'proof-missed', 'proof-passed', 'proof-failed', 'proof-missed'] as const) {
    await f.ledger.append('challenge-issued', { deal: id, provider })
    await f.ledger.append(kind, { deal: id, provider })
  }
  t.like(await f.ledger.deal(id), { passed: 2, failed: 2, missed: 2, consecutiveFaults: 2 })
  t.deepEqual(await f.ledger.counters(provider), { challenges: 6, passed: 2, failed: 2, missed: 2 })
  t.deepEqual(await f.ledger.counters(other), { challenges: 0, passed: 0, failed: 0, missed: 0 })
})

test('balances per counterparty (docs/ledger.md)', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const me = f.signer.did
  const id = dealId(1)
  await f.ledger.append('deal-proposed', { deal: id, provider })
  await f.ledger.append('payment-accrued', { deal: id, from: me, to: provider, amount: 40n })
  await f.ledger.append('payment-accrued', { deal: id, from: me, to: provider, amount: 40n })
  await f.ledger.append('collateral-slashed', { deal: id, from: provider, to: me, amount: 80n })
  await f.ledger.append('payment-accrued', { deal: id, from: other, to: me, amount: (1n << 63n) + 5n })
  await f.ledger.append('collateral-slashed', { deal: id, from: me, to: other, amount: 3n })
  const balances = Object.fromEntries((await f.ledger.balance()).map(b => [b.counterparty, b]))
  t.deepEqual(balances[provider], { counterparty: provider, earned: 0n, paid: 80n, slashedToUs: 80n, slashedFromUs: 0n, outstanding: 0n })
  t.deepEqual(balances[other], { counterparty: other, earned: (1n << 63n) + 5n, paid: 0n, slashedToUs: 0n, slashedFromUs: 3n, outstanding: (1n << 63n) + 2n })
  await t.throwsAsync(f.ledger.append('payment-accrued', { deal: id, from: provider, to: other, amount: 1n }), { instanceOf: TypeError })
  await t.throwsAsync(f.ledger.append('payment-accrued', { deal: id, from: provider, to: me }), { instanceOf: TypeError })
})

test('extra writes commit with the entry; a batch that fails leaves no entry and no gap', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const blocks = f.db.sublevel<string, Uint8Array>('blocks', { valueEncoding: 'view' })
  await f.ledger.append('deal-accepted', { deal: dealId(1) })
  await f.ledger.append('piece-stored', { deal: dealId(1) }, [{ type: 'put', sublevel: blocks, key: 'bafy-one', value: Uint8Array.of(1) }])
  t.deepEqual(new Uint8Array((await blocks.get('bafy-one'))!), Uint8Array.of(1))
  // a put without a key makes LevelDB refuse the whole batch
  await t.throwsAsync(f.ledger.append('piece-stored', { deal: dealId(1) }, [{ type: 'put', sublevel: blocks, key: undefined as unknown as string, value: Uint8Array.of(2) }]))
  t.is(f.ledger.head()!.seq, 2)
  t.is(await f.ledger.get(3), undefined)
  t.is((await f.ledger.append('deal-active', { deal: dealId(1) })).seq, 3)
  t.like(await f.ledger.deal(dealId(1)), { state: 'active' })
  t.is((await f.ledger.verify()).entries, 3)
})

test('a lazy extra commits whole with its entry, and the event loop turns while it is taken', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const blocks = f.db.sublevel<string, Uint8Array>('blocks', { valueEncoding: 'view' })
  let produced = 0
  let producedWhenTimerRan = -1
  function * index (): Generator<ExtraOp> {
    setTimeout(() => { producedWhenTimerRan = produced }, 0)
    for (let i = 0; i < 40; i++) {
      // ~1 ms of synchronous work per write, like encoding a large upload's block index
      const until = performance.now() + 1
      while (performance.now() < until) { /* busy */ }
      produced++
      yield { type: 'put', sublevel: blocks, key: `block-${i}`, value: Uint8Array.of(i) }
    }
  }
  const entry = await f.ledger.append('deal-accepted', { deal: dealId(1) }, index())
  t.is(entry.seq, 1)
  t.true(producedWhenTimerRan >= 0 && producedWhenTimerRan < 40, `the timer ran after ${producedWhenTimerRan} of 40 writes`)
  for (let i = 0; i < 40; i++) t.deepEqual(new Uint8Array((await blocks.get(`block-${i}`))!), Uint8Array.of(i))
})

test('an extra that throws while read fails its entry alone and writes none of it', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  const blocks = f.db.sublevel<string, Uint8Array>('blocks', { valueEncoding: 'view' })
  function * broken (): Generator<ExtraOp> {
    for (let i = 0; i < 10; i++) yield { type: 'put', sublevel: blocks, key: `half-${i}`, value: Uint8Array.of(i) }
    throw new Error('index encoding failed')
  }
  const [bad, good] = await Promise.allSettled([
    f.ledger.append('deal-accepted', { deal: dealId(1) }, broken()),
    f.ledger.append('deal-accepted', { deal: dealId(2) }, [{ type: 'put', sublevel: blocks, key: 'whole', value: Uint8Array.of(1) }])
  ])
  t.true(bad.status === 'rejected' && /index encoding failed/.test(String(bad.reason)))
  t.is(good.status, 'fulfilled')
  t.is(await blocks.get('half-0'), undefined)
  t.deepEqual(new Uint8Array((await blocks.get('whole'))!), Uint8Array.of(1))
  t.is((await f.ledger.verify()).entries, 1)
  t.is(await f.ledger.deal(dealId(1)), undefined)
})

test('entries signed by another key are caught', async t => {
  const f = await openLedger()
  t.teardown(f.cleanup)
  await f.ledger.append('deal-accepted', { deal: dealId(1) })
  // the same database opened with another identity
  const impostor = await LevelLedger.open(f.db, createSigner(new Uint8Array(32).fill(3)))
  const err = await t.throwsAsync(impostor.verify())
  t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
  t.regex(err!.message, /entry 1 .*signed by/)
  t.true(CID.asCID(f.ledger.head()!.cid) !== null)
})
