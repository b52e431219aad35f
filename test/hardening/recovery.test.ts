/**
 * Start-up recovery (src/provider/recovery.ts) on the states a crash or a
 * failing disk can leave: temporary files, a piece renamed into the store
 * whose ledger batch never committed, an active deal whose piece is missing,
 * cut short or changed. Each is cleaned up or reported and failed — never
 * served — and the ledger still verifies.
 */
import test from 'ava'
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BLOCK_PREFIX, DAG_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX } from '../../src/state/spaces.js'
import { quarantineDir, recoverProvider } from '../../src/provider/recovery.js'
import { tempName } from '../../src/fs/temp.js'
import { readCar } from '../../src/car/index.js'
import { destroy, errorCode, makeDeal, payload, proofRequestBody, summarize, uploadPiece, world, type World } from './helpers.js'

async function keys (w: World, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const key of (await w.repo.db()).keys({ gte: prefix, lt: prefix + '\xff' })) out.push(key)
  return out
}

async function active (w: World, seed: number, nonce: bigint): Promise<{ deal: string, p: Awaited<ReturnType<typeof payload>> }> {
  const p = await payload(seed)
  const deal = await makeDeal(w.url, w.client, w.repo.identity.did, p, nonce)
  const res = await uploadPiece(w.url, w.client, deal, p.car)
  if (res.status !== 200) throw new Error(await res.text())
  return { deal, p }
}

async function served (w: World, p: Awaited<ReturnType<typeof payload>>): Promise<{ raw: number, piece: number }> {
  const raw = await fetch(`${w.url}/ipfs/${p.root.toString()}?format=raw`)
  await raw.arrayBuffer()
  const piece = await fetch(`${w.url}/piece/${p.pieceCid.toString()}`)
  await piece.arrayBuffer()
  return { raw: raw.status, piece: piece.status }
}

test('a temporary file whose writer still runs is left alone (a get spooling beside the start)', async (t) => {
  const w = await world()
  try {
    const live = tempName('get', '.car')
    await writeFile(join(w.repo.tmpDir, live), 'spooling')
    await writeFile(join(w.repo.tmpDir, 'piece-2147483646-0123456789abcdef.car'), 'a dead writer')
    const report = await recoverProvider({ db: await w.repo.db(), ledger: w.ledger, store: w.store })
    t.is(report.tempFilesRemoved, 1)
    t.deepEqual(await readdir(w.repo.tmpDir), [live])
  } finally {
    await destroy(w)
  }
})

test('temporary files and interrupted atomic writes are removed', async (t) => {
  const w = await world()
  try {
    await writeFile(join(w.repo.tmpDir, 'piece-0123.car'), 'partial')
    await mkdir(join(w.repo.tmpDir, 'nested'))
    await writeFile(join(w.repo.piecesDir, '.bafkzcibx.layers.abc.tmp'), 'partial')
    const report = await recoverProvider({ db: await w.repo.db(), ledger: w.ledger, store: w.store })
    t.is(report.tempFilesRemoved, 3)
    t.deepEqual(await readdir(w.repo.tmpDir), [])
    t.deepEqual(await readdir(w.repo.piecesDir), [])
  } finally {
    await destroy(w)
  }
})

test('a piece renamed into the store whose ledger batch never committed is quarantined; the deal stays accepted and a retried upload completes', async (t) => {
  const w = await world()
  try {
    const p = await payload(21)
    const deal = await makeDeal(w.url, w.client, w.repo.identity.did, p, 1n)
    // what the upload path leaves when killed between commit() and the ledger append
    const staged = await w.store.stage((async function * () { yield p.car })())
    await staged.commit()
    t.deepEqual(await served(w, p), { raw: 404, piece: 404 }, 'an unindexed piece is never served')
    const report = await recoverProvider({ db: await w.repo.db(), ledger: w.ledger, store: w.store })
    t.deepEqual(report.quarantined, [`${p.pieceCid.toString()}.car`])
    t.deepEqual(await readdir(w.repo.piecesDir), [])
    t.is((await readdir(quarantineDir(w.store))).length, 1)
    t.is((await w.ledger.deal(deal))?.state, 'accepted')
    const retry = await uploadPiece(w.url, w.client, deal, p.car)
    t.is(retry.status, 200)
    t.is((await w.ledger.deal(deal))?.state, 'active')
    t.deepEqual(await served(w, p), { raw: 200, piece: 200 })
    await w.ledger.verify({ signatures: 'all' })
  } finally {
    await destroy(w)
  }
})

for (const damage of ['missing', 'truncated', 'changed'] as const) {
  test(`an active deal whose piece is ${damage} is failed, reported and not served; other deals are untouched`, async (t) => {
    const w = await world()
    try {
      const good = await active(w, 31, 1n)
      const bad = await active(w, 32, 2n)
      const path = w.store.path(bad.p.pieceCid.toString())
      if (damage === 'missing') await rm(path)
      if (damage === 'truncated') await truncate(path, 100)
      if (damage === 'changed') {
        const bytes = await readFile(path)
        bytes[bytes.length - 5] ^= 0xff
        await writeFile(path, bytes)
        // before recovery, a changed leaf goes out as stored (the provider trusts its ingest check
        // unless --hash-on-read, docs/protocol.md "Retrieval"); the client's verification refuses it
        const got = await fetch(`${w.url}/ipfs/${bad.p.root.toString()}?format=car`).then(async (r) => new Uint8Array(await r.arrayBuffer()))
        t.deepEqual(got, new Uint8Array(bytes.subarray(bytes.length - bad.p.car.length)), 'the CAR as stored, the changed leaf in it')
        const refused = await t.throwsAsync(async () => { for await (const block of readCar((async function * () { yield got })())) t.truthy(block.cid) })
        t.is((refused as { code?: string }).code, 'ERR_BLOCK_MISMATCH')
      }
      const quick = await recoverProvider({ db: await w.repo.db(), ledger: w.ledger, store: w.store })
      const report = damage === 'changed'
        ? await recoverProvider({ db: await w.repo.db(), ledger: w.ledger, store: w.store, verify: 'full' })
        : quick
      if (damage === 'changed') t.deepEqual(quick.failed, [], 'a same-size change needs the full check')
      t.deepEqual(report.failed.map((f) => [f.deal, f.code]), [[bad.deal, damage === 'missing' ? 'ERR_PIECE_NOT_FOUND' : 'ERR_PIECE_CORRUPT']])
      t.is((await w.ledger.deal(bad.deal))?.state, 'failed')
      t.is((await w.ledger.deal(good.deal))?.state, 'active')
      t.deepEqual(await served(w, bad.p), { raw: 404, piece: 404 })
      t.deepEqual(await served(w, good.p), { raw: 200, piece: 200 })
      t.deepEqual(await keys(w, PIECE_PREFIX), [PIECE_PREFIX + good.p.pieceCid.toString()])
      t.is((await keys(w, BLOCK_PREFIX)).length, good.p.blocks.map.size)
      t.is((await keys(w, PIECE_V1_PREFIX)).length, 1)
      t.deepEqual(await keys(w, DAG_PREFIX), [DAG_PREFIX + good.p.root.toString()])
      t.false((await readdir(w.repo.piecesDir)).some((n) => n.startsWith(bad.p.pieceCid.toString())))
      const status = await fetch(`${w.url}/v1/deals/${bad.deal}`)
      t.is(status.status, 200)
      t.regex(await status.text(), /"state":"failed"/)
      const retry = await uploadPiece(w.url, w.client, bad.deal, bad.p.car)
      t.is(await errorCode(retry), 'ERR_DEAL_STATE')
      await w.ledger.verify({ signatures: 'all' })
      // running it again finds nothing more to do
      const again = await recoverProvider({ db: await w.repo.db(), ledger: w.ledger, store: w.store, verify: 'full' })
      t.deepEqual([again.failed, again.quarantined, again.danglingBlocks], [[], [], 0])
      await summarize({ area: 'recovery', what: `active piece ${damage} at start-up`, injected: 1, outcome: `deal failed (${report.failed[0]?.code ?? '?'}), not served, other deal intact`, lost: 0 })
    } finally {
      await destroy(w)
    }
  })
}

test('a piece a proof finds corrupt is reported and no longer served, until a proof passes again', async (t) => {
  const failures: string[] = []
  const w = await world({ deals: { onPieceFailed: (f) => { failures.push(`${f.deal} ${f.code}`) } } })
  try {
    const { deal, p } = await active(w, 41, 1n)
    const path = w.store.path(p.pieceCid.toString())
    const original = await readFile(path)
    await truncate(path, original.length >> 2)
    w.node.prover.forget()
    const challenge = async (): Promise<Response> => await fetch(`${w.url}/v1/deals/${deal}/proofs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: proofRequestBody(w.client, deal, 16)
    })
    const refused = await challenge()
    t.is(await errorCode(refused), 'ERR_PIECE_CORRUPT')
    t.deepEqual(failures, [`${deal} ERR_PIECE_CORRUPT`])
    t.deepEqual(await served(w, p), { raw: 404, piece: 404 }, 'not served once a proof found it corrupt')
    await writeFile(path, original)
    w.node.prover.forget()
    t.is((await challenge()).status, 200)
    t.deepEqual(await served(w, p), { raw: 200, piece: 200 })
    await summarize({ area: 'recovery', what: 'piece found corrupt by a proof (cut to a quarter)', injected: 1, outcome: 'reported (ERR_PIECE_CORRUPT), not served until a proof passed again', lost: 0 })
  } finally {
    await destroy(w)
  }
})
