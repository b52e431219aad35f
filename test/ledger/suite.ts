/**
 * The ledger conformance suite: what every ledger does, whatever holds it.
 * Run on the LevelDB ledger of a repo (conformance-level.test.ts), the state
 * store ledger on LevelDB and on PostgreSQL (conformance-state.test.ts,
 * conformance-pg.test.ts), so the chain, its indexes and verify behave alike.
 */
import type { ExecutionContext, TestFn } from 'ava'
import type { Signer } from '../../src/protocol/signing.js'
import { recordCid } from '../../src/ledger/entry.js'
import type { ExtraOp, IndexView, Ledger, LedgerEntry } from '../../src/ledger/interface.js'
import { seqKey } from '../../src/ledger/entry.js'
import type { StateStore } from '../../src/state/interface.js'
import { spaces, testSpace } from '../../src/state/spaces.js'
import { dealId, other, provider } from './helpers.js'

export interface LedgerFixture {
  ledger: Ledger
  signer: Signer
  /** what the ledger's writes went to, read directly */
  state: StateStore
  reopen (): Promise<Ledger>
  cleanup (): Promise<void>
}

async function collect<T> (iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of iterable) out.push(x)
  return out
}

export function ledgerSuite (test: TestFn, name: string, open: () => Promise<LedgerFixture>): void {
  const it = (title: string, fn: (t: ExecutionContext, f: LedgerFixture) => Promise<void>): void => {
    test(`${name}: ${title}`, async t => {
      const f = await open()
      t.teardown(f.cleanup)
      await fn(t, f)
    })
  }

  it('append then verify: seq, prev links and signatures, across a reopen', async (t, f) => {
    t.is(f.ledger.head(), null)
    t.like(await f.ledger.verify(), { entries: 0, head: null })
    const a = await f.ledger.append('deal-proposed', { deal: dealId(1), provider, client: f.signer.did, nonce: 7n })
    const b = await f.ledger.append('deal-accepted', { deal: dealId(1) })
    t.deepEqual([a.seq, b.seq], [1, 2])
    t.is(a.prev, null)
    t.true(b.prev!.equals(a.cid))
    t.true(a.cid.equals(recordCid(a.recordBytes)))
    t.like(await f.ledger.verify({ signatures: 'all' }), { entries: 2, head: { seq: 2, cid: b.cid } })
    const again = await f.reopen()
    t.true(again.head()!.cid.equals(b.cid))
    const c = await again.append('transfer-started', { deal: dealId(1) })
    t.is(c.seq, 3)
    t.true(c.prev!.equals(b.cid))
    t.is((await again.verify()).entries, 3)
    t.deepEqual((await again.get(1))!.fields, { deal: dealId(1), provider, client: f.signer.did, nonce: 7 })
    t.is(await again.get(4), undefined)
  })

  it('the deal index follows the state machine; an illegal transition fails alone and writes nothing', async (t, f) => {
    const id = dealId(1)
    await f.ledger.append('deal-proposed', { deal: id, provider, client: f.signer.did, nonce: 1n, pieceSize: 1024n })
    const [ok, bad] = await Promise.allSettled([
      f.ledger.append('deal-accepted', { deal: id }),
      f.ledger.append('deal-rejected', { deal: id })
    ])
    t.is(ok.status, 'fulfilled')
    t.true(bad.status === 'rejected' && bad.reason instanceof TypeError)
    await f.ledger.append('deal-active', { deal: id })
    t.like(await f.ledger.deal(id), { state: 'active', seq: 3, provider, client: f.signer.did, pieceSize: 1024n })
    t.is(f.ledger.head()!.seq, 3)
    t.is((await f.ledger.verify()).entries, 3)
    t.true(await f.ledger.nonceUsed(f.signer.did, 1n))
    t.false(await f.ledger.nonceUsed(f.signer.did, 2n))
    await t.throwsAsync(f.ledger.append('proof-passed', { deal: dealId(99), provider }), { instanceOf: TypeError })
    t.throws(() => f.ledger.append('deal-active', { deal: id, ratio: 0.5 }), { instanceOf: TypeError })
    t.throws(() => f.ledger.append('deal-active', { deal: id, seq: 5 }), { instanceOf: TypeError })
    t.throws(() => f.ledger.append('no-such-kind' as 'deal-active', {}), { instanceOf: TypeError })
  })

  it('proof counters per deal and per provider; balances per counterparty', async (t, f) => {
    const id = dealId(1)
    const me = f.signer.did
    await f.ledger.append('deal-accepted', { deal: id, provider })
    await f.ledger.append('deal-active', { deal: id })
    for (const kind of ['proof-passed', 'proof-failed', 'proof-missed', 'proof-failed'] as const) {
      await f.ledger.append('challenge-issued', { deal: id, provider })
      await f.ledger.append(kind, { deal: id, provider })
    }
    t.like(await f.ledger.deal(id), { passed: 1, failed: 2, missed: 1, consecutiveFaults: 3 })
    t.deepEqual(await f.ledger.counters(provider), { challenges: 4, passed: 1, failed: 2, missed: 1 })
    t.deepEqual(await f.ledger.counters(other), { challenges: 0, passed: 0, failed: 0, missed: 0 })
    await f.ledger.append('payment-accrued', { deal: id, from: me, to: provider, amount: 40n })
    await f.ledger.append('payment-accrued', { deal: id, from: other, to: me, amount: (1n << 63n) + 5n })
    const balances = Object.fromEntries((await f.ledger.balance()).map(b => [b.counterparty, b]))
    t.like(balances[provider], { paid: 40n, outstanding: -40n })
    t.like(balances[other], { earned: (1n << 63n) + 5n, outstanding: (1n << 63n) + 5n })
    t.like(await f.ledger.verify(), { entries: 12 })
  })

  it('log: newest first, by deal, by kind, with a limit', async (t, f) => {
    for (let d = 1; d <= 3; d++) await f.ledger.append('deal-proposed', { deal: dealId(d) })
    for (let d = 1; d <= 3; d++) await f.ledger.append('deal-accepted', { deal: dealId(d) })
    const seqs = (entries: LedgerEntry[]): number[] => entries.map(e => e.seq)
    t.deepEqual(seqs(await collect(f.ledger.log())), [6, 5, 4, 3, 2, 1])
    t.deepEqual(seqs(await collect(f.ledger.log({ deal: dealId(2) }))), [5, 2])
    t.deepEqual(seqs(await collect(f.ledger.log({ kind: 'deal-accepted', limit: 2 }))), [6, 5])
    t.is((await collect(f.ledger.export())).length, 6)
  })

  it('concurrent appends form one consistent chain (group commit)', async (t, f) => {
    const entries = await Promise.all(Array.from({ length: 300 }, (_, i) => f.ledger.append('deal-proposed', { deal: dealId(i) })))
    t.deepEqual(entries.map(e => e.seq), Array.from({ length: 300 }, (_, i) => i + 1))
    for (let i = 1; i < entries.length; i++) t.true(entries[i]!.prev!.equals(entries[i - 1]!.cid))
    t.is((await f.ledger.verify({ signatures: 'all' })).entries, 300)
  })

  it('appendAll commits every entry or none', async (t, f) => {
    const me = f.signer.did
    await f.ledger.append('deal-proposed', { deal: dealId(1), provider })
    await t.throwsAsync(f.ledger.appendAll([
      { kind: 'payment-accrued', fields: { deal: dealId(1), from: me, to: provider, amount: 5n } },
      { kind: 'deal-active', fields: { deal: dealId(1) } } // proposed → active is illegal
    ]), { instanceOf: TypeError })
    t.is(f.ledger.head()!.seq, 1)
    t.deepEqual(await f.ledger.balance(), [])
    const [a, b] = await f.ledger.appendAll([
      { kind: 'deal-accepted', fields: { deal: dealId(1) } },
      { kind: 'payment-accrued', fields: { deal: dealId(1), from: me, to: provider, amount: 5n } }
    ])
    t.deepEqual([a!.seq, b!.seq], [2, 3])
    t.is((await f.ledger.balance())[0]?.paid, 5n)
    t.like(await f.ledger.verify(), { entries: 3 })
  })

  it('provider totals, schedule and holders move with each entry', async (t, f) => {
    const me = f.signer.did
    for (const [n, size] of [[1, 1024n], [2, 2048n]] as const) {
      await f.ledger.append('deal-accepted', { deal: dealId(n), client: other, provider: me, nonce: BigInt(n), pieceSize: size, payloadSize: size - 10n, start: 100, end: 200 + n, uploadBy: 50 + n })
    }
    t.like(await f.ledger.stats(), { deals: { accepted: 2 }, reserved: 3072n, used: 0n })
    t.deepEqual(await f.ledger.due(51, 10), [{ at: 51, deal: dealId(1).toString() }])
    await f.ledger.append('deal-active', { deal: dealId(1), pieceCid: dealId(99) })
    t.like(await f.ledger.stats(), { deals: { accepted: 1, active: 1 }, reserved: 2048n, used: 1024n })
    t.deepEqual(await f.ledger.holders(dealId(99).toString()), [dealId(1).toString()])
    t.like(await f.ledger.verify(), { entries: 3 })
  })

  it('extra writes to a space, or to a raw prefixed key, commit with their entry; one that throws while read fails its entry alone', async (t, f) => {
    const space = testSpace('ledger-extra', 'prefix')
    // a raw key of the repo's LevelDB root, as the provider writes its indexes, lands in the space of its prefix
    const raw = spaces.dags
    const prefix = (raw.level as { prefix: string }).prefix
    const bytes = async (s: typeof space, key: string): Promise<Uint8Array | undefined> => {
      const value = await f.state.get(s, key)
      return value === undefined ? undefined : new Uint8Array(value)
    }
    await f.ledger.append('deal-accepted', { deal: dealId(1) }, [{ type: 'put', space, key: 'a', value: Uint8Array.of(1) }])
    t.deepEqual(await bytes(space, 'a'), Uint8Array.of(1))
    function * broken (): Generator<ExtraOp> {
      for (let i = 0; i < 10; i++) yield { type: 'put', space, key: `half-${i}`, value: Uint8Array.of(i) }
      throw new Error('index encoding failed')
    }
    const [bad, good] = await Promise.allSettled([
      f.ledger.append('deal-accepted', { deal: dealId(2) }, broken()),
      f.ledger.append('deal-accepted', { deal: dealId(3) }, [{ type: 'put', key: `${prefix}raw`, value: Uint8Array.of(2) }, { type: 'del', space, key: 'a' }])
    ])
    t.true(bad.status === 'rejected' && /index encoding failed/.test(String(bad.reason)))
    t.is(good.status, 'fulfilled')
    t.is(await f.state.get(space, 'half-0'), undefined)
    t.deepEqual(await bytes(raw, 'raw'), Uint8Array.of(2))
    t.is(await f.state.get(space, 'a'), undefined)
    t.is(await f.ledger.deal(dealId(2)), undefined)
    t.like(await f.ledger.verify(), { entries: 2 })
  })

  it('a guard sees every entry appended before it; one that throws fails its unit alone', async (t, f) => {
    const accept = (n: number, nonce: bigint) => ({ kind: 'deal-accepted' as const, fields: { deal: dealId(n), provider: f.signer.did, client: other, nonce, pieceSize: 1024n } })
    // at most two deals reserved: the third guard must see the first two, appended in the same group
    const guard = async (view: IndexView): Promise<void> => {
      if ((await view.stats()).reserved >= 2048n) throw new Error('full')
    }
    const nonceFree = (nonce: bigint) => async (view: IndexView): Promise<void> => {
      if (await view.nonceUsed(other, nonce)) throw new Error(`nonce ${nonce} used`)
    }
    const results = await Promise.allSettled([
      f.ledger.appendAll([{ ...accept(1, 1n), guard }]),
      f.ledger.appendAll([{ ...accept(2, 2n), guard }]),
      f.ledger.appendAll([{ ...accept(3, 3n), guard }]),
      f.ledger.appendAll([{ ...accept(4, 1n), guard: nonceFree(1n) }])
    ])
    t.deepEqual(results.map(r => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected'])
    t.deepEqual(results.slice(2).map(r => r.status === 'rejected' ? (r.reason as Error).message : ''), ['full', 'nonce 1 used'])
    t.is(await f.ledger.deal(dealId(3)), undefined)
    const seen: Array<string | undefined> = []
    await f.ledger.appendAll([{ kind: 'deal-active', fields: { deal: dealId(1) }, guard: async (view) => { seen.push((await view.deal(dealId(1).toString()))?.state) } }])
    t.deepEqual(seen, ['accepted'])
    t.like(await f.ledger.verify(), { entries: 3 })
  })

  it('an edited index and a missing entry are caught by verify', async (t, f) => {
    await f.ledger.append('deal-proposed', { deal: dealId(1), provider })
    await f.ledger.append('deal-accepted', { deal: dealId(1) })
    await f.ledger.append('deal-active', { deal: dealId(1) })
    const store = f.state
    const deal = await f.state.get(spaces.ledgerDeals, dealId(1).toString())
    if (deal === undefined) throw new Error('the deal index has no record of deal 1')
    await store.batch([{ type: 'put', space: spaces.ledgerDeals, key: dealId(2).toString(), value: deal }])
    const err = await t.throwsAsync(f.ledger.verify())
    t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
    t.is((err as { details?: { index?: string } }).details?.index, 'deals')
    await store.batch([{ type: 'del', space: spaces.ledgerDeals, key: dealId(2).toString() }, { type: 'del', space: spaces.ledgerEntries, key: seqKey(2) }])
    const gap = await t.throwsAsync(f.ledger.verify())
    t.is((gap as { code?: string }).code, 'ERR_LEDGER_BROKEN')
    t.regex(gap!.message, /entry 2 is missing/)
  })
}
