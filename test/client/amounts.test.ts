/**
 * Amounts are bounded when a deal is made, on both sides: a provider asking
 * 2^64−1 per GiB per day is never offered its ask by a client without
 * --max-price (the default ceiling applies), a proposal whose price × size ×
 * duration is too large is refused by the client before it is sent and by the
 * provider if it arrives (ERR_AMOUNT_TOO_LARGE), and a payment that cannot be
 * recorded takes its proof result with it: neither is committed.
 */
import test from 'ava'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import { addToRepo } from '../../src/client/content.js'
import { auditDeal, loadDeal } from '../../src/client/audit.js'
import { DEFAULT_MAX_PRICE, makeDeal } from '../../src/client/deal.js'
import { checkTerms, MAX_DEAL_AMOUNT } from '../../src/protocol/rules.js'
import { signProposal } from '../../src/protocol/proposal.js'
import { U64_MAX } from '../../src/protocol/validate.js'
import { entries, world as auditWorld } from '../audit/helpers.js'
import { askFor, newSigner, NOW, proposalFor } from '../protocol/fixtures.js'
import { pieceOfSize } from '../provider/fixtures.js'
import { sampleTree, world } from './helpers.js'

test('price × size × duration beyond the bound is ERR_AMOUNT_TOO_LARGE (the deal rules, both sides)', (t) => {
  const client = newSigner()
  const provider = newSigner()
  const ask = askFor(provider, { pricePerGiBDay: U64_MAX, expiry: NOW + 3600 })
  const big = { ...pieceOfSize(1n << 30n), pricePerGiBDay: U64_MAX, providerCollateral: 1n << 30n }
  const err = t.throws(() => { checkTerms(proposalFor(client, provider, big), ask, NOW) })
  t.is((err as { code?: string }).code, 'ERR_AMOUNT_TOO_LARGE')
  t.regex(err!.message, /the deal would cost \d+ base units .*; less than 4611686018427387904 is allowed/)
  t.is(MAX_DEAL_AMOUNT, 1n << 62n)
  t.notThrows(() => { checkTerms(proposalFor(client, provider, { pricePerGiBDay: 1n << 40n, providerCollateral: 1024n }), askFor(provider, { pricePerGiBDay: 1n << 40n, expiry: NOW + 3600 }), NOW) })
})

test('a provider asking 2^64−1: a client without --max-price offers its ceiling, not the ask; with it, the client refuses before proposing; the provider refuses such a proposal', async (t) => {
  const w = await world({ pricePerGiBDay: U64_MAX })
  t.teardown(w.cleanup)
  // a 4 MiB piece: at 2^64−1 per GiB per day, 400 days cost far more than the bound
  const added = await addToRepo(w.client.repo, [await sampleTree(join(w.dir, 'sample'))])
  const ceiling = await t.throwsAsync(makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 30 }))
  t.is((ceiling as { code?: string }).code, 'ERR_PRICE_TOO_LOW')
  t.regex(ceiling!.message, new RegExp(`offered ${DEFAULT_MAX_PRICE} per GiB per day`))
  const before = w.client.ledger.head()?.seq
  const huge = await t.throwsAsync(makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 400, maxPrice: U64_MAX }))
  t.is((huge as { code?: string }).code, 'ERR_AMOUNT_TOO_LARGE')
  t.is(w.client.ledger.head()?.seq, before, 'nothing was proposed or recorded')
  // a proposal made by hand at the ask
  const ask = (await (await fetch(`${w.provider.url}/v1/ask`)).text())
  const { payload } = dagJSON.parse(ask) as { payload: { provider: string } }
  const client = newSigner()
  const now = Math.floor(Date.now() / 1000)
  const signed = signProposal(client, { ...proposalFor(client, newSigner(), { ...pieceOfSize(1n << 30n), provider: payload.provider, start: now + 600, end: now + 600 + 300 * 86400, pricePerGiBDay: U64_MAX, providerCollateral: 0n, provingPeriod: 86400 }), head: null })
  const res = await fetch(`${w.provider.url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(signed) })
  t.is(res.status, 403)
  t.is(((await res.json()) as { error: { code: string } }).error.code, 'ERR_AMOUNT_TOO_LARGE')
})

test('a period whose payment cannot be recorded leaves its proof result unrecorded too', async (t) => {
  const w = await auditWorld(1)
  t.teardown(w.cleanup)
  const made = await w.deal(0, { provingPeriod: 600 })
  // a deal made before amounts were bounded: one period costs more than a ledger entry holds
  const deal = await loadDeal(w.client.ledger, made.id)
  deal.proposal = { ...deal.proposal, pricePerGiBDay: U64_MAX, pieceSize: 1n << 30n, provingPeriod: 86400 * 30, end: deal.proposal.start + 86400 * 60 }
  const kinds = async (): Promise<string[]> => (await entries(w.client.ledger, undefined, deal.id.toString())).map(e => e.kind)
  const before = await kinds()
  const err = await t.throwsAsync(auditDeal(w.ctx, deal, { timeoutMs: 5000, period: 0 }))
  t.is((err as { code?: string }).code, 'ERR_AMOUNT_TOO_LARGE')
  const after = await kinds()
  t.deepEqual(after.slice(before.length), ['challenge-issued'], 'the challenge is recorded; no proof result without its payment')
  t.deepEqual(await w.client.ledger.balance(), [])
  t.true((await w.client.ledger.verify()).entries > 0)
})
