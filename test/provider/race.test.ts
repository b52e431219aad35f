/**
 * Proposals race each other for capacity and nonces: the provider checks and
 * records them one at a time, so of N concurrent proposals exactly the ones
 * that fit are accepted, and every client nonce at most once (over HTTP, on a
 * real repo).
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import type { Proposal } from '../../src/protocol/interface.js'
import { signProposal } from '../../src/protocol/proposal.js'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { Repo } from '../../src/repo/repo.js'
import { proposalOfSize, testTerms } from './fixtures.js'

const MiB = 1n << 20n

interface World { dir: string, repo: Repo, provider: ProviderNode, client: ReturnType<typeof identityFromSecret> }

async function world (capacity: bigint): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-race-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const provider = await startProviderNode(repo, testTerms({ capacity, maxPieceSize: 1n << 30n }))
  return { dir, repo, provider, client: identityFromSecret(generateSecretKey()) }
}

async function close (w: World): Promise<void> {
  await w.provider.close()
  await w.repo.close()
  await rm(w.dir, { recursive: true, force: true })
}

function proposal (w: World, size: bigint, nonce: bigint, label: string): Proposal {
  return proposalOfSize(w.client.did, w.repo.identity.did, size, nonce, { label })
}

async function propose (w: World, p: Proposal): Promise<{ status: number, code?: string }> {
  const res = await fetch(`${w.provider.url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(signProposal(w.client, p)) })
  const body = await res.text()
  return { status: res.status, code: res.status === 201 ? undefined : (JSON.parse(body) as { error: { code: string } }).error.code }
}

test('60 concurrent proposals with one nonce: exactly one is accepted', async (t) => {
  const w = await world(1n << 32n)
  t.teardown(async () => await close(w))
  const answers = await Promise.all(Array.from({ length: 60 }, async (_, i) => await propose(w, proposal(w, MiB, 7n, `try ${i}`))))
  t.is(answers.filter(a => a.status === 201).length, 1)
  t.deepEqual([...new Set(answers.filter(a => a.status !== 201).map(a => a.code))], ['ERR_REPLAYED_NONCE'])
  t.like(await w.provider.ledger.stats(), { deals: { accepted: 1 }, reserved: MiB })
  t.like(await w.provider.ledger.verify(), { entries: 1 })
})

test('eight concurrent 32 MiB proposals against 64 MiB free: exactly two are accepted', async (t) => {
  const w = await world(64n * MiB)
  t.teardown(async () => await close(w))
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => await propose(w, proposal(w, 32n * MiB, BigInt(i + 1), 'big'))))
  t.is(answers.filter(a => a.status === 201).length, 2)
  t.deepEqual([...new Set(answers.filter(a => a.status !== 201).map(a => a.code))], ['ERR_INSUFFICIENT_CAPACITY'])
  t.like(await w.provider.ledger.stats(), { reserved: 64n * MiB })
  const ask = dagJSON.parse(await (await fetch(`${w.provider.url}/v1/ask`)).text()) as { payload: { freeCapacity: bigint | number } }
  t.is(BigInt(ask.payload.freeCapacity), 0n)
})

test('mixed sizes and repeated nonces at once: what is accepted fits, what is refused would not have', async (t) => {
  const capacity = 100n * MiB
  const w = await world(capacity)
  t.teardown(async () => await close(w))
  const sizes = [32n, 16n, 8n, 32n, 64n, 4n, 16n, 32n, 8n, 2n, 16n, 64n].map(s => s * MiB)
  const sent = sizes.flatMap((size, i) => [0, 1].map(copy => ({ size, nonce: BigInt(i + 1), label: `copy ${copy}` })))
  const answers = await Promise.all(sent.map(async (s) => ({ ...s, ...await propose(w, proposal(w, s.size, s.nonce, s.label)) })))
  const accepted = answers.filter(a => a.status === 201)
  const total = accepted.reduce((n, a) => n + a.size, 0n)
  t.true(total <= capacity, `accepted ${total} bytes of ${capacity}`)
  t.is(new Set(accepted.map(a => a.nonce)).size, accepted.length, 'every nonce at most once')
  const free = capacity - total
  for (const a of answers.filter(a => a.status !== 201)) {
    if (a.code === 'ERR_INSUFFICIENT_CAPACITY') t.true(a.size > free, `a ${a.size}-byte proposal was refused with ${free} bytes still free`)
    else t.is(a.code, 'ERR_REPLAYED_NONCE')
  }
  t.like(await w.provider.ledger.stats(), { reserved: total, deals: { accepted: accepted.length } })
})
