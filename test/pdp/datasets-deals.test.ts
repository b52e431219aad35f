/**
 * A PDP data set is a deal in cairn's sense (docs/pdp.md "Data sets as
 * deals"): its pieces hold capacity (refused as a deal is when they do not
 * fit, freed on removal and termination), it ends with its term on the
 * lifecycle tick, and each proven period is paid once into the ledger —
 * indexes `ledger verify` derives again from the chain.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { signDeleteDataSet, signSchedulePieceRemovals } from '@filoz/synapse-core/typed-data'
import { parsePieceCid, paddedSizeFromHeight } from '../../proofs/index.js'
import { LevelStore } from '../../src/state/level.js'
import { spaces } from '../../src/state/spaces.js'
import * as dagCBOR from '@ipld/dag-cbor'
import * as dagJSON from '@ipld/dag-json'
import { signProposal } from '../../src/protocol/proposal.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { proposalOfSize } from '../provider/fixtures.js'
import { add, codeOf, create, createdId, send, stop, upload, walletFor, world } from './dataset-world.js'

const padded = (cid: string): bigint => paddedSizeFromHeight(parsePieceCid(cid).height)
const prove = async (url: string, id: number): Promise<Response> => await send('POST', `${url}/pdp/data-sets/${id}/prove`, { seed: '0x' + randomBytes(32).toString('hex'), challenges: 4 })

test('pieces hold capacity like deals: refused with ERR_INSUFFICIENT_CAPACITY when full, freed on removal and termination', async t => {
  // two 1500-byte pieces are 2048 padded bytes each
  const w = await world(undefined, undefined, { capacity: 4096n })
  try {
    const key = generatePrivateKey()
    const { id } = await createdId(w, (await create(w, key, 1n)).res)
    const [a, b, c] = [await upload(w, randomBytes(1500)), await upload(w, randomBytes(1500)), await upload(w, randomBytes(1500))] as [string, string, string]
    t.is(padded(a) + padded(b), 4096n)
    t.is((await add(w, key, id, 1n, [a, b], 1n)).res.status, 201)
    let stats = await w.node.ledger.stats()
    t.is(stats.used, 4096n)
    t.is(stats.stored, 3000n)
    t.is(stats.dataSets, 1)
    t.is((await w.node.node.ask()).payload.freeCapacity, 0n, 'deals see the capacity data sets hold')
    t.is(await codeOf((await add(w, key, id, 1n, [c], 2n)).res), 'ERR_INSUFFICIENT_CAPACITY')

    const removal = await signSchedulePieceRemovals(walletFor(key), { clientDataSetId: 1n, pieceIds: [0n] })
    t.is((await send('DELETE', `${w.url}/pdp/data-sets/${id}/pieces/0`, { extraData: removal })).status, 200)
    t.is((await w.node.ledger.stats()).used, 2048n)
    t.is((await add(w, key, id, 1n, [c], 3n)).res.status, 201, 'the removed piece\'s capacity is free again')
    t.is((await w.node.ledger.stats()).used, 4096n)

    const del = await signDeleteDataSet(walletFor(key), { dataSetId: BigInt(id) })
    t.is((await send('POST', `${w.url}/pdp/data-sets/${id}/terminate`, { extraData: del })).status, 202)
    stats = await w.node.ledger.stats()
    t.is(stats.used, 0n)
    t.is(stats.stored, 0n)
    t.is(stats.dataSets, 0)
    t.is((await w.node.ledger.dataSet(id))?.state, 'terminated')
    t.is(await codeOf(await prove(w.url, id)), 'ERR_DATA_SET_TERMINATED')
    const report = await w.node.ledger.verify()
    t.true((report.indexed ?? 0) > 0)
  } finally {
    await stop(w)
  }
})

test('a deal accepted while a data set addition is checked takes the bytes: the addition is refused at its append, not overcommitted', async t => {
  // 4096 bytes free; the addition reads the free bytes, then two 2048-byte deals are accepted before it appends
  const w = await world(undefined, undefined, { capacity: 4096n })
  try {
    const key = generatePrivateKey()
    const { id } = await createdId(w, (await create(w, key, 1n)).res)
    const piece = await upload(w, randomBytes(1500))
    const ledger = w.node.ledger
    const stats = ledger.stats.bind(ledger)
    let reached!: () => void
    const checked = new Promise<void>((resolve) => { reached = resolve })
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    let held = false
    // the addition's first read of the free bytes answers as the ledger stood, then waits for the deals
    ledger.stats = async () => {
      const now = await stats()
      if (!held) {
        held = true
        reached()
        await released
      }
      return now
    }
    const adding = add(w, key, id, 1n, [piece], 1n)
    await checked
    const client = identityFromSecret(generateSecretKey())
    for (const nonce of [1n, 2n]) {
      const res = await fetch(`${w.url}/v1/deals`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: dagJSON.stringify(signProposal(client, proposalOfSize(client.did, w.repo.identity.did, 2048n, nonce, { label: `race ${nonce}` })))
      })
      t.is(res.status, 201, 'the deals fit when they arrive')
    }
    release()
    const { res } = await adding
    t.is(await codeOf(res), 'ERR_INSUFFICIENT_CAPACITY')
    ledger.stats = stats
    const after = await ledger.stats()
    t.is(after.used + after.reserved, 4096n)
  } finally {
    await stop(w)
  }
})

test('a data set ends with its term on the lifecycle tick: no longer proven or added to, capacity freed, pieces parked', async t => {
  let clock = 1_800_000_000
  const w = await world(undefined, undefined, {}, { now: () => clock, lifecycle: { tickMs: 3_600_000 }, pdp: { dataSets: { term: 1000 } } })
  try {
    const key = generatePrivateKey()
    const { id } = await createdId(w, (await create(w, key, 4n)).res)
    const a = await upload(w, randomBytes(1500))
    t.is((await add(w, key, id, 4n, [a], 1n)).res.status, 201)
    const record = await w.node.ledger.dataSet(id)
    t.is(record?.end, clock + 1000)
    t.is((await prove(w.url, id)).status, 200)
    clock += 999
    t.deepEqual((await w.node.lifecycle?.tick())?.expired, [], 'not before its end')
    clock += 1
    t.deepEqual((await w.node.lifecycle?.tick())?.expired, [`data-set/${id}`])
    t.is((await w.node.ledger.dataSet(id))?.state, 'expired')
    t.is((await w.node.ledger.stats()).used, 0n)
    t.is(await codeOf(await prove(w.url, id)), 'ERR_DATA_SET_EXPIRED')
    t.is(await codeOf((await add(w, key, id, 4n, [a], 2n)).res), 'ERR_DATA_SET_EXPIRED')
    t.is(((await (await fetch(`${w.url}/pdp/piece/${a}/status`)).json()) as { status: string }).status, 'parked')
    t.deepEqual((await w.node.lifecycle?.tick())?.expired, [], 'ended once')
    await t.notThrowsAsync(w.node.ledger.verify())
  } finally {
    await stop(w)
  }
})

test('each proven period is paid once, from the payer to the provider, in the proof\'s batch; ledger verify re-derives the index', async t => {
  let clock = 1_800_000_000
  const price = 10n ** 12n
  const w = await world(undefined, undefined, { pricePerGiBDay: price, provingPeriod: 3600 }, { now: () => clock, lifecycle: false })
  try {
    const key = generatePrivateKey()
    const payer = privateKeyToAccount(key).address.toLowerCase()
    const { id } = await createdId(w, (await create(w, key, 5n)).res)
    const pieces = [await upload(w, randomBytes(1500)), await upload(w, randomBytes(3000))]
    await add(w, key, id, 5n, pieces, 1n)
    const held = padded(pieces[0] as string) + padded(pieces[1] as string)
    // price × padded GiB × the period in days, rounded down (docs/ledger.md)
    const perPeriod = price * held * 3600n / ((1n << 30n) * 86400n)
    t.true(perPeriod > 0n)
    t.is((await prove(w.url, id)).status, 200)
    t.is((await prove(w.url, id)).status, 200)
    clock += 3600
    t.is((await prove(w.url, id)).status, 200)
    const balance = (await w.node.ledger.balance()).find((b) => b.counterparty === payer)
    t.is(balance?.earned, 2n * perPeriod)
    t.is((await w.node.ledger.stats()).earned, 2n * perPeriod)
    const kinds: string[] = []
    for await (const entry of w.node.ledger.log({ limit: 4 })) kinds.push(`${entry.kind}:${String(entry.fields.period)}`)
    t.deepEqual(kinds, ['payment-accrued:1', 'data-set-proven:1', 'payment-accrued:0', 'data-set-proven:0'])
    t.is((await w.node.ledger.dataSet(id))?.paid, 1)
    const metrics = await (await fetch(`${w.url}/metrics`)).text()
    t.regex(metrics, new RegExp(`^cairn_earned ${String(2n * perPeriod)}$`, 'm'))
    t.regex(metrics, /^cairn_data_sets 1$/m)
    await t.notThrowsAsync(w.node.ledger.verify())

    // an index edited by hand no longer verifies
    const state = new LevelStore(await w.repo.db())
    const key20 = String(id).padStart(20, '0')
    const stored = dagCBOR.decode(await state.get(spaces.ledgerDataSets, key20) as Uint8Array) as Record<string, unknown>
    await state.batch([{ type: 'put', space: spaces.ledgerDataSets, key: key20, value: dagCBOR.encode({ ...stored, padded: '1' }) }])
    t.is((await t.throwsAsync(w.node.ledger.verify()) as Error & { code?: string }).code, 'ERR_LEDGER_BROKEN')
  } finally {
    await stop(w)
  }
})
