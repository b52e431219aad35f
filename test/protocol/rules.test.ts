import test from 'ava'
import type { CID } from 'multiformats/cid'
import { dealIdOf, signProposal } from '../../src/protocol/proposal.js'
import { checkProposal, dealPrice, faultFee, periodPayment, requiredCollateral, type ProviderState } from '../../src/protocol/rules.js'
import type { Ask, Proposal } from '../../src/protocol/interface.js'
import { sign, Tag } from '../../src/protocol/signing.js'
import { codes } from '../../src/errors.js'
import { askFor, DAY, newSigner, NOW, proposalFor } from './fixtures.js'
import { rejectsCode } from '../helpers/errors.js'

const client = newSigner()
const provider = newSigner()

function state (overrides: Partial<ProviderState> = {}): ProviderState {
  return { freeCapacity: 1n << 40n, hasDeal: () => false, hasNonce: () => false, ...overrides }
}

async function check (proposal: Partial<Proposal>, ask: Partial<Ask> = {}, providerState = state()) {
  const signed = signProposal(client, proposalFor(client, provider, proposal))
  return await checkProposal(signed, askFor(provider, ask), providerState, { now: NOW })
}

test('a proposal within the ask is accepted and named by its deal id', async t => {
  const { dealId, signed } = await check({})
  t.true(dealId.equals(dealIdOf(signed)))
})

const rejections: Array<[string, Partial<Proposal>, Partial<Ask>?, Partial<ProviderState>?, RegExp?]> = [
  ['ERR_PRICE_TOO_LOW', { pricePerGiBDay: 10n }, {}, {}, /^offered 10 per GiB per day, provider asks at least 40$/],
  ['ERR_PIECE_TOO_SMALL', {}, { minPieceSize: 2048n }, {}, /1024 bytes.*at least 2048 bytes/],
  ['ERR_PIECE_TOO_LARGE', {}, { maxPieceSize: 512n, minPieceSize: 128n }, {}, /1024 bytes.*at most 512 bytes/],
  ['ERR_PIECE_SIZE_MISMATCH', { pieceSize: 2048n }, {}, {}, /2048 bytes.*1024 bytes/],
  ['ERR_PIECE_SIZE_MISMATCH', { payloadSize: 1001n }, {}, {}, /1001 bytes.*1000 bytes/],
  ['ERR_DURATION_TOO_LONG', { end: NOW + 60 + 600 * DAY }, {}, {}, /51840000 s.*at most 46656000 s/],
  ['ERR_DURATION_TOO_SHORT', { end: NOW + 60 + 3600 }, {}, {}, /3600 s.*86400 s/],
  ['ERR_INSUFFICIENT_CAPACITY', {}, {}, { freeCapacity: 1000n }, /1024 bytes.*1000 bytes free/],
  ['ERR_START_IN_PAST', { start: NOW - 3600 }, {}, {}, /3600 s ago/],
  ['ERR_PROPOSAL_EXPIRED', { start: NOW - 10 * DAY, end: NOW - DAY }, {}, {}, /ends at/],
  ['ERR_ASK_EXPIRED', {}, { expiry: NOW - 1 }, {}],
  ['ERR_WRONG_PROVIDER', { provider: newSigner().did }, {}, {}],
  ['ERR_REPLAYED_DEAL', {}, {}, { hasDeal: () => true }],
  ['ERR_REPLAYED_NONCE', {}, {}, { hasNonce: async (c, n) => c === client.did && n === 1n }],
  ['ERR_LABEL_TOO_LONG', { label: 'é'.repeat(129) }, {}, {}, /258 bytes, at most 256 bytes/],
  ['ERR_COLLATERAL_TOO_LOW', { providerCollateral: 1000n }, {}, {}, /1000.*1024/],
  ['ERR_COLLATERAL_TOO_HIGH', { providerCollateral: 5000n }, {}, {}, /5000.*1024/],
  ['ERR_PROVING_PERIOD_TOO_SHORT', { provingPeriod: 3600 }, {}, {}, /3600 s.*86400 s/],
  ['ERR_TOO_MANY_CHALLENGES', { challenges: 64 }, {}, {}, /64 challenges.*at most 16/]
]

for (const [code, proposal, ask, providerState, message] of rejections) {
  test(`${code}: ${JSON.stringify(proposal, (_k, v) => typeof v === 'bigint' ? `${v}` : v)} against ${JSON.stringify(ask ?? {}, (_k, v) => typeof v === 'bigint' ? `${v}` : v)}`, async t => {
    const err = await t.throwsAsync(check(proposal, ask, state(providerState)))
    t.is((err as { code?: string }).code, code)
    t.is(codes[code as keyof typeof codes], 'refused')
    if (message !== undefined) t.regex(err!.message, message)
  })
}

test('a label of exactly 256 bytes is allowed', async t => {
  await t.notThrowsAsync(check({ label: 'x'.repeat(256) }))
})

test('a start within the clock skew is allowed', async t => {
  await t.notThrowsAsync(check({ start: NOW - 30 }))
})

test('ERR_BAD_SIGNATURE: a proposal whose signature does not cover its payload', async t => {
  const signed = signProposal(client, proposalFor(client, provider))
  const forged = { ...signed, payload: { ...signed.payload, pricePerGiBDay: 1000n } }
  await rejectsCode(t, checkProposal(forged, askFor(provider), state(), { now: NOW }), 'ERR_BAD_SIGNATURE')
})

test('ERR_WRONG_SIGNER: a proposal signed by someone other than its client', async t => {
  const mallory = newSigner()
  const signed = sign(mallory, Tag.proposal, proposalFor(client, provider))
  await rejectsCode(t, checkProposal(signed, askFor(provider), state(), { now: NOW }), 'ERR_WRONG_SIGNER')
})

test('ERR_INVALID_MESSAGE: a proposal with an unknown field', async t => {
  const signed = sign(client, Tag.proposal, { ...proposalFor(client, provider), tip: 5n })
  await rejectsCode(t, checkProposal(signed, askFor(provider), state(), { now: NOW }), 'ERR_INVALID_MESSAGE')
})

test('replay checks see the deal id the provider will record', async t => {
  const seen: CID[] = []
  await check({}, {}, state({ hasDeal: (id) => { seen.push(id); return false } }))
  const { dealId } = await check({})
  t.true(seen[0].equals(dealId))
})

test('docs/protocol.md "Amounts": a period earns price × GiB × days; a fault costs twice that; collateral rounds up', t => {
  const p = { pricePerGiBDay: 40n, pieceSize: 1n << 30n, provingPeriod: DAY, start: 0, end: 10 * DAY }
  t.is(periodPayment(p), 40n)
  t.is(faultFee(p), 80n)
  t.is(dealPrice(p), 400n)
  t.is(periodPayment({ ...p, pieceSize: 1n << 29n, provingPeriod: DAY / 2 }), 10n)
  t.is(requiredCollateral(3n, 1n), 1n)
  t.is(requiredCollateral(1n << 20n, 1024n), 1n)
})
