/**
 * Distinct replicas (docs/encryption.md "Distinct replicas") on loopback with
 * real providers: each replica of encrypted content is its own encryption — its
 * own root, blocks and piece CID — dealt, audited and retrieved on its own;
 * plaintext cannot be made distinct; a repair encrypts a fresh replica from
 * the plaintext of a healthy one instead of copying its bytes.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { AddressBook } from '../../src/client/address-book.js'
import { auditDeal, loadDeal } from '../../src/client/audit.js'
import { addToRepo } from '../../src/client/content.js'
import { localPiece, makeDeal, type DealResult } from '../../src/client/deal.js'
import { replicaPlan, replicaRecordOf } from '../../src/client/replicas.js'
import { get, parseTarget, sourcesFor } from '../../src/client/retrieve.js'
import { ageEncryption } from '../../src/crypto/encrypt.js'
import { decrypterFor, repoAgeIdentity } from '../../src/crypto/keys.js'
import { repairIfNeeded } from '../../src/reputation/repair-deal.js'
import { PieceStore } from '../../src/store/pieces.js'
import { carBlockCids } from '../../src/car/index.js'
import { entries, TERMS, world, type World } from '../audit/helpers.js'
import { newIdentity } from '../crypto/helpers.js'
import { tree as fullTree } from './helpers.js'

/** A tree as {path: sha256 of its content}: short enough to read in a failure. */
async function tree (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [path, content] of Object.entries(await fullTree(dir))) out[path] = createHash('sha256').update(content).digest('hex').slice(0, 16)
  return out
}

async function sample (w: World, name: string): Promise<string> {
  const dir = join(w.dir, name)
  await mkdir(join(dir, 'sub'), { recursive: true })
  await writeFile(join(dir, 'a.txt'), 'replica\n')
  await writeFile(join(dir, 'sub', 'data.bin'), randomBytes(70_000))
  return dir
}

async function dealAll (w: World, root: string, urls: string[], options: { encrypt?: boolean, distinct?: boolean }): Promise<DealResult[]> {
  const { repo, ledger } = w.client
  const plan = await replicaPlan(repo, root, (await localPiece(repo, root)).record, { encrypt: options.encrypt === true, named: [], distinct: options.distinct, count: urls.length })
  const out: DealResult[] = []
  for (const [i, url] of urls.entries()) {
    const { root: dealt, replica } = await plan(i)
    out.push(await makeDeal({ repo, ledger, pollIntervalMs: 20 }, dealt, url, { duration: 86400, maxPrice: TERMS.pricePerGiBDay, challenges: 16, startDelay: 0 }, replica))
  }
  return out
}

async function blocksOf (carPath: string): Promise<Set<string>> {
  return new Set((await carBlockCids(carPath)).map(c => c.toString()))
}

test('an encrypted root dealt to three providers is three distinct encryptions: own roots, blocks and pieces, each audited and retrieved on its own', async (t) => {
  const w = await world(3)
  try {
    const { repo, ledger } = w.client
    const friend = await newIdentity()
    const own = await repoAgeIdentity(repo.path)
    const src = await sample(w, 'photos')
    const added = await addToRepo(repo, [src], { encryption: ageEncryption([own.recipient, friend.recipient]) })
    const deals = await dealAll(w, added.root, w.providers.map(p => p.url), {})

    t.is(deals[0].root, added.root, 'the encrypted root itself is the first replica')
    t.is(new Set(deals.map(d => d.root)).size, 3)
    t.is(new Set(deals.map(d => d.pieceCid)).size, 3)
    for (const d of deals) t.is(d.replicaOf, added.root)
    // no block is shared between replicas
    const store = new PieceStore(repo.piecesDir, repo.tmpDir)
    const sets = await Promise.all(deals.map(async d => await blocksOf(store.path(d.pieceCid))))
    for (let i = 0; i < sets.length; i++) for (let j = i + 1; j < sets.length; j++) t.deepEqual([...sets[i]].filter(c => sets[j].has(c)), [])

    // each deal records what it is a replica of and for whom: the friend named at add time too
    for (const d of deals) {
      const record = await replicaRecordOf(ledger, d.id)
      t.is(record?.replicaOf, added.root)
      t.deepEqual([...record?.recipients ?? []].sort(), [own.recipient, friend.recipient].sort())
    }

    // every replica's own piece is audited
    for (const d of deals) {
      const audit = await auditDeal(w.ctx, await loadDeal(ledger, d.id), { timeoutMs: 10_000, retries: 0 })
      t.is(audit.outcome, 'passed', audit.message)
    }

    // get <root> finds all three; from each alone it decrypts to the tree that was added
    const sources = (await sourcesFor(repo, ledger, CID.parse(added.root), [])).filter(s => s.kind === 'provider')
    t.deepEqual(sources.map(s => s.location).sort(), deals.map(d => d.url).sort())
    t.deepEqual(sources.filter(s => s.root !== undefined).map(s => s.root).sort(), deals.slice(1).map(d => d.root).sort())
    const expected = await tree(src)
    for (const [i, source] of sources.entries()) {
      const output = join(w.dir, `out-${i}`)
      const got = await get(repo, parseTarget(added.root), [source], { output, decrypter: await decrypterFor([own.identity]) })
      t.is(got.root, added.root)
      t.deepEqual(await tree(output), expected)
    }
  } finally {
    await w.cleanup()
  }
})

test('a plaintext root with --encrypt: every replica an encryption of it; with --no-distinct one encryption for all; plaintext --distinct is ERR_DISTINCT_NEEDS_ENCRYPTION', async (t) => {
  const w = await world(2)
  try {
    const { repo } = w.client
    const added = await addToRepo(repo, [await sample(w, 'plain')])
    const urls = w.providers.map(p => p.url)
    const record = (await localPiece(repo, added.root)).record

    const err = await t.throwsAsync(replicaPlan(repo, added.root, record, { encrypt: false, named: [], distinct: true, count: 2 }))
    t.is((err as { code?: string }).code, 'ERR_DISTINCT_NEEDS_ENCRYPTION')
    // plaintext without --distinct: the root as it is, identical replicas (the default, and all it can be)
    const same = await replicaPlan(repo, added.root, record, { encrypt: false, named: [], count: 2 })
    t.deepEqual([await same(0), await same(1)], [{ root: added.root }, { root: added.root }])

    const distinct = await dealAll(w, added.root, urls, { encrypt: true })
    t.false(distinct.some(d => d.root === added.root), 'no replica is the plaintext')
    t.is(new Set(distinct.map(d => d.pieceCid)).size, 2)

    const shared = await replicaPlan(repo, added.root, record, { encrypt: true, named: [], distinct: false, count: 2 })
    const [a, b] = [await shared(0), await shared(1)]
    t.is(a.root, b.root)
    t.not(a.root, added.root)
    t.is(a.replica?.replicaOf, added.root)
  } finally {
    await w.cleanup()
  }
})

test('an encrypted root with --no-distinct is dealt as it is: the same piece at every provider', async (t) => {
  const w = await world(1)
  try {
    const { repo } = w.client
    const own = await repoAgeIdentity(repo.path)
    const added = await addToRepo(repo, [await sample(w, 'enc')], { encryption: ageEncryption([own.recipient]) })
    const plan = await replicaPlan(repo, added.root, (await localPiece(repo, added.root)).record, { encrypt: false, named: [], distinct: false, count: 3 })
    t.deepEqual([await plan(0), await plan(2)], [{ root: added.root }, { root: added.root }])
  } finally {
    await w.cleanup()
  }
})

test('repair of a distinct replica encrypts a fresh one from a healthy replica\'s plaintext, never copies its bytes', async (t) => {
  const w = await world(3)
  try {
    const { repo, ledger } = w.client
    const book = new AddressBook(w.client.db)
    for (const p of w.providers) await book.add(p.url)
    const own = await repoAgeIdentity(repo.path)
    const src = await sample(w, 'repair')
    const added = await addToRepo(repo, [src], { encryption: ageEncryption([own.recipient]) })
    const made = await dealAll(w, added.root, w.providers.slice(0, 2).map(p => p.url), {})
    const bad = made[1]
    const badProvider = w.providers[1]
    // the provider garbles its copy; this repo keeps no replica's piece, so the plaintext must come from the healthy provider
    const path = badProvider.store.path(bad.pieceCid)
    const bytes = await readFile(path)
    await writeFile(path, Buffer.concat([bytes.subarray(0, 64), randomBytes(bytes.length - 64)]))
    const store = new PieceStore(repo.piecesDir, repo.tmpDir)
    for (const d of made) await rm(store.path(d.pieceCid))

    const deal = await loadDeal(ledger, bad.id)
    for (const period of [0, 1]) t.is((await auditDeal(w.ctx, deal, { period, timeoutMs: 5000, retries: 0 })).outcome, 'failed')
    const repair = await repairIfNeeded({ repo, ledger, pollIntervalMs: 20 }, deal)
    if (repair === undefined) throw new Error('no repair')
    t.true(repair.reencrypted)
    t.is(repair.source, made[0].url)
    t.is(repair.replacement.url, w.providers[2].url)
    t.is(repair.replacement.replicaOf, added.root)
    t.false(made.some(d => d.pieceCid === repair.replacement.pieceCid || d.root === repair.replacement.root), 'a new encryption, not a copy')
    t.is((await entries(ledger, 'deal-repaired'))[0]?.fields.reencrypted, true)
    t.is((await ledger.deal(bad.id))?.state, 'terminated')

    const audit = await auditDeal(w.ctx, await loadDeal(ledger, repair.replacement.id), { timeoutMs: 10_000, retries: 0 })
    t.is(audit.outcome, 'passed')
    const output = join(w.dir, 'restored')
    const sources = (await sourcesFor(undefined, undefined, CID.parse(added.root), [])).concat([{ kind: 'provider', location: repair.replacement.url, reason: 'deal', root: repair.replacement.root }])
    const got = await get(repo, parseTarget(added.root), sources.slice(-1), { output, decrypter: await decrypterFor([own.identity]) })
    t.is(got.source.location, repair.replacement.url)
    t.deepEqual(await tree(output), await tree(src))
  } finally {
    await w.cleanup()
  }
})
