/**
 * The proxy attack (docs/encryption.md "Distinct replicas" and "Deadlines"): a
 * provider that keeps no copy of the piece it was paid to store and, when
 * challenged, fetches the bytes from another provider's public `/piece`.
 *
 * - Distinct replicas: the other provider's bytes are another encryption, so
 *   the proof cannot be made from them whatever the time (default suite).
 * - Identical (plaintext) replicas: the fetched bytes are right, and with the
 *   fixed 30 s deadline the attacker passes; `--deadline auto` allows about
 *   what proving from a local copy takes, and fetching plus hashing a piece
 *   of CAIRN_PROXY_SIZE (default 512 MiB) does not fit. This one moves a few
 *   GiB through the disk, so it runs only with CAIRN_PROXY=1
 *   (`npm run test:proxy`). Nothing here asserts a time: only outcomes.
 */
import test from 'ava'
import { randomBytes, randomFillSync } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { auditDeal, loadDeal } from '../../src/client/audit.js'
import { addToRepo } from '../../src/client/content.js'
import { localPiece, makeDeal, type DealResult } from '../../src/client/deal.js'
import { ProviderClient } from '../../src/client/provider-client.js'
import { replicaPlan } from '../../src/client/replicas.js'
import { ageEncryption } from '../../src/crypto/encrypt.js'
import { repoAgeIdentity } from '../../src/crypto/keys.js'
import { TERMS, world, type TestProvider, type World } from './helpers.js'

/**
 * Turns `cheat` into a provider holding nothing of `piece`: its copy (and,
 * unless `keepCache`, its layer cache) is deleted, and each challenge first
 * fetches the bytes of `sourcePiece` from `source` into the place of its own.
 */
async function proxying (cheat: TestProvider, piece: string, source: TestProvider, sourcePiece: string, keepCache: boolean): Promise<void> {
  const prover = cheat.node.prover
  const path = cheat.store.path(piece)
  await rm(path)
  if (!keepCache) {
    await rm(prover.cachePath(piece), { force: true })
    prover.forget(piece)
  }
  const prove = prover.prove.bind(prover)
  prover.prove = async (pieceCid, challenge) => {
    const body = await new ProviderClient(source.url).piece(sourcePiece)
    const tmp = `${path}.fetched`
    await pipeline(Readable.from(body), createWriteStream(tmp))
    await rename(tmp, path)
    try {
      return await prove(pieceCid, challenge)
    } finally {
      // holds nothing between challenges
      await rm(path, { force: true })
      if (!keepCache) prover.forget(piece)
    }
  }
}

async function dealBoth (w: World, roots: string[], startDelay: number | undefined = 0): Promise<DealResult[]> {
  const { repo, ledger } = w.client
  const out: DealResult[] = []
  for (const [i, p] of w.providers.entries()) {
    out.push(await makeDeal({ repo, ledger, pollIntervalMs: 20, activeTimeoutMs: 10 * 60_000 }, roots[i] as string, p.url, { duration: 86400, maxPrice: TERMS.pricePerGiBDay, challenges: 16, startDelay }))
  }
  return out
}

test('distinct replicas: a provider proxying another replica\'s /piece cannot prove, however long it may take', async (t) => {
  const w = await world(2)
  t.teardown(w.cleanup)
  const { repo } = w.client
  const own = await repoAgeIdentity(repo.path)
  const dir = join(w.dir, 'in')
  await mkdir(dir)
  await writeFile(join(dir, 'data.bin'), randomBytes(300_000))
  const added = await addToRepo(repo, [dir], { encryption: ageEncryption([own.recipient]) })
  const plan = await replicaPlan(repo, added.root, (await localPiece(repo, added.root)).record, { encrypt: false, named: [], count: 2 })
  const deals = await dealBoth(w, [(await plan(0)).root, (await plan(1)).root])
  t.not(deals[0].pieceCid, deals[1].pieceCid)
  // the smart cheat keeps its small layer cache, only not the piece
  await proxying(w.providers[1], deals[1].pieceCid, w.providers[0], deals[0].pieceCid, true)
  const result = await auditDeal(w.ctx, await loadDeal(w.client.ledger, deals[1].id), { timeoutMs: 60_000, retries: 0 })
  t.is(result.outcome, 'failed')
  t.is(result.code, 'ERR_PROOF_REFUSED')
  // its own prover finds the fetched bytes are not its piece; the honest replica still proves
  t.is((await auditDeal(w.ctx, await loadDeal(w.client.ledger, deals[0].id), { timeoutMs: 60_000, retries: 0 })).outcome, 'passed')
})

const PROXY = process.env.CAIRN_PROXY === '1'
const SIZE = Number(process.env.CAIRN_PROXY_SIZE ?? 512 * 1024 * 1024)

;(PROXY ? test : test.skip)('identical replicas: the proxy passes a fixed 30 s deadline but misses --deadline auto; the honest holder passes it (CAIRN_PROXY=1)', async (t) => {
  t.timeout(30 * 60_000)
  const w = await world(2, { terms: { maxPieceSize: 1n << 36n, capacity: 1n << 38n } })
  t.teardown(w.cleanup)
  const dir = join(w.dir, 'in')
  await mkdir(dir)
  // random bytes, written a MiB at a time
  const out = createWriteStream(join(dir, 'data.bin'))
  const chunk = Buffer.alloc(1 << 20)
  for (let written = 0; written < SIZE; written += chunk.length) {
    randomFillSync(chunk)
    if (!out.write(Buffer.from(chunk.subarray(0, Math.min(chunk.length, SIZE - written))))) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  const added = await addToRepo(w.client.repo, [dir])
  // the default start delay: time for the upload at 1 MiB/s, as a loaded machine may need
  const deals = await dealBoth(w, [added.root, added.root], undefined)
  t.is(deals[0].pieceCid, deals[1].pieceCid)
  const [honest, cheat] = await Promise.all(deals.map(async d => await loadDeal(w.client.ledger, d.id)))

  // the honest holder proves within the automatic deadline
  const fair = await auditDeal(w.ctx, honest, { deadline: 'auto', retries: 0, period: 0 })
  t.is(fair.outcome, 'passed', fair.message)
  t.true(fair.deadline?.rttMs !== undefined)

  // the cheat keeps nothing, not even its cache, and fetches the piece from the honest holder on challenge
  await proxying(w.providers[1], deals[1].pieceCid, w.providers[0], deals[0].pieceCid, false)
  const slow = await auditDeal(w.ctx, cheat, { timeoutMs: 10 * 60_000, retries: 0, period: 1 })
  t.is(slow.outcome, 'passed', 'with a fixed deadline the attack works: the bytes are the right ones')
  const caught = await auditDeal(w.ctx, cheat, { deadline: 'auto', retries: 0, period: 2 })
  t.is(caught.outcome, 'missed')
  t.is(caught.code, 'ERR_PROOF_MISSED')
  t.log(`${SIZE} bytes: honest proof in ${fair.ms} ms of ${fair.deadline?.ms} ms; the proxy needed ${slow.ms} ms`)
})
