/**
 * PDP data sets on an in-process provider (docs/pdp.md "Data sets"), with
 * @filoz/synapse-core 0.5.2's own signing functions and a viem account that
 * signs locally as the client: every operation checked, recorded in the
 * ledger under the hash answered as its tx hash, refused with codes when the
 * signer, nonce or clientDataSetId is wrong, kept across a restart, and proven
 * with PDPVerifier's challenges.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import * as Piece from '@filoz/synapse-core/piece'
import { signAddPieces, signCreateDataSet, signDeleteDataSet, signSchedulePieceRemovals } from '@filoz/synapse-core/typed-data'
import { signCreateDataSetAndAddPieces } from '@filoz/synapse-core/typed-data'
import { pieceOf } from '../../proofs/index.js'
import { verifyDataSetProof, type DataSetProof } from '../../src/pdp/prove.js'
import { txHashOf } from '../../src/pdp/datasets.js'
import { spaces } from '../../src/state/spaces.js'
import { LevelStore } from '../../src/state/level.js'
import { add, codeOf, create, createdId, KEEPER, PAYEE, send, stop, upload, walletFor, wire, world } from './dataset-world.js'

test('create: 201 with the ledger entry hash as tx hash, confirmed, readable; a replay and a wrong key are refused', async t => {
  const w = await world()
  try {
    const key = generatePrivateKey()
    const { res, extraData } = await create(w, key, 77n)
    t.is(res.status, 201)
    const location = res.headers.get('location') ?? ''
    t.regex(location, /^\/pdp\/data-sets\/created\/0x[0-9a-f]{64}$/)
    const { id, txHash } = await createdId(w, res)
    t.is(id, 1)
    // the tx hash is the hash of the ledger entry that records the creation
    let entryHash: string | undefined
    for await (const entry of w.node.ledger.log({ kind: 'data-set-created', limit: 1 })) {
      entryHash = txHashOf(entry)
      t.is(entry.fields.payer, privateKeyToAccount(key).address.toLowerCase())
      t.is(entry.fields.clientDataSetId, '77')
    }
    t.is(entryHash, txHash)
    t.true(location.endsWith(txHash))
    const set = await (await fetch(`${w.url}/pdp/data-sets/${id}`)).json() as { id: number, pieces: unknown[], payer: string, created: string }
    t.is(set.id, 1)
    t.deepEqual(set.pieces, [])
    t.is(set.created, txHash)

    // the same signed message again: the clientDataSetId is taken once
    const replay = await send('POST', `${w.url}/pdp/data-sets`, { recordKeeper: KEEPER, extraData })
    t.is(replay.status, 409)
    t.is(await codeOf(replay), 'ERR_REPLAYED_DATA_SET')

    // signed by one key for another payer: the recovered signer is not the payer
    const victim = privateKeyToAccount(generatePrivateKey()).address
    const forged = await signCreateDataSet(walletFor(generatePrivateKey()), { payee: PAYEE as Hex, payer: victim, clientDataSetId: 1n })
    const wrong = await send('POST', `${w.url}/pdp/data-sets`, { recordKeeper: KEEPER, extraData: forged })
    t.is(wrong.status, 422)
    t.is(await codeOf(wrong), 'ERR_WRONG_SIGNER')

    // signed for another provider's payee
    const elsewhere = await create(w, key, 78n, '0x' + '11'.repeat(20))
    t.is(await codeOf(elsewhere.res), 'ERR_WRONG_SIGNER')

    // another record keeper than the provider's service contract
    const keeper = await send('POST', `${w.url}/pdp/data-sets`, { recordKeeper: '0x' + '22'.repeat(20), extraData: (await signCreateDataSet(walletFor(key), { payee: PAYEE as Hex, clientDataSetId: 79n })) })
    t.is(await codeOf(keeper), 'ERR_INVALID_ARGUMENT')

    const garbage = await send('POST', `${w.url}/pdp/data-sets`, { recordKeeper: KEEPER, extraData: '0x1234' })
    t.is(await codeOf(garbage), 'ERR_INVALID_EXTRA_DATA')
    t.is(await codeOf(await fetch(`${w.url}/pdp/data-sets/created/0x${'ab'.repeat(32)}`)), 'ERR_TX_NOT_FOUND')
    t.is(await codeOf(await fetch(`${w.url}/pdp/data-sets/created/0x12`)), 'ERR_INVALID_ARGUMENT')
    t.is(await codeOf(await fetch(`${w.url}/pdp/data-sets/99`)), 'ERR_DATA_SET_NOT_FOUND')
  } finally {
    await stop(w)
  }
})

test('a provider without a payee takes no data sets', async t => {
  const w = await world(undefined, null)
  try {
    const { res } = await create(w, generatePrivateKey(), 1n)
    t.is(res.status, 503)
    t.is(await codeOf(res), 'ERR_NO_PAYEE')
  } finally {
    await stop(w)
  }
})

test('add pieces: ids in order, pieces no longer parked; a replayed nonce, a wrong key and an unknown piece are refused', async t => {
  const w = await world()
  try {
    const key = generatePrivateKey()
    const { id } = await createdId(w, (await create(w, key, 5n)).res)
    const a = await upload(w, randomBytes(1000))
    const b = await upload(w, randomBytes(3000))
    t.is(((await (await fetch(`${w.url}/pdp/piece/${a}/status`)).json()) as { status: string }).status, 'parked')
    const { res, extraData } = await add(w, key, id, 5n, [a, b], 9n)
    t.is(res.status, 201)
    const location = res.headers.get('location') ?? ''
    t.regex(location, new RegExp(`^/pdp/data-sets/${id}/pieces/added/0x[0-9a-f]{64}$`))
    const added = await (await fetch(`${w.url}${location}`)).json() as { txStatus: string, piecesAdded: boolean, confirmedPieceIds: number[], pieceCount: number }
    t.deepEqual([added.txStatus, added.piecesAdded, added.confirmedPieceIds, added.pieceCount], ['confirmed', true, [0, 1], 2])
    const status = await (await fetch(`${w.url}/pdp/piece/${a}/status`)).json() as { status: string, parked: boolean }
    t.deepEqual([status.status, status.parked], ['stored', false])
    const set = await (await fetch(`${w.url}/pdp/data-sets/${id}`)).json() as { pieces: Array<{ pieceId: number, pieceCid: string }> }
    t.deepEqual(set.pieces.map((p) => [p.pieceId, p.pieceCid]), [[0, a], [1, b]])
    // a referenced piece is not swept however late it is
    t.is(await w.node.pdp.sweep(), 0)

    const replay = await send('POST', `${w.url}/pdp/data-sets/${id}/pieces`, { pieces: [a, b].map(wire), extraData })
    t.is(replay.status, 409)
    t.is(await codeOf(replay), 'ERR_REPLAYED_NONCE')

    const other = await add(w, generatePrivateKey(), id, 5n, [a], 10n)
    t.is(await codeOf(other.res), 'ERR_WRONG_SIGNER')
    // signed for other pieces than the ones sent
    const swapped = await send('POST', `${w.url}/pdp/data-sets/${id}/pieces`, { pieces: [wire(b)], extraData: (await signAddPieces(walletFor(key), { clientDataSetId: 5n, nonce: 11n, pieces: [{ pieceCid: Piece.parse(a) }] })) })
    t.is(await codeOf(swapped), 'ERR_WRONG_SIGNER')

    const missing = (await pieceOf(randomBytes(500))).cid.toString()
    const unknown = await add(w, key, id, 5n, [missing], 12n)
    t.is(unknown.res.status, 404)
    t.is(await codeOf(unknown.res), 'ERR_PIECE_NOT_FOUND')
    // the refused add used no nonce: it can be sent again once the piece is there
    const again = await add(w, key, id, 5n, [await upload(w, randomBytes(400))], 12n)
    t.is(again.res.status, 201)

    const sub = await send('POST', `${w.url}/pdp/data-sets/${id}/pieces`, { pieces: [{ pieceCid: a, subPieces: [{ subPieceCid: b }] }], extraData })
    t.is(await codeOf(sub), 'ERR_INVALID_ARGUMENT')
    t.is(await codeOf(await send('POST', `${w.url}/pdp/data-sets/${id}/pieces`, { pieces: [], extraData })), 'ERR_INVALID_JSON')
    t.is(await codeOf(await add(w, key, 42, 5n, [a], 13n).then((r) => r.res)), 'ERR_DATA_SET_NOT_FOUND')
  } finally {
    await stop(w)
  }
})

test('create-and-add: one tx hash answers both status routes, as synapse-core polls them', async t => {
  const w = await world()
  try {
    const key = generatePrivateKey()
    const a = await upload(w, randomBytes(2000))
    const extraData = await signCreateDataSetAndAddPieces(walletFor(key), { payee: PAYEE as Hex, clientDataSetId: 31n, nonce: 1n, pieces: [{ pieceCid: Piece.parse(a) }] })
    const res = await send('POST', `${w.url}/pdp/data-sets/create-and-add`, { recordKeeper: KEEPER, extraData, pieces: [wire(a)] })
    t.is(res.status, 201)
    const { id, txHash } = await createdId(w, res)
    const added = await (await fetch(`${w.url}/pdp/data-sets/${id}/pieces/added/${txHash}`)).json() as { confirmedPieceIds: number[] }
    t.deepEqual(added.confirmedPieceIds, [0])
    const replay = await send('POST', `${w.url}/pdp/data-sets/create-and-add`, { recordKeeper: KEEPER, extraData, pieces: [wire(a)] })
    t.is(await codeOf(replay), 'ERR_REPLAYED_DATA_SET')
    t.is(await codeOf(await fetch(`${w.url}/pdp/data-sets/${id + 1}/pieces/added/${txHash}`)), 'ERR_TX_NOT_FOUND')
  } finally {
    await stop(w)
  }
})

test('remove a piece and terminate: pieces parked again, ids kept, later changes refused', async t => {
  const w = await world()
  try {
    const key = generatePrivateKey()
    const { id } = await createdId(w, (await create(w, key, 8n)).res)
    const a = await upload(w, randomBytes(1500))
    const b = await upload(w, randomBytes(1600))
    await add(w, key, id, 8n, [a, b], 1n)
    const removal = await signSchedulePieceRemovals(walletFor(key), { clientDataSetId: 8n, pieceIds: [0n] })
    const wrongRemoval = await signSchedulePieceRemovals(walletFor(generatePrivateKey()), { clientDataSetId: 8n, pieceIds: [0n] })
    t.is(await codeOf(await send('DELETE', `${w.url}/pdp/data-sets/${id}/pieces/0`, { extraData: wrongRemoval })), 'ERR_WRONG_SIGNER')
    const removed = await send('DELETE', `${w.url}/pdp/data-sets/${id}/pieces/0`, { extraData: removal })
    t.is(removed.status, 200)
    const { txHash } = await removed.json() as { txHash: string }
    t.regex(txHash, /^0x[0-9a-f]{64}$/)
    const set = await (await fetch(`${w.url}/pdp/data-sets/${id}`)).json() as { pieces: Array<{ pieceId: number }>, allPieces: Array<{ pieceId: number, removed: string | null }> }
    t.deepEqual(set.pieces.map((p) => p.pieceId), [1])
    t.deepEqual(set.allPieces.map((p) => [p.pieceId, p.removed]), [[0, txHash], [1, null]])
    t.is(((await (await fetch(`${w.url}/pdp/piece/${a}/status`)).json()) as { status: string }).status, 'parked')
    t.is(await codeOf(await send('DELETE', `${w.url}/pdp/data-sets/${id}/pieces/0`, { extraData: removal })), 'ERR_DATA_SET_PIECE_NOT_FOUND')

    t.is(await codeOf(await send('POST', `${w.url}/pdp/data-sets/${id}/terminate`, { extraData: await signDeleteDataSet(walletFor(generatePrivateKey()), { dataSetId: BigInt(id) }) })), 'ERR_WRONG_SIGNER')
    const del = await signDeleteDataSet(walletFor(key), { dataSetId: BigInt(id) })
    const terminated = await send('POST', `${w.url}/pdp/data-sets/${id}/terminate`, { extraData: del })
    t.is(terminated.status, 202)
    const { terminationTxHash } = await terminated.json() as { terminationTxHash: string }
    const status = await (await fetch(`${w.url}/pdp/data-sets/${id}/terminate`)).json() as { terminationTxHash: string }
    t.is(status.terminationTxHash, terminationTxHash)
    t.is(((await (await fetch(`${w.url}/pdp/piece/${b}/status`)).json()) as { status: string }).status, 'parked')
    t.is(await codeOf(await send('POST', `${w.url}/pdp/data-sets/${id}/terminate`, { extraData: del })), 'ERR_DATA_SET_TERMINATED')
    t.is(await codeOf((await add(w, key, id, 8n, [b], 2n)).res), 'ERR_DATA_SET_TERMINATED')
    const kinds: string[] = []
    for await (const entry of w.node.ledger.log({ limit: 4 })) kinds.push(entry.kind)
    t.deepEqual(kinds, ['data-set-deleted', 'pieces-removed', 'pieces-added', 'data-set-created'])
    await t.notThrowsAsync(w.node.ledger.verify())
  } finally {
    await stop(w)
  }
})

test('a data set is proven with PDPVerifier challenges; a tampered answer fails verification', async t => {
  const w = await world()
  try {
    const key = generatePrivateKey()
    const { id } = await createdId(w, (await create(w, key, 2n)).res)
    const cids = [await upload(w, randomBytes(5000)), await upload(w, randomBytes(127)), await upload(w, randomBytes(70_000))]
    await add(w, key, id, 2n, cids, 3n)
    await send('DELETE', `${w.url}/pdp/data-sets/${id}/pieces/1`, { extraData: await signSchedulePieceRemovals(walletFor(key), { clientDataSetId: 2n, pieceIds: [1n] }) })
    const seed = randomBytes(32)
    const res = await send('POST', `${w.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + seed.toString('hex'), challenges: 20 })
    t.is(res.status, 200)
    const proof = await res.json() as DataSetProof
    t.is(proof.proofs.length, 20)
    t.false(proof.proofs.some((p) => p.pieceId === 1), 'a removed piece is never challenged')
    const set = await (await fetch(`${w.url}/pdp/data-sets/${id}`)).json() as { allPieces: Array<{ pieceId: number, pieceCid: string, removed: string | null }> }
    t.notThrows(() => verifyDataSetProof(id, set.allPieces, { seed, count: 20 }, proof))
    const first = proof.proofs[0] as DataSetProof['proofs'][number]
    const tampered = { ...proof, proofs: [{ ...first, data: '0x' + '00'.repeat(32) }, ...proof.proofs.slice(1)] }
    t.is((t.throws(() => verifyDataSetProof(id, set.allPieces, { seed, count: 20 }, tampered)) as Error & { code?: string }).code, 'ERR_PROOF_ROOT_MISMATCH')
    // another seed draws other leaves: the old answer does not fit it
    t.truthy(t.throws(() => verifyDataSetProof(id, set.allPieces, { seed: randomBytes(32), count: 20 }, proof)))
    t.is(await codeOf(await send('POST', `${w.url}/pdp/data-sets/${id}/prove`, { seed: '0x12', challenges: 1 })), 'ERR_INVALID_ARGUMENT')
    t.is(await codeOf(await send('POST', `${w.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + seed.toString('hex'), challenges: 0 })), 'ERR_INVALID_ARGUMENT')
  } finally {
    await stop(w)
  }
})

test('data sets survive a restart; a tx index lost in a crash is written again at start', async t => {
  const w = await world()
  const key = generatePrivateKey()
  const { id, txHash } = await createdId(w, (await create(w, key, 4n)).res)
  const a = await upload(w, randomBytes(900))
  const { res, extraData } = await add(w, key, id, 4n, [a], 6n)
  const location = res.headers.get('location') ?? ''
  const addHash = location.split('/').pop() as string
  // a crash between the ledger batch and the tx index: the index of the newest add is gone
  const state = new LevelStore(await w.repo.db())
  await state.batch([{ type: 'del', space: spaces.pdpTransactions, key: addHash }])
  await stop(w, true)
  const again = await world(w.dir)
  try {
    const created = await (await fetch(`${again.url}/pdp/data-sets/created/${txHash}`)).json() as { dataSetId: number }
    t.is(created.dataSetId, id)
    const added = await (await fetch(`${again.url}${location}`)).json() as { confirmedPieceIds: number[] }
    t.deepEqual(added.confirmedPieceIds, [0])
    t.is(((await (await fetch(`${again.url}/pdp/piece/${a}/status`)).json()) as { status: string }).status, 'stored')
    const replay = await send('POST', `${again.url}/pdp/data-sets/${id}/pieces`, { pieces: [wire(a)], extraData })
    t.is(await codeOf(replay), 'ERR_REPLAYED_NONCE')
    const next = await create(again, key, 4n)
    t.is(await codeOf(next.res), 'ERR_REPLAYED_DATA_SET')
    const second = await createdId(again, (await create(again, key, 40n)).res)
    t.is(second.id, id + 1)
  } finally {
    await stop(again)
  }
})
