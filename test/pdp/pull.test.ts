/**
 * `POST /pdp/piece/pull` between two cairn providers on loopback (docs/pdp.md
 * "Pull"): the piece is fetched from the other's `/piece`, kept only when its
 * bytes are the named piece, optionally added to a data set by a signed
 * AddPieces; the client polls by posting the request again.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createWalletClient, http, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { calibration } from '@filoz/synapse-core/chains'
import * as Piece from '@filoz/synapse-core/piece'
import { signAddPieces, signCreateDataSet } from '@filoz/synapse-core/typed-data'
import { pieceOf } from '../../proofs/index.js'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { CALIBRATION } from '../../src/pdp/eip712.js'
import { testTerms } from '../provider/fixtures.js'

const PAYEE = '0x' + '5a'.repeat(20)

interface World { dir: string, repo: Repo, node: ProviderNode, url: string }

async function world (): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pdp-pull-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const node = await startProviderNode(repo, testTerms({ payee: PAYEE }), {})
  return { dir, repo, node, url: node.url }
}

async function stop (w: World): Promise<void> {
  await w.node.close()
  await w.repo.close()
  await rm(w.dir, { recursive: true, force: true })
}

function send (method: string, url: string, body: unknown): Promise<Response> {
  return fetch(url, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
}

async function upload (w: World, bytes: Uint8Array): Promise<string> {
  const cid = (await pieceOf(bytes)).cid.toString()
  const created = await send('POST', `${w.url}/pdp/piece`, { pieceCid: cid })
  const put = await fetch(`${w.url}${created.headers.get('location') ?? ''}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes })
  if (put.status !== 204) throw new Error(`PUT answered ${put.status}`)
  return cid
}

interface PullAnswer { status: string, pieces: Array<{ pieceCid: string, status: string, error?: { code: string } }>, dataSet?: { status: string, dataSetId?: number, error?: { code: string } } }

/** Posts the pull until it ends (at most 200 rounds). */
async function pull (url: string, body: unknown): Promise<PullAnswer> {
  for (let i = 0; i < 200; i++) {
    const res = await send('POST', `${url}/pdp/piece/pull`, body)
    if (res.status !== 200) throw new Error(`pull answered ${res.status}: ${await res.text()}`)
    const answer = await res.json() as PullAnswer
    if (answer.status === 'complete' || answer.status === 'failed') return answer
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('the pull did not end')
}

/** A source that answers every /piece/ request with `bytes`. */
async function fakeSource (bytes: Uint8Array): Promise<{ url: string, server: Server }> {
  const server = createServer((_req, res) => { res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); res.end(bytes) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

test('a piece pulled from another cairn provider is checked, kept and served', async t => {
  const [a, b] = await Promise.all([world(), world()])
  try {
    const bytes = randomBytes(20_000)
    const cid = await upload(a, bytes)
    t.is((await fetch(`${b.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
    const answer = await pull(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `${a.url}/piece/${cid}` }] })
    t.is(answer.status, 'complete')
    t.deepEqual(answer.pieces.map((p) => [p.pieceCid, p.status]), [[cid, 'complete']])
    t.is((await fetch(`${b.url}/pdp/piece?pieceCid=${cid}`)).status, 200)
    t.deepEqual(new Uint8Array(await (await fetch(`${b.url}/piece/${cid}`)).arrayBuffer()), new Uint8Array(bytes))
  } finally {
    await Promise.all([stop(a), stop(b)])
  }
})

test('a source with other bytes, too many bytes, or none fails the pull with a code and keeps nothing', async t => {
  const b = await world()
  const wrong = await fakeSource(randomBytes(20_000))
  const long = await fakeSource(randomBytes(40_000))
  try {
    const cid = (await pieceOf(randomBytes(20_000))).cid.toString()
    const other = await pull(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `${wrong.url}/piece/${cid}` }] })
    t.is(other.status, 'failed')
    t.is(other.pieces[0]?.error?.code, 'ERR_PIECE_CID_MISMATCH')
    const more = await pull(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `${long.url}/x/piece/${cid}` }] })
    t.is(more.pieces[0]?.error?.code, 'ERR_PIECE_CID_MISMATCH')
    const closed = await fakeSource(new Uint8Array())
    await new Promise((resolve) => closed.server.close(resolve))
    const gone = await pull(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `${closed.url}/piece/${cid}` }] })
    t.is(gone.pieces[0]?.error?.code, 'ERR_PULL_FAILED')
    t.is((await fetch(`${b.url}/pdp/piece?pieceCid=${cid}`)).status, 404)

    const refused = async (body: unknown): Promise<string> => ((await (await send('POST', `${b.url}/pdp/piece/pull`, body)).json()) as { error: { code: string } }).error.code
    t.is(await refused({ pieces: [{ pieceCid: cid, sourceUrl: `ftp://127.0.0.1/piece/${cid}` }] }), 'ERR_INVALID_ARGUMENT')
    t.is(await refused({ pieces: [{ pieceCid: cid, sourceUrl: `${wrong.url}/ipfs/${cid}` }] }), 'ERR_INVALID_ARGUMENT')
    t.is(await refused({ pieces: [{ pieceCid: 'bafy', sourceUrl: `${wrong.url}/piece/bafy` }] }), 'ERR_INVALID_CID')
    t.is(await refused({ pieces: [] }), 'ERR_INVALID_JSON')
    t.is(await refused({ pieces: [{ pieceCid: cid, sourceUrl: `${wrong.url}/piece/${cid}` }], extraData: 'zz' }), 'ERR_INVALID_EXTRA_DATA')
  } finally {
    await Promise.all([new Promise((resolve) => wrong.server.close(resolve)), new Promise((resolve) => long.server.close(resolve))])
    await stop(b)
  }
})

test('a pull with a signed AddPieces adds the pulled pieces to the data set', async t => {
  const [a, b] = await Promise.all([world(), world()])
  try {
    const key = generatePrivateKey()
    const wallet = createWalletClient({ account: privateKeyToAccount(key), chain: calibration, transport: http('http://127.0.0.1:9') })
    const created = await send('POST', `${b.url}/pdp/data-sets`, { recordKeeper: CALIBRATION.fwssAddress, extraData: await signCreateDataSet(wallet, { payee: PAYEE as Hex, clientDataSetId: 3n }) })
    const { dataSetId } = await created.json() as { dataSetId: number }
    const cid = await upload(a, randomBytes(5000))
    const extraData = await signAddPieces(wallet, { clientDataSetId: 3n, nonce: 1n, pieces: [{ pieceCid: Piece.parse(cid) }] })
    const answer = await pull(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `${a.url}/piece/${cid}` }], extraData, dataSetId })
    t.is(answer.status, 'complete')
    t.is(answer.dataSet?.status, 'complete')
    const set = await (await fetch(`${b.url}/pdp/data-sets/${dataSetId}`)).json() as { pieces: Array<{ pieceCid: string }> }
    t.deepEqual(set.pieces.map((p) => p.pieceCid), [cid])
    // signed by another key: the pieces are pulled, the data set refuses them
    const other = createWalletClient({ account: privateKeyToAccount(generatePrivateKey()), chain: calibration, transport: http('http://127.0.0.1:9') })
    const cid2 = await upload(a, randomBytes(6000))
    const forged = await pull(b.url, { pieces: [{ pieceCid: cid2, sourceUrl: `${a.url}/piece/${cid2}` }], extraData: await signAddPieces(other, { clientDataSetId: 3n, nonce: 2n, pieces: [{ pieceCid: Piece.parse(cid2) }] }), dataSetId })
    t.is(forged.status, 'failed')
    t.is(forged.dataSet?.error?.code, 'ERR_WRONG_SIGNER')
  } finally {
    await Promise.all([stop(a), stop(b)])
  }
})
