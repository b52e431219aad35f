/**
 * The deals view (src/ledger/deals.ts): one fold of a deal's entries that
 * every "my deals" reader uses.
 */
import test from 'ava'
import { dealIdsWith, dealView, dealViews, proposalOf } from '../../src/ledger/deals.js'
import { dealId, openLedger, provider } from './helpers.js'

const signed = { payload: { not: 'a proposal' }, signer: provider, signature: new Uint8Array(64) }

test('a deal\'s view: its proposed entry, newest endpoint, first failure and entries oldest first', async (t) => {
  const f = await openLedger()
  try {
    const id = dealId(1)
    await f.ledger.append('deal-proposed', { deal: id, provider, endpoint: 'http://127.0.0.1:1', proposal: signed })
    await f.ledger.append('deal-accepted', { deal: id, provider })
    await f.ledger.append('deal-active', { deal: id, provider, endpoint: 'http://127.0.0.1:2' })
    await f.ledger.append('deal-failed', { deal: id, provider, code: 'ERR_TOO_MANY_FAULTS', message: 'first' })
    await f.ledger.append('deal-proposed', { deal: dealId(2), provider, endpoint: 'http://127.0.0.1:3' })
    const view = await dealView(f.ledger, id.toString())
    if (view === undefined) return t.fail('no view')
    t.true(view.id.equals(id))
    t.is(view.record.state, 'failed')
    t.is(view.endpoint, 'http://127.0.0.1:2')
    t.is(view.proposed?.fields.endpoint, 'http://127.0.0.1:1')
    t.is(view.failure?.fields.code, 'ERR_TOO_MANY_FAULTS')
    t.deepEqual(view.entries.map(e => e.kind), ['deal-proposed', 'deal-accepted', 'deal-active', 'deal-failed'])
    t.deepEqual(view.signedProposal, signed)
    // a stored proposal that is not one is refused when read, with the protocol's code
    t.is((() => { try { proposalOf(view); return 'parsed' } catch (err) { return (err as { code?: string }).code } })(), 'ERR_INVALID_MESSAGE')
    t.is(await dealView(f.ledger, dealId(9)), undefined)
    t.deepEqual((await dealIdsWith(f.ledger, 'deal-proposed')).map(String), [dealId(2), id].map(String))
    const ids: string[] = []
    for await (const v of dealViews(f.ledger, 'deal-active')) ids.push(v.id.toString())
    t.deepEqual(ids, [id.toString()])
  } finally {
    await f.cleanup()
  }
})
