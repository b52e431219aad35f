/**
 * Repair by pull (docs/pdp.md "Repair by pull"): a new deal's provider that
 * speaks PDP fetches the piece from a healthy replica's /piece
 * (POST /pdp/piece/pull) and feeds it to the deal itself
 * (POST /v1/deals/{id}/piece/from-held), so the client sends no bytes — here
 * it holds none. Two cairn providers on loopback, so the puller allows any
 * source (`--pull-sources any`).
 */
import test from 'ava'
import { mkdtemp, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addToRepo } from '../../src/client/content.js'
import { makeDeal } from '../../src/client/deal.js'
import { ProviderClient } from '../../src/client/provider-client.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { startProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { PieceStore } from '../../src/store/pieces.js'
import { sampleTree } from '../client/helpers.js'
import { testTerms } from '../provider/fixtures.js'

const TERMS = { maxDuration: 540 * 86400, provingPeriod: 86400 }

test('a deal whose provider pulls the piece from another provider: active, stored, and no byte from the client', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-repair-pull-'))
  const repos = await Promise.all(['a', 'b', 'client'].map(async (n) => await Repo.init(join(dir, n))))
  const [ra, rb, rc] = repos as [Repo, Repo, Repo]
  const a = await startProviderNode(ra, testTerms(TERMS), {})
  const b = await startProviderNode(rb, testTerms(TERMS), { pdp: { pull: { sources: 'any' } } })
  try {
    const ledger = await LevelLedger.open(await rc.db(), rc.identity)
    const added = await addToRepo(rc, [await sampleTree(join(dir, 'sample'), 300_000)])
    const first = await makeDeal({ repo: rc, ledger }, added.root, a.url, { duration: 10 * 86400 })
    t.is(first.state, 'active')
    // the client no longer holds the piece: only A can give it
    await unlink(new PieceStore(rc.piecesDir, rc.tmpDir).path(added.piece.cid))
    t.true(await new ProviderClient(b.url).speaksPdp())

    const second = await makeDeal({ repo: rc, ledger, pullFrom: a.url }, added.root, b.url, { duration: 10 * 86400 })
    t.is(second.state, 'active')
    t.is(second.pieceCid, added.piece.cid)
    t.is((await b.ledger.deal(second.id))?.state, 'active')
    t.true(await new PieceStore(rb.piecesDir, rb.tmpDir).has(added.piece.cid), 'B stored the piece for its deal')
    await t.notThrowsAsync(b.ledger.verify())

    // A keeps the default pull policy: a loopback source is refused, and the client records the deal failed
    const third = await t.throwsAsync(makeDeal({ repo: rc, ledger, pullFrom: b.url }, added.root, a.url, { duration: 10 * 86400 }))
    t.is((third as Error & { code?: string }).code, 'ERR_PULL_SOURCE_FORBIDDEN')
    let failed = 0
    for await (const _ of ledger.log({ kind: 'deal-failed' })) failed++
    t.is(failed, 1)
    // a deal is fed only a piece the provider holds, and only with the client's signature
    const unknown = await fetch(`${b.url}/v1/deals/${second.id}/piece/from-held`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ pieceCid: 'bafkzcibcaapb2ir5qmgwxjh7u4gwhgvbmyc4hv4cvk7n64uwk6nkoxlbqdlbgsq' }) })
    t.is(((await unknown.json()) as { error: { code: string } }).error.code, 'ERR_PIECE_NOT_FOUND')
    const res = await fetch(`${b.url}/v1/deals/${second.id}/piece/from-held`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ pieceCid: added.piece.cid }) })
    t.is(((await res.json()) as { error: { code: string } }).error.code, 'ERR_UNAUTHORIZED')
  } finally {
    await a.close()
    await b.close()
    for (const r of repos) await r.close()
    await rm(dir, { recursive: true, force: true })
  }
})
