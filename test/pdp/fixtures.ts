/**
 * A PDP data set to audit: an in-process provider with a payee, two uploaded
 * pieces, and a data set holding them, created and filled with synapse-core's
 * own signatures by a viem account that signs locally.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createWalletClient, http, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { calibration } from '@filoz/synapse-core/chains'
import * as Piece from '@filoz/synapse-core/piece'
import { signAddPieces, signCreateDataSet } from '@filoz/synapse-core/typed-data'
import { pieceOf } from '../../proofs/index.js'
import { CALIBRATION } from '../../src/pdp/eip712.js'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { testTerms } from '../provider/fixtures.js'

export const PAYEE = '0x' + '5a'.repeat(20)

function send (url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
}

export interface DataSetProvider { node: ProviderNode, url: string, dataSetId: number, pieces: string[], close: () => Promise<void> }

export async function dataSetProvider (sizes: number[] = [3000, 9000]): Promise<DataSetProvider> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pdp-set-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const node = await startProviderNode(repo, testTerms({ payee: PAYEE }), {})
  const close = async (): Promise<void> => {
    await node.close()
    await repo.close()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const wallet = createWalletClient({ account: privateKeyToAccount(generatePrivateKey()), chain: calibration, transport: http('http://127.0.0.1:9') })
    const created = await send(`${node.url}/pdp/data-sets`, { recordKeeper: CALIBRATION.fwssAddress, extraData: await signCreateDataSet(wallet, { payee: PAYEE as Hex, clientDataSetId: 1n }) })
    if (created.status !== 201) throw new Error(`create answered ${created.status}: ${await created.text()}`)
    const { dataSetId } = await created.json() as { dataSetId: number }
    const pieces: string[] = []
    for (const size of sizes) {
      const bytes = randomBytes(size)
      const cid = (await pieceOf(bytes)).cid.toString()
      const post = await send(`${node.url}/pdp/piece`, { pieceCid: cid })
      const put = await fetch(`${node.url}${post.headers.get('location') ?? ''}`, { method: 'PUT', body: bytes })
      if (put.status !== 204) throw new Error(`upload answered ${put.status}`)
      pieces.push(cid)
    }
    const added = await send(`${node.url}/pdp/data-sets/${dataSetId}/pieces`, { pieces: pieces.map((c) => ({ pieceCid: c })), extraData: await signAddPieces(wallet, { clientDataSetId: 1n, nonce: 5n, pieces: pieces.map((c) => ({ pieceCid: Piece.parse(c) })) }) })
    if (added.status !== 201) throw new Error(`add answered ${added.status}: ${await added.text()}`)
    return { node, url: node.url, dataSetId, pieces, close }
  } catch (err) {
    await close()
    throw err
  }
}
