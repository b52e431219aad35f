/** A provider in process and a viem account signing as the client, for the data-set tests. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createWalletClient, http, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { calibration } from '@filoz/synapse-core/chains'
import * as Piece from '@filoz/synapse-core/piece'
import { signAddPieces, signCreateDataSet } from '@filoz/synapse-core/typed-data'
import { pieceOf } from '../../proofs/index.js'
import type { ProviderTerms } from '../../src/provider/terms.js'
import { startProviderNode, type ProviderNode, type ProviderNodeOptions } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { CALIBRATION } from '../../src/pdp/eip712.js'
import { testTerms } from '../provider/fixtures.js'

export const PAYEE = '0x' + '5a'.repeat(20)
export const KEEPER = CALIBRATION.fwssAddress

export interface World { dir: string, repo: Repo, node: ProviderNode, url: string }

export async function world (dir?: string, payee: string | null = PAYEE, terms: Partial<ProviderTerms> = {}, options: ProviderNodeOptions = {}): Promise<World> {
  const base = dir ?? await mkdtemp(join(tmpdir(), 'cairn-pdp-ds-'))
  const repo = dir === undefined ? await Repo.init(join(base, 'repo')) : await Repo.open(join(base, 'repo'))
  const node = await startProviderNode(repo, testTerms({ ...(payee === null ? {} : { payee }), ...terms }), options)
  return { dir: base, repo, node, url: node.url }
}

export async function stop (w: World, keep = false): Promise<void> {
  await w.node.close()
  await w.repo.close()
  if (!keep) await rm(w.dir, { recursive: true, force: true })
}

export function walletFor (key: Hex): Parameters<typeof signCreateDataSet>[0] {
  // the transport is never used: a local account signs typed data without RPC
  return createWalletClient({ account: privateKeyToAccount(key), chain: calibration, transport: http('http://127.0.0.1:9') })
}

export function send (method: string, url: string, body: unknown): Promise<Response> {
  return fetch(url, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
}

export async function codeOf (res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code
}

/** Uploads `bytes` as a classic PDP upload; returns its piece CID. */
export async function upload (w: World, bytes: Uint8Array): Promise<string> {
  const cid = (await pieceOf(bytes)).cid.toString()
  const created = await send('POST', `${w.url}/pdp/piece`, { pieceCid: cid })
  if (created.status === 201) {
    const put = await fetch(`${w.url}${created.headers.get('location') ?? ''}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes })
    if (put.status !== 204) throw new Error(`PUT answered ${put.status}: ${await put.text()}`)
  }
  return cid
}

export const wire = (cid: string) => ({ pieceCid: cid, subPieces: [{ subPieceCid: cid }] })

export async function create (w: World, key: Hex, clientDataSetId: bigint, payee = PAYEE): Promise<{ res: Response, extraData: Hex }> {
  const extraData = await signCreateDataSet(walletFor(key), { payee: payee as Hex, clientDataSetId, metadata: [{ key: 'withCDN', value: '' }] })
  return { res: await send('POST', `${w.url}/pdp/data-sets`, { recordKeeper: KEEPER, extraData }), extraData }
}

export async function createdId (w: World, res: Response): Promise<{ id: number, txHash: string }> {
  const location = res.headers.get('location') ?? ''
  const status = await fetch(`${w.url}${location}`)
  const body = await status.json() as { dataSetId: number, txStatus: string, dataSetCreated: boolean, createMessageHash: string }
  if (!body.dataSetCreated || body.txStatus !== 'confirmed') throw new Error(`not created: ${JSON.stringify(body)}`)
  return { id: body.dataSetId, txHash: body.createMessageHash }
}

export async function add (w: World, key: Hex, id: number, clientDataSetId: bigint, cids: string[], nonce: bigint): Promise<{ res: Response, extraData: Hex }> {
  const extraData = await signAddPieces(walletFor(key), { clientDataSetId, nonce, pieces: cids.map((c) => ({ pieceCid: Piece.parse(c) })) })
  return { res: await send('POST', `${w.url}/pdp/data-sets/${id}/pieces`, { pieces: cids.map(wire), extraData }), extraData }
}
