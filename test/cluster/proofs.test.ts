/**
 * A proof request sent to a node that does not hold the deal's piece: the
 * node has a holder compute the proof over the internal endpoint
 * (src/cluster/proofs.ts), checks it against the piece CID, signs and answers
 * — and keeps no copy of the piece. A holder whose proof does not verify is
 * never passed on; the endpoint refuses requests not signed with the cluster's
 * secret.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import { addToRepo } from '../../src/client/content.js'
import { makeDeal } from '../../src/client/deal.js'
import { loadDeal, type AuditDeal } from '../../src/client/audit.js'
import { generateClusterSecret, parseClusterSecret } from '../../src/cluster/auth.js'
import { readRemoteProof } from '../../src/cluster/proofs.js'
import { CairnError } from '../../src/errors.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { signProofRequest } from '../../src/protocol/proof-request.js'
import { verifyProofAnswer } from '../../src/protocol/proof.js'
import type { ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { spaces } from '../../src/state/spaces.js'
import { tempDir } from '../helpers/cli.js'
import { flippingHolder, twoProviderNodes, until } from './helpers.js'

interface Client { repo: Repo, ledger: LevelLedger, close: () => Promise<void> }

async function client (): Promise<Client> {
  const dir = await tempDir('cairn-cluster-proof-client-')
  const repo = await Repo.init(join(dir.path, 'client'))
  const ledger = await LevelLedger.open(await repo.db(), repo.identity)
  return { repo, ledger, close: async () => { await repo.close(); await dir.cleanup() } }
}

/** A deal made with `provider` for a fresh sample of random bytes, through to active. */
async function dealWith (c: Client, provider: ProviderNode, bytes: number): Promise<AuditDeal> {
  const sample = join(c.repo.path, `sample-${randomBytes(4).toString('hex')}`)
  await mkdir(sample, { recursive: true })
  await writeFile(join(sample, 'data.bin'), randomBytes(bytes))
  const added = await addToRepo(c.repo, [sample])
  const made = await makeDeal({ repo: c.repo, ledger: c.ledger, pollIntervalMs: 20 }, added.root, provider.url, { duration: 86400, challenges: 16, maxPrice: provider.terms.pricePerGiBDay, startDelay: 0 })
  return await loadDeal(c.ledger, made.id)
}

/** POST /v1/deals/{id}/proofs for 16 challenges, as an audit sends it: the status, and the parsed body. */
async function askProof (c: Client, node: ProviderNode, deal: AuditDeal, seed: Uint8Array): Promise<{ status: number, body: unknown }> {
  const signed = signProofRequest(c.repo.identity, { dealId: deal.id, seed, count: 16, at: Math.floor(Date.now() / 1000), head: c.ledger.head() })
  const res = await fetch(`${node.url}/v1/deals/${deal.id.toString()}/proofs`, { method: 'POST', body: dagJson.encode(signed), headers: { 'content-type': 'application/json' } })
  return { status: res.status, body: dagJson.decode(new Uint8Array(await res.arrayBuffer())) }
}

const absent = async (path: string): Promise<boolean> => await access(path).then(() => false, () => true)

test('a node without the piece answers a proof of 16 challenges that verifies, and stores no copy; the internal endpoint refuses unsigned requests', async (t) => {
  // one copy: no copy task brings the piece to B behind the test's back
  const { a, b, close } = await twoProviderNodes('cairn-cluster-proof-', 1)
  t.teardown(close)
  const c = await client()
  t.teardown(c.close)
  const deal = await dealWith(c, a, 300_000)
  const piece = deal.proposal.pieceCid.toString()
  t.true(await b.store.has(piece) === false, 'the piece is on A only')

  const seed = new Uint8Array(randomBytes(32))
  const answer = await askProof(c, b, deal, seed)
  t.is(answer.status, 200)
  const proof = verifyProofAnswer(answer.body, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: a.repo.identity.did, seed, count: 16, witnessed: true })
  t.is(proof.payload.proofs.length, 16)

  // nothing of the piece was written on B: no file, no layer cache, no location
  t.false(await b.store.has(piece))
  t.true(await absent(b.store.path(piece)))
  t.true(await absent(join(b.store.dir, `${piece}.layers`)))
  t.is(await b.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`), undefined)

  // the internal endpoint: unsigned, or signed with another secret, is refused with its code
  const path = `/internal/v1/proofs/${piece}?deal=${deal.id.toString()}&seed=${Buffer.from(seed).toString('hex')}&count=16`
  const unsigned = await fetch(a.url + path)
  t.is(unsigned.status, 403)
  t.is(((await unsigned.json()) as { error: { code: string } }).error.code, 'ERR_CLUSTER_AUTH')
  const challenge = { dealId: deal.id, seed, count: 16 }
  const other = parseClusterSecret(generateClusterSecret())
  await t.throwsAsync(readRemoteProof(a.url, deal.proposal.pieceCid, challenge, { secret: other, node: 'intruder' }), { instanceOf: CairnError, code: 'ERR_CLUSTER_AUTH' })
  // signed with the cluster's secret: answered by the holder, refused by a node without the piece, bounded in count
  const secret = a.cluster!.state.secret
  t.is((await readRemoteProof(a.url, deal.proposal.pieceCid, challenge, { secret, node: 'b' })).length, 16)
  await t.throwsAsync(readRemoteProof(b.url, deal.proposal.pieceCid, challenge, { secret, node: 'a' }), { instanceOf: CairnError, code: 'ERR_PIECE_NOT_FOUND' })
  await t.throwsAsync(readRemoteProof(a.url, deal.proposal.pieceCid, { ...challenge, count: 5000 }, { secret, node: 'b' }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
})

test('a holder whose proof does not verify is not passed on: the next holder is asked, else ERR_CLUSTER_BAD_PROOF; no holder is ERR_PIECE_NOT_FOUND', async (t) => {
  const { a, b, close } = await twoProviderNodes('cairn-cluster-bad-proof-', 1)
  t.teardown(close)
  const c = await client()
  t.teardown(c.close)
  const deal = await dealWith(c, a, 300_000)
  const piece = deal.proposal.pieceCid.toString()

  // a fake holder asked first: passes each request on to A and flips a bit of the fourth leaf of the answer
  const fake = await flippingHolder(t, a, b, piece, 3)

  // A holds it too: B asks the fake first, finds its proof bad, and answers with A's
  const seed = new Uint8Array(randomBytes(32))
  const good = await askProof(c, b, deal, seed)
  t.is(good.status, 200)
  t.is(fake.asked(), 1)
  t.notThrows(() => verifyProofAnswer(good.body, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: a.repo.identity.did, seed, count: 16 }))
  // and the fake's copy gets scrubbed (by whichever node claims the task)
  await until(async () => (await b.cluster!.state.state.get(spaces.scrubs, `${piece}/fake`)) !== undefined, 'the fake holder\'s copy is scrubbed', 30_000)

  // only the fake holds it: its bad proof is refused with a code, not signed
  await b.cluster!.state.state.batch([{ type: 'del', space: spaces.pieceLocations, key: `${piece}/a` }])
  const bad = await askProof(c, b, deal, new Uint8Array(randomBytes(32)))
  t.is(bad.status, 422)
  t.is((bad.body as { error: { code: string } }).error.code, 'ERR_CLUSTER_BAD_PROOF')
  t.is(fake.asked(), 2)

  // no live node holds it: not found — and B does not report a piece it never had as corrupt
  await b.cluster!.state.state.batch([{ type: 'del', space: spaces.pieceLocations, key: `${piece}/fake` }])
  const none = await askProof(c, b, deal, new Uint8Array(randomBytes(32)))
  t.is(none.status, 404)
  t.is((none.body as { error: { code: string } }).error.code, 'ERR_PIECE_NOT_FOUND')
  t.true(await b.store.has(piece) === false)
})
