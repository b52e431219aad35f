/**
 * The provider's side of SPEC §4: `POST /v1/deals/{id}/proofs` answers with a
 * provider-signed proof that verifies against the piece CID alone; the layer
 * cache is written beside the piece when it is stored and rebuilt when it is
 * missing or corrupt; bad requests get their codes.
 */
import test from 'ava'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import * as dagJson from '@ipld/dag-json'
import { verifyProofAnswer } from '../../src/client/audit.js'
import { world, seed } from './helpers.js'

async function post (url: string, id: string, body: unknown): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`${url}/v1/deals/${id}/proofs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJson.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: res.status === 200 ? dagJson.parse(text) : JSON.parse(text) }
}

test('an honest proof verifies, signed by the provider and echoing the challenge; proofsAnswered counts it', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const p = w.providers[0]
    const s = seed()
    const res = await post(p.url, deal.id.toString(), { seed: s, count: 16 })
    t.is(res.status, 200)
    const proof = verifyProofAnswer(res.body, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: deal.provider, seed: s, count: 16 })
    t.is(proof.payload.proofs.length, 16)
    t.is(proof.payload.proofs[0]?.path.length, 32 * Math.log2(Number(deal.proposal.pieceSize) / 32))
    t.is(p?.node.proofsAnswered, 1)
    t.is((await p?.node.admin().status())?.proofsAnswered, 1)
  } finally {
    await w.cleanup()
  }
})

test('challenge bounds: count above 1024, zero, a short seed, unknown fields are ERR_INVALID_ARGUMENT; unknown deal ERR_DEAL_NOT_FOUND', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const url = w.providers[0]?.url as string
    const id = deal.id.toString()
    for (const body of [{ seed: seed(), count: 1025 }, { seed: seed(), count: 0 }, { seed: new Uint8Array(31), count: 1 }, { seed: seed(), count: 1, extra: 1 }, { seed: 'x', count: 1 }]) {
      const res = await post(url, id, body)
      t.is(res.status, 400)
      t.is((res.body as { error: { code: string } }).error.code, 'ERR_INVALID_ARGUMENT')
    }
    t.is((await post(url, id, { seed: seed(), count: 1024 })).status, 200)
    const other = await post(url, 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', { seed: seed(), count: 1 })
    t.is((other.body as { error: { code: string } }).error.code, 'ERR_DEAL_NOT_FOUND')
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
      const res = await post(p.url, deal.id.toString(), { seed: s, count: 16 })
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
