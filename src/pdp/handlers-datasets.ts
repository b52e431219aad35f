/**
 * The data-set routes of the PDP API (Curio's `pdp/handlers.go`,
 * `handlers_create.go`, `handlers_add.go`, `handlers_terminate.go`; docs/pdp.md
 * "Data sets"), as @filoz/synapse-core 0.5.2 calls them, and cairn's own
 * challenge route for auditing a data set (`POST /pdp/data-sets/{id}/prove`).
 */
import { CairnError } from '../errors.js'
import { readJSONBody, sendJSON, type Context, type Router } from '../http/server.js'
import type { PieceProver } from '../provider/proofs.js'
import type { PdpDeps } from './context.js'
import { MAX_PIECES_PER_ADD, parseId, parseTxHash, pieceRequestOf, type DataSets, type PieceRequest } from './datasets.js'
import { challengeOf, proveDataSet } from './prove.js'

const NO_STORE = { 'Cache-Control': 'no-store' }

function objectOf (body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_JSON', 'expected a JSON object')
  return body as Record<string, unknown>
}

function extraDataOf (body: Record<string, unknown>): string {
  const value = body.extraData
  if (typeof value !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(value) || value.length < 4) throw new CairnError('ERR_INVALID_EXTRA_DATA', 'extraData must be 0x-prefixed hex: the ABI-encoded, EIP-712 signed authorisation')
  return value
}

function piecesOf (body: Record<string, unknown>): PieceRequest[] {
  const list = body.pieces
  if (!Array.isArray(list) || list.length === 0) throw new CairnError('ERR_INVALID_JSON', 'pieces must be a non-empty list of {pieceCid, subPieces}')
  if (list.length > MAX_PIECES_PER_ADD) throw new CairnError('ERR_INVALID_ARGUMENT', `at most ${MAX_PIECES_PER_ADD} pieces may be added at once, got ${list.length}`)
  return list.map((p, i) => pieceRequestOf(p, `pieces[${i}]`))
}

function recordKeeperOf (body: Record<string, unknown>): string {
  if (typeof body.recordKeeper !== 'string') throw new CairnError('ERR_INVALID_ARGUMENT', 'recordKeeper must be the 0x address of the service contract')
  return body.recordKeeper
}

export function dataSetRoutes (router: Router, deps: PdpDeps, dataSets: DataSets, prover: PieceProver): void {
  const { limits } = deps
  const json = async (ctx: Context): Promise<Record<string, unknown>> => objectOf(await readJSONBody(ctx.req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs))

  router.on('POST', '/pdp/data-sets', async (ctx) => {
    const body = await json(ctx)
    const { txHash, dataSetId } = await dataSets.create({ recordKeeper: recordKeeperOf(body), extraData: extraDataOf(body) })
    deps.log('pdp-data-set-created', { dataSet: dataSetId, tx: txHash })
    sendJSON(ctx.res, 201, { txHash, dataSetId }, { ...NO_STORE, Location: `/pdp/data-sets/created/${txHash}` })
  })

  router.on('POST', '/pdp/data-sets/create-and-add', async (ctx) => {
    const body = await json(ctx)
    const { txHash, dataSetId, pieceIds } = await dataSets.create({ recordKeeper: recordKeeperOf(body), extraData: extraDataOf(body), pieces: piecesOf(body) })
    deps.log('pdp-data-set-created', { dataSet: dataSetId, tx: txHash, pieces: pieceIds.length })
    sendJSON(ctx.res, 201, { txHash, dataSetId }, { ...NO_STORE, Location: `/pdp/data-sets/created/${txHash}` })
  })

  router.on('GET', '/pdp/data-sets/created/:txHash', async ({ res, params }) => {
    const hash = parseTxHash(params.txHash ?? '')
    const tx = await dataSets.tx(hash)
    if (tx === undefined || tx.kind !== 'create') throw new CairnError('ERR_TX_NOT_FOUND', `no data set was created by ${hash}`)
    // committed to the ledger before it was answered: confirmed from the start
    sendJSON(res, 200, { createMessageHash: hash, dataSetCreated: true, service: 'cairn', txStatus: 'confirmed', ok: true, dataSetId: tx.dataSet }, NO_STORE)
  })

  router.on('GET', '/pdp/data-sets/:id', async ({ res, params }) => {
    const id = parseId(params.id ?? '', 'data set id')
    const record = await dataSets.require(id)
    const pieces = await dataSets.piecesOf(id)
    sendJSON(res, 200, {
      id,
      nextChallengeEpoch: 0,
      pieces: pieces.filter((p) => p.removed === undefined).map((p) => ({ pieceId: p.pieceId, pieceCid: p.pieceCid, subPieceCid: p.pieceCid, subPieceOffset: 0 })),
      // cairn's own fields (docs/pdp.md): what an auditor needs, removed pieces with their ids
      payer: record.payer,
      payee: record.payee,
      clientDataSetId: record.clientDataSetId,
      metadata: record.metadata,
      created: record.created,
      terminated: record.terminated ?? null,
      allPieces: pieces.map((p) => ({ pieceId: p.pieceId, pieceCid: p.pieceCid, size: p.size, removed: p.removed ?? null }))
    }, NO_STORE)
  })

  router.on('POST', '/pdp/data-sets/:id/pieces', async (ctx) => {
    const id = parseId(ctx.params.id ?? '', 'data set id')
    const body = await json(ctx)
    const { txHash, pieceIds } = await dataSets.addPieces(id, { extraData: extraDataOf(body), pieces: piecesOf(body) })
    deps.log('pdp-pieces-added', { dataSet: id, tx: txHash, pieces: pieceIds.length })
    sendJSON(ctx.res, 201, { txHash, pieceIds }, { ...NO_STORE, Location: `/pdp/data-sets/${id}/pieces/added/${txHash}` })
  })

  router.on('GET', '/pdp/data-sets/:id/pieces/added/:txHash', async ({ res, params }) => {
    const id = parseId(params.id ?? '', 'data set id')
    const hash = parseTxHash(params.txHash ?? '')
    const tx = await dataSets.tx(hash)
    // a create-and-add's hash answers here too, as Curio's does
    if (tx === undefined || tx.dataSet !== id || (tx.kind !== 'add' && tx.kind !== 'create')) throw new CairnError('ERR_TX_NOT_FOUND', `no pieces were added to data set ${id} by ${hash}`)
    sendJSON(res, 200, { txHash: hash, txStatus: 'confirmed', dataSetId: id, pieceCount: tx.pieceIds.length, addMessageOk: true, piecesAdded: true, confirmedPieceIds: tx.pieceIds }, NO_STORE)
  })

  router.on('DELETE', '/pdp/data-sets/:id/pieces/:pieceId', async (ctx) => {
    const id = parseId(ctx.params.id ?? '', 'data set id')
    const pieceId = parseId(ctx.params.pieceId ?? '', 'piece id')
    const { txHash } = await dataSets.removePiece(id, pieceId, extraDataOf(await json(ctx)))
    deps.log('pdp-piece-removed', { dataSet: id, piece: pieceId, tx: txHash })
    sendJSON(ctx.res, 200, { txHash }, NO_STORE)
  })

  const terminate = async (ctx: Context, status: number): Promise<void> => {
    const id = parseId(ctx.params.id ?? '', 'data set id')
    const { txHash } = await dataSets.terminate(id, extraDataOf(await json(ctx)))
    deps.log('pdp-data-set-terminated', { dataSet: id, tx: txHash })
    sendJSON(ctx.res, status, { txHash, terminationTxHash: txHash }, NO_STORE)
  }
  router.on('POST', '/pdp/data-sets/:id/terminate', async (ctx) => { await terminate(ctx, 202) })
  // the older form of the same (Curio before `terminate`): DELETE the data set
  router.on('DELETE', '/pdp/data-sets/:id', async (ctx) => { await terminate(ctx, 200) })

  router.on('GET', '/pdp/data-sets/:id/terminate', async ({ res, params }) => {
    const id = parseId(params.id ?? '', 'data set id')
    const record = await dataSets.require(id)
    if (record.terminated === undefined) throw new CairnError('ERR_TX_NOT_FOUND', `data set ${id} was not terminated`)
    sendJSON(res, 200, { terminationTxHash: record.terminated, fwssTerminated: true, serviceTerminationEpoch: null }, NO_STORE)
  })

  router.on('POST', '/pdp/data-sets/:id/prove', async (ctx) => {
    const id = parseId(ctx.params.id ?? '', 'data set id')
    const challenge = challengeOf(await json(ctx))
    // an ended data set is no longer proven (nor paid): ERR_DATA_SET_TERMINATED, ERR_DATA_SET_EXPIRED
    await dataSets.requireLive(id)
    const { pieces } = await dataSets.leafCounts(id)
    const proof = await proveDataSet(prover, id, pieces, challenge, async (piece, leaves) => await deps.pieces.proveElsewhere(piece, leaves))
    await dataSets.proven(id, { seed: proof.seed, count: challenge.count })
    sendJSON(ctx.res, 200, proof, NO_STORE)
  })
}
