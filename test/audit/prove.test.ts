/**
 * The provider's side of proofs of storage: `POST /v1/deals/{id}/proofs` answers the
 * deal's client's signed request with a provider-signed proof that verifies
 * against the piece CID alone and carries the provider's ledger head; the
 * layer cache is written beside the piece when it is stored and rebuilt when
 * it is missing or corrupt; bad, foreign, oversized, stale and too frequent
 * requests get their codes.
 */
import test from 'ava'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import * as dagJson from '@ipld/dag-json'
import { verifyProofAnswer } from '../../src/protocol/proof.js'
import { sign, Tag } from '../../src/protocol/signing.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { proofRequest, world, seed } from './helpers.js'

async function post (url: string, id: string, body: unknown): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`${url}/v1/deals/${id}/proofs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJson.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: res.status === 200 ? dagJson.parse(text) : JSON.parse(text) }
}

test('an honest proof verifies, signed by the provider and echoing the challenge; the provider records the request and its head is in the proof', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const p = w.providers[0]
    if (p === undefined) throw new Error('no provider')
    const s = seed()
    const res = await post(p.url, deal.id.toString(), proofRequest(w, deal, 16, { seed: s }))
    t.is(res.status, 200)
    const proof = verifyProofAnswer(res.body, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: deal.provider, seed: s, count: 16, witnessed: true })
    t.is(proof.payload.proofs.length, 16)
    t.is(proof.payload.proofs[0]?.path.length, 32 * Math.log2(Number(deal.proposal.pieceSize) / 32))
    const head = p.ledger.head()
    t.deepEqual(proof.payload.head, head, 'the proof carries the head of the entry that records the request')
    const answered = await p.ledger.get(head!.seq)
    t.is(answered?.kind, 'proof-answered')
    t.is((answered?.fields.request as { signer: string }).signer, w.client.repo.identity.did)
    t.is((await p.node.admin().status()).proofsAnswered, 1)
  } finally {
    await w.cleanup()
  }
})

test('challenge bounds: malformed requests are ERR_INVALID_ARGUMENT, more than the deal\'s challenges ERR_TOO_MANY_CHALLENGES, unknown deal ERR_DEAL_NOT_FOUND', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { challenges: 16 })
    const url = w.providers[0]?.url as string
    const id = deal.id.toString()
    const client = w.client.repo.identity
    const valid = proofRequest(w, deal, 1).payload
    for (const payload of [{ ...valid, count: 1025 }, { ...valid, count: 0 }, { ...valid, seed: new Uint8Array(31) }, { ...valid, extra: 1 }, { ...valid, seed: 'x' }, { ...valid, count: 1.5 }]) {
      const res = await post(url, id, sign(client, Tag.proofRequest, payload))
      t.is(res.status, 400, JSON.stringify(res.body))
      t.is((res.body as { error: { code: string } }).error.code, 'ERR_INVALID_ARGUMENT')
    }
    const many = await post(url, id, proofRequest(w, deal, 17))
    t.is((many.body as { error: { code: string } }).error.code, 'ERR_TOO_MANY_CHALLENGES')
    t.is((await post(url, id, proofRequest(w, deal, 16))).status, 200)
    const other = await post(url, 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', proofRequest(w, deal, 1))
    t.is((other.body as { error: { code: string } }).error.code, 'ERR_DEAL_NOT_FOUND')
  } finally {
    await w.cleanup()
  }
})

test('only the deal\'s client gets proofs: unsigned, foreign and forged requests are ERR_UNAUTHORIZED; a stale one ERR_REQUEST_EXPIRED', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { challenges: 16 })
    const url = w.providers[0]?.url as string
    const id = deal.id.toString()
    const code = (res: { body: unknown }): string => (res.body as { error: { code: string } }).error.code
    const unsigned = await post(url, id, { seed: seed(), count: 16 })
    t.is(unsigned.status, 401)
    t.is(code(unsigned), 'ERR_UNAUTHORIZED')
    const stranger = identityFromSecret(generateSecretKey())
    t.is(code(await post(url, id, proofRequest(w, deal, 16, { signer: stranger }))), 'ERR_UNAUTHORIZED')
    const real = proofRequest(w, deal, 16)
    t.is(code(await post(url, id, { ...real, payload: { ...real.payload, count: 8 } })), 'ERR_UNAUTHORIZED')
    t.is(code(await post(url, id, proofRequest(w, deal, 16, { at: Math.floor(Date.now() / 1000) - 3600 }))), 'ERR_REQUEST_EXPIRED')
    t.is((await w.providers[0]!.node.admin().status()).proofsAnswered, 0)
  } finally {
    await w.cleanup()
  }
})

test('proof requests are rate-limited per deal: 429 ERR_RATE_LIMITED past the burst, other deals unaffected', async (t) => {
  const w = await world(1, { prover: { proofRate: { burst: 3, perSecond: 0.001 } } })
  try {
    const deal = await w.deal(0, { challenges: 4 })
    const other = await w.deal(0, { challenges: 4 })
    const url = w.providers[0]?.url as string
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await post(url, deal.id.toString(), proofRequest(w, deal, 4))).status)
    t.deepEqual(statuses, [200, 200, 200, 429, 429])
    const limited = await post(url, deal.id.toString(), proofRequest(w, deal, 4))
    t.is((limited.body as { error: { code: string } }).error.code, 'ERR_RATE_LIMITED')
    t.is((await post(url, other.id.toString(), proofRequest(w, other, 4))).status, 200)
  } finally {
    await w.cleanup()
  }
})

test('layer cache: written beside the piece at store time, rebuilt when deleted or corrupt, and proofs still verify', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { bytes: 200_000 })
    const p = w.providers[0]
    if (p === undefined) throw new Error('no provider')
    const path = p.node.prover.cachePath(deal.proposal.pieceCid.toString())
    const written = await readFile(path)
    t.true(written.length > 0)
    const check = async (): Promise<void> => {
      const s = seed()
      const res = await post(p.url, deal.id.toString(), proofRequest(w, deal, 16, { seed: s }))
      t.is(res.status, 200)
      verifyProofAnswer(res.body, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: deal.provider, seed: s, count: 16 })
    }
    await rm(path)
    p.node.prover.forget()
    await check()
    t.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array(written))
    const corrupt = new Uint8Array(written)
    corrupt[corrupt.length - 1] ^= 1
    await writeFile(path, corrupt)
    p.node.prover.forget()
    await check()
    t.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array(written))
    t.true((await stat(path)).isFile())
  } finally {
    await w.cleanup()
  }
})
