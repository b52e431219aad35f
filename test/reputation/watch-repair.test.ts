/**
 * Predictive repair end to end (README "Reputation, placement and repair") on loopback: four real providers, a
 * piece placed on three by reputation; one starts corrupting its copy; `watch`
 * fails its proofs twice, copies the piece from a healthy replica (this repo
 * has dropped its own copy), verifies it, deals with the fourth provider,
 * records deal-repaired and terminates the bad deal. The piece stays
 * retrievable, verified, from every good holder.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { AddressBook } from '../../src/client/address-book.js'
import { auditDeal, loadDeal, type AuditResult } from '../../src/client/audit.js'
import { addToRepo } from '../../src/client/content.js'
import { makeDeal, type DealResult } from '../../src/client/deal.js'
import { ProviderClient } from '../../src/client/provider-client.js'
import { fetchVerifiedCar } from '../../src/client/retrieve.js'
import { watch } from '../../src/client/watch.js'
import { place } from '../../src/reputation/placement.js'
import { repairIfNeeded, type RepairOutcome } from '../../src/reputation/repair-deal.js'
import { PieceStore } from '../../src/store/pieces.js'
import { entries, TERMS, world } from '../audit/helpers.js'

const repairMacro = test.macro(async (t, pull: boolean) => {
  // providers that pull from each other on loopback repair by pull (docs/pdp.md "Repair by pull"); by default their policy refuses loopback and the client copies
  const w = await world(4, pull ? { pdp: { pull: { sources: 'any' } } } : {})
  try {
    const { repo, ledger } = w.client
    const book = new AddressBook(w.client.db)
    for (const p of w.providers) await book.add(p.url)
    const sample = join(w.dir, 'sample')
    await mkdir(sample)
    await writeFile(join(sample, 'data.bin'), randomBytes(6000))
    const added = await addToRepo(repo, [sample])

    // what `cairn deal <cid> --replicas 3` does without --provider
    const placement = place((await book.list()).map(e => ({ id: e.did, url: e.url, pricePerGiBDay: e.ask.payload.pricePerGiBDay })), { replicas: 3 })
    t.is(placement.chosen.length, 3)
    for (const c of placement.chosen) t.regex(c.reason, /no audits yet/)
    const deals: DealResult[] = []
    for (const c of placement.chosen) deals.push(await makeDeal({ repo, ledger, pollIntervalMs: 20 }, added.root, c.candidate.url as string, { duration: 86400, maxPrice: TERMS.pricePerGiBDay }))
    const spare = w.providers.find(p => !deals.some(d => d.url === p.url))
    if (spare === undefined) throw new Error('no fourth provider')
    const bad = deals[0]
    const badProvider = w.providers.find(p => p.url === bad.url)
    if (badProvider === undefined) throw new Error('no bad provider')

    // the bad provider overwrites its copy past the first bytes; the client drops its own copy
    const badPath = badProvider.store.path(bad.pieceCid)
    const bytes = await readFile(badPath)
    await writeFile(badPath, Buffer.concat([bytes.subarray(0, 64), randomBytes(bytes.length - 64)]))
    await rm(new PieceStore(repo.piecesDir, repo.tmpDir).path(bad.pieceCid))

    const results: AuditResult[] = []
    const repairs: RepairOutcome[] = []
    const errors: unknown[] = []
    const controller = new AbortController()
    await watch(w.ctx, {
      tickMs: 50,
      window: 0.4,
      timeoutMs: 1500,
      retries: 0,
      refreshMs: 200,
      until: Date.now() + 60_000,
      signal: controller.signal,
      onError: (_deal, err) => { errors.push(err) },
      onResult: (r) => {
        results.push(r)
        // stop once the replacement has proven itself
        if (repairs.length > 0 && r.deal === repairs[0].replacement.id && r.outcome === 'passed') controller.abort()
      },
      afterResult: async (deal) => {
        const r = await repairIfNeeded({ repo, ledger, pollIntervalMs: 20 }, deal)
        if (r !== undefined) repairs.push(r)
      }
    })
    t.deepEqual(errors, [])
    t.is(repairs.length, 1)
    const [repair] = repairs
    t.is(repair.deal, bad.id)
    t.regex(repair.reason, /faulted 2 times in a row/)
    t.is(repair.replacement.url, spare.url)
    t.true(deals.slice(1).some(d => d.url === repair.source), `copied from a healthy replica, not ${repair.source}`)
    t.deepEqual(results.filter(r => r.deal === bad.id).map(r => r.outcome), ['failed', 'failed'])
    t.true(results.some(r => r.deal === repair.replacement.id && r.outcome === 'passed'))

    t.is((await ledger.deal(bad.id))?.state, 'terminated')
    t.is((await ledger.deal(repair.replacement.id))?.state, 'active')
    const repaired = await entries(ledger, 'deal-repaired')
    t.is(repaired.length, 1)
    t.is(repaired[0].fields.replacement, repair.replacement.id)
    t.is(repaired[0].fields.source, repair.source)
    // copied through this repo, the copy kept here is the piece itself; pulled, no byte came through it
    t.is(await new PieceStore(repo.piecesDir, repo.tmpDir).has(bad.pieceCid), !pull)

    // the piece is retrievable and verified from the new holder and the healthy ones
    const root = CID.parse(added.root)
    for (const url of [repair.replacement.url, ...deals.slice(1).map(d => d.url)]) {
      const got = await fetchVerifiedCar(new ProviderClient(url), root, join(w.dir, `got-${new URL(url).port}.car`))
      t.true(got.blocks > 0)
    }
    await t.throwsAsync(fetchVerifiedCar(new ProviderClient(bad.url), root, join(w.dir, 'bad.car')))
    t.is((await ledger.verify()).entries > 0, true)
  } finally {
    await w.cleanup()
  }
})

test('watch: a corrupting replica is repaired onto the fourth provider and its deal terminated; the piece stays retrievable', repairMacro, false)
test('watch: the fourth provider pulls the piece from a healthy replica for the repair; the client sends no byte', repairMacro, true)

test('repair: with every replica faulting and no copy in this repo, ERR_NO_HEALTHY_REPLICA names the piece', async (t) => {
  const w = await world(3)
  try {
    const { repo, ledger } = w.client
    const book = new AddressBook(w.client.db)
    for (const p of w.providers) await book.add(p.url)
    const sample = join(w.dir, 'sample')
    await mkdir(sample)
    await writeFile(join(sample, 'data.bin'), randomBytes(4000))
    const added = await addToRepo(repo, [sample])
    const made: DealResult[] = []
    for (const p of w.providers.slice(0, 2)) made.push(await makeDeal({ repo, ledger, pollIntervalMs: 20 }, added.root, p.url, { duration: 86400, maxPrice: TERMS.pricePerGiBDay }))
    for (const [i, d] of made.entries()) {
      const path = w.providers[i].store.path(d.pieceCid)
      const bytes = await readFile(path)
      await writeFile(path, Buffer.concat([bytes.subarray(0, 64), randomBytes(bytes.length - 64)]))
    }
    await rm(new PieceStore(repo.piecesDir, repo.tmpDir).path(made[0].pieceCid))
    const deals = await Promise.all(made.map(async d => await loadDeal(ledger, d.id)))
    for (const period of [0, 1]) for (const d of deals) t.is((await auditDeal(w.ctx, d, { period, timeoutMs: 1500, retries: 0 })).outcome, 'failed')
    const err = await t.throwsAsync(repairIfNeeded({ repo, ledger, pollIntervalMs: 20 }, deals[0]))
    t.is((err as { code?: string }).code, 'ERR_NO_HEALTHY_REPLICA')
    t.regex(err?.message ?? '', new RegExp(`piece ${made[0].pieceCid} of deal ${made[0].id} cannot be repaired: every replica is faulting or predicted to fail, and this repo holds no copy`))
    // nothing was terminated: a deal is only ended once its replacement is active
    t.is((await ledger.deal(deals[0].id))?.state, 'active')
  } finally {
    await w.cleanup()
  }
})
