/**
 * Audits (docs/protocol.md "Proofs") against real providers on loopback: honest proofs pass and
 * pay (docs/ledger.md); lost or changed data fails; every way a proof can be wrong
 * fails with its own code; silence is `unknown`, then a miss; three faults in
 * a row fail the deal, with fault fees capped at the pledged collateral.
 */
import test from 'ava'
import { readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { parsePieceCid, challengeIndices } from '../../proofs/index.js'
import { auditDeal, verifyProofEntry, type AuditDeal, type AuditOptions } from '../../src/client/audit.js'
import { faultFee, periodPayment, requiredCollateral } from '../../src/protocol/rules.js'
import type { SignedProofRequest } from '../../src/protocol/interface.js'
import { sign, Tag, type Signed } from '../../src/protocol/signing.js'
import { answerChallenge, signProof, type ProofPayload } from '../../src/provider/proofs.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { entries, seed, world, type TestProvider, type World } from './helpers.js'
import { throwsCode } from '../helpers/errors.js'

const fast: AuditOptions = { timeoutMs: 5000, retries: 2, backoffMs: 50 }

function piecePath (p: TestProvider, deal: AuditDeal): string {
  return p.store.path(deal.proposal.pieceCid.toString())
}

test('an honest provider passes; the period is paid once, floor(price × GiB × days); ledger verify re-checks the stored proof', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const r = await auditDeal(w.ctx, deal, { ...fast, period: 0 })
    t.is(r.outcome, 'passed', r.message)
    t.true(r.counted)
    t.deepEqual(r.settlement, { kind: 'payment-accrued', period: 0, amount: periodPayment(deal.proposal), dealFailed: false })
    // floor(price × padded bytes / 2^30 × period / 86400 s), in base units
    const exact = deal.proposal.pricePerGiBDay * deal.proposal.pieceSize * BigInt(deal.proposal.provingPeriod)
    const amount = periodPayment(deal.proposal)
    t.true(amount > 0n)
    t.true(amount * (1n << 30n) * 86400n <= exact && exact < (amount + 1n) * (1n << 30n) * 86400n)
    // a second audit of the same period is evidence, not money
    const again = await auditDeal(w.ctx, deal, { ...fast, period: 0 })
    t.is(again.outcome, 'passed')
    t.false(again.counted)
    t.is(again.settlement, undefined)
    const kinds = (await entries(w.client.ledger, undefined, deal.id.toString())).map(e => e.kind)
    t.deepEqual(kinds.slice(3), ['challenge-issued', 'proof-passed', 'payment-accrued', 'challenge-issued', 'proof-passed'])
    const [balance] = await w.client.ledger.balance()
    t.is(balance?.counterparty, deal.provider)
    t.is(balance?.paid, periodPayment(deal.proposal))
    t.is(balance?.outstanding, -periodPayment(deal.proposal))
    t.is((await w.client.ledger.deal(deal.id))?.passed, 2)
    t.is((await w.client.ledger.verify({ verifyEntry: verifyProofEntry })).entries, kinds.length)
    // the hook rejects a stored proof that does not answer its recorded seed
    const passed = (await entries(w.client.ledger, 'proof-passed'))[0]
    if (passed === undefined) throw new Error('no proof-passed entry')
    const entry = { kind: 'proof-passed', fields: { ...passed.fields, seed: seed() } } as unknown as Parameters<typeof verifyProofEntry>[0]
    throwsCode(t, () => { verifyProofEntry(entry) }, 'ERR_PROOF_SEED_MISMATCH')
  } finally {
    await w.cleanup()
  }
})

/** A seed whose single challenged leaf satisfies `hit`. */
function seedWhere (deal: AuditDeal, hit: (index: number) => boolean): Uint8Array {
  const piece = parsePieceCid(deal.proposal.pieceCid)
  for (let i = 0; i < 10_000; i++) {
    const s = seed()
    if (hit(challengeIndices({ dealId: deal.id, seed: s, count: 1 }, piece)[0] as number)) return s
  }
  throw new Error('no seed found')
}

test('one changed byte fails the audit that challenges its leaf, and only that one', async (t) => {
  // cache level 2: the provider checks each 4-leaf quad (127 payload bytes) against its tree
  const w = await world(1, { prover: { cacheLevel: 2 } })
  try {
    const deal = await w.deal(0, { bytes: 3000 })
    const p = w.providers[0] as TestProvider
    const path = piecePath(p, deal)
    const bytes = new Uint8Array(await readFile(path))
    const at = 1000
    const quad = Math.floor(at / 127)
    bytes[at] ^= 0x01
    await writeFile(path, bytes)
    const elsewhere = await auditDeal(w.ctx, deal, { ...fast, challenges: 1, seed: () => seedWhere(deal, i => Math.floor(i / 4) !== quad) })
    t.is(elsewhere.outcome, 'passed', elsewhere.message)
    const onIt = await auditDeal(w.ctx, deal, { ...fast, challenges: 1, seed: () => seedWhere(deal, i => Math.floor(i / 4) === quad) })
    t.is(onIt.outcome, 'failed')
    t.is(onIt.code, 'ERR_PROOF_REFUSED')
    const failed = (await entries(w.client.ledger, 'proof-failed'))[0]
    t.is(failed?.fields.providerCode, 'ERR_PIECE_CORRUPT')
  } finally {
    await w.cleanup()
  }
})

test('statistically: with every leaf challenged, a change anywhere in a small piece is always caught', async (t) => {
  const w = await world(1, { prover: { cacheLevel: 2 } })
  try {
    const deal = await w.deal(0, { bytes: 2000, challenges: 1024 })
    const path = piecePath(w.providers[0] as TestProvider, deal)
    const original = new Uint8Array(await readFile(path))
    for (let trial = 0; trial < 12; trial++) {
      const at = Math.floor(Math.random() * original.length)
      const changed = new Uint8Array(original)
      changed[at] ^= 1 << (trial % 8)
      await writeFile(path, changed)
      const r = await auditDeal(w.ctx, deal, { ...fast, challenges: 1024 })
      t.is(r.outcome, 'failed', `byte ${at} changed and not caught`)
    }
    await writeFile(path, original)
    t.is((await auditDeal(w.ctx, deal, { ...fast, challenges: 1024 })).outcome, 'passed')
  } finally {
    await w.cleanup()
  }
})

test('a deleted or truncated piece fails the next audit', async (t) => {
  const w = await world(1)
  try {
    const a = await w.deal(0, { bytes: 70_000 })
    const b = await w.deal(0, { bytes: 70_000 })
    const p = w.providers[0] as TestProvider
    await truncate(piecePath(p, a), 1000)
    await rm(piecePath(p, b))
    for (const deal of [a, b]) {
      const r = await auditDeal(w.ctx, deal, { ...fast, challenges: 64 })
      t.is(r.outcome, 'failed')
      t.is(r.code, 'ERR_PROOF_REFUSED')
    }
  } finally {
    await w.cleanup()
  }
})

type Tamper = (answer: Signed<ProofPayload>, ctx: { w: World, p: TestProvider, body: unknown, other: AuditDeal, deal: AuditDeal }) => Promise<unknown> | unknown

function resign (p: TestProvider, payload: ProofPayload): Signed<ProofPayload> {
  return signProof(p.repo.identity, payload)
}

/** The challenge of a signed proof request, as the provider reads it. */
function challengeOf (body: unknown): { seed: Uint8Array, count: number } {
  const { seed, count } = (body as SignedProofRequest).payload
  return { seed, count }
}

const tampers: Record<string, Tamper> = {
  ERR_PROOF_WRONG_PIECE: async (a, { p, body, other, deal }) => await answerChallenge(p.node.prover, p.repo.identity, { dealId: deal.id, pieceCid: other.proposal.pieceCid }, challengeOf(body), 1, a.payload.head),
  ERR_PROOF_WRONG_DEAL: async (a, { p, body, other }) => await answerChallenge(p.node.prover, p.repo.identity, { dealId: other.id, pieceCid: other.proposal.pieceCid }, challengeOf(body), 1, a.payload.head),
  ERR_PROOF_ROOT_MISMATCH: (a, { p }) => {
    const proofs = a.payload.proofs.map(x => ({ ...x, path: x.path.slice() }))
    ;(proofs[0]?.path as Uint8Array)[3 * 32] ^= 1 // the fourth sibling of the first leaf
    return resign(p, { ...a.payload, proofs })
  },
  ERR_PROOF_COUNT_MISMATCH: (a, { p }) => resign(p, { ...a.payload, proofs: a.payload.proofs.slice(1) }),
  ERR_PROOF_MALFORMED: (a, { p }) => resign(p, { ...a.payload, proofs: a.payload.proofs.map(x => ({ ...x, path: x.path.subarray(32) })) }),
  ERR_PROOF_UNSIGNED: (a) => ({ payload: a.payload }),
  ERR_PROOF_WRONG_SIGNER: (a) => sign(identityFromSecret(generateSecretKey()), Tag.proof, a.payload),
  ERR_PROOF_BAD_SIGNATURE: (a) => ({ ...a, signature: a.signature.map((b, i) => i === 5 ? b ^ 1 : b) }),
  ERR_PROOF_LEAF_INDEX: (a, { p }) => resign(p, { ...a.payload, proofs: a.payload.proofs.map(x => ({ ...x, index: x.index + 1 })) })
}

test('each wrong proof fails with its own code: wrong piece, wrong deal, wrong sibling, wrong leaf count, short path, unsigned, wrongly signed, wrong index, replayed', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { bytes: 5000 })
    const other = await w.deal(0, { bytes: 6000 })
    const p = w.providers[0] as TestProvider
    const honest = p.node.prove.bind(p.node)
    let tamper: Tamper | undefined
    let first: unknown
    p.node.prove = async (id, body) => {
      const answer = await honest(id, body) as Signed<ProofPayload>
      first ??= answer
      // a tampered answer need not be a proof at all: the server sends whatever it is given
      return tamper === undefined ? answer : await tamper(answer, { w, p, body, other, deal }) as Signed<ProofPayload>
    }
    const honestRun = await auditDeal(w.ctx, deal, fast)
    t.is(honestRun.outcome, 'passed', honestRun.message)
    for (const [code, fn] of Object.entries(tampers)) {
      tamper = fn
      const r = await auditDeal(w.ctx, deal, fast)
      t.is(r.outcome, 'failed', code)
      t.is(r.code, code, r.message)
    }
    // a replay of the earlier (valid, signed) proof for another seed
    tamper = () => first
    const replay = await auditDeal(w.ctx, deal, fast)
    t.is(replay.code, 'ERR_PROOF_SEED_MISMATCH')
    const codes = (await entries(w.client.ledger, 'proof-failed')).map(e => e.fields.code)
    t.deepEqual(codes, [...Object.keys(tampers), 'ERR_PROOF_SEED_MISMATCH'])
  } finally {
    await w.cleanup()
  }
})

test('a stopped provider is unknown through the retries, then a miss; a proof after the deadline is a miss', async (t) => {
  const w = await world(2)
  try {
    const down = await w.deal(0)
    const slow = await w.deal(1)
    await (w.providers[0] as TestProvider).service.close()
    const seen: string[] = []
    const r = await auditDeal(w.ctx, down, { ...fast, onAttempt: (a) => seen.push(a.outcome) })
    t.deepEqual(seen, ['unknown', 'unknown', 'unknown', 'missed'])
    t.is(r.outcome, 'missed')
    t.is(r.code, 'ERR_PROOF_MISSED')
    const missed = await entries(w.client.ledger, 'proof-missed', down.id.toString())
    t.is(missed[0]?.fields.attempts, 4)

    const p = w.providers[1] as TestProvider
    const honest = p.node.prove.bind(p.node)
    p.node.prove = async (id, body) => { await new Promise(resolve => setTimeout(resolve, 2500)); return await honest(id, body) }
    const late = await auditDeal(w.ctx, slow, { ...fast, timeoutMs: 300 })
    t.is(late.outcome, 'missed')
    t.is(late.attempts.length, 1)
    t.true((late.attempts[0]?.ms ?? Infinity) < 2000, JSON.stringify(late.attempts))
  } finally {
    await w.cleanup()
  }
})

test('faults: each charges twice the period price from the collateral, capped at what is left; the third in a row fails the deal', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const p = w.providers[0] as TestProvider
    const fee = faultFee(deal.proposal)
    const collateral = requiredCollateral(p.terms.collateralPerGiB, deal.proposal.pieceSize)
    t.is(deal.proposal.providerCollateral, collateral)
    t.true(collateral > 2n * fee && collateral < 3n * fee, 'the fixture pledges between two and three fault fees')
    const pay = periodPayment(deal.proposal)
    t.is((await auditDeal(w.ctx, deal, { ...fast, period: 0 })).outcome, 'passed')
    await rm(piecePath(p, deal))
    const amounts: bigint[] = []
    for (const period of [1, 2, 3]) {
      const r = await auditDeal(w.ctx, deal, { ...fast, period })
      t.is(r.outcome, 'failed')
      amounts.push(r.settlement?.amount ?? -1n)
      t.is(r.settlement?.dealFailed, period === 3)
    }
    t.deepEqual(amounts, [fee, fee, collateral - 2n * fee])
    const record = await w.client.ledger.deal(deal.id)
    t.is(record?.state, 'failed')
    t.is(record?.consecutiveFaults, 3)
    const [balance] = await w.client.ledger.balance()
    t.is(balance?.paid, pay)
    t.is(balance?.slashedToUs, collateral)
    t.is(balance?.outstanding, collateral - pay)
    const slashed = await entries(w.client.ledger, 'collateral-slashed')
    t.deepEqual(slashed.map(e => BigInt(e.fields.fee as bigint)), [fee, fee, fee])
  } finally {
    await w.cleanup()
  }
})

test('two audits of the same deal and period at once pay the period once', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const [a, b] = await Promise.all([auditDeal(w.ctx, deal, { ...fast, period: 0 }), auditDeal(w.ctx, deal, { ...fast, period: 0 })])
    t.is(a.outcome, 'passed')
    t.is(b.outcome, 'passed')
    t.deepEqual([a.counted, b.counted].sort(), [false, true])
    t.is((await entries(w.client.ledger, 'payment-accrued')).length, 1)
  } finally {
    await w.cleanup()
  }
})
