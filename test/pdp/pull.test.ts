/**
 * `POST /pdp/piece/pull` between two cairn providers on loopback (docs/pdp.md
 * "Pull"): the piece is fetched from the other's `/piece`, kept only when its
 * bytes are the named piece, optionally added to a data set by a signed
 * AddPieces; the client polls by posting the request again. The providers
 * here pull from loopback, so they allow any source (`--pull-sources any`);
 * the refusals of the default are tested without it, and a pull kept in the
 * store is resumed by a provider restarted on the same repo.
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
import type { PullOptions } from '../../src/pdp/pull.js'
import { LevelStore } from '../../src/state/level.js'
import { spaces } from '../../src/state/spaces.js'
import { testTerms } from '../provider/fixtures.js'

const PAYEE = '0x' + '5a'.repeat(20)

interface World { dir: string, repo: Repo, node: ProviderNode, url: string }

const ANY: Partial<PullOptions> = { sources: 'any' }

async function world (pull: Partial<PullOptions> = ANY): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pdp-pull-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const node = await startProviderNode(repo, testTerms({ payee: PAYEE }), { pdp: { pull } })
  return { dir, repo, node, url: node.url }
}

/** The same repo served again by a new node, as after a restart. */
async function restart (w: World, pull: Partial<PullOptions> = ANY): Promise<void> {
  await w.node.close()
  w.node = await startProviderNode(w.repo, testTerms({ payee: PAYEE }), { pdp: { pull } })
  w.url = w.node.url
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

interface PullAnswer { status: string, pieces: Array<{ pieceCid: string, status: string, error?: { code: string, message: string } }>, dataSet?: { status: string, dataSetId?: number, error?: { code: string } } }

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

/** The code of a refused pull request, with its HTTP status. */
async function refusal (url: string, body: unknown): Promise<[number, string]> {
  const res = await send('POST', `${url}/pdp/piece/pull`, body)
  return [res.status, ((await res.json()) as { error?: { code: string } }).error?.code ?? '']
}

test('by default a source on loopback, a private network, link-local (cloud metadata) or another special address is refused, by address or by name', async t => {
  const b = await world({})
  try {
    const cid = (await pieceOf(randomBytes(1000))).cid.toString()
    const hosts = ['127.0.0.1', '127.1.2.3', '2130706433', '10.1.2.3', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255',
      '[::1]', '[::]', '[fe80::1]', '[fd00::1]', '[ff02::1]', '[::ffff:127.0.0.1]', '[::ffff:169.254.169.254]', 'localhost']
    for (const host of hosts) {
      t.deepEqual(await refusal(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `http://${host}:9/piece/${cid}` }] }), [403, 'ERR_PULL_SOURCE_FORBIDDEN'], host)
    }
    // nothing was started: no pull is remembered, no piece kept
    t.is((await fetch(`${b.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
  } finally {
    await stop(b)
  }
})

test('a name is checked by all its addresses, again when fetched, and the fetch connects to the address checked', async t => {
  const bytes = randomBytes(3000)
  const cid = (await pieceOf(bytes)).cid.toString()
  const source = await fakeSource(bytes)
  const port = new URL(source.url).port
  // the machine's resolver knows none of these names: only the pinned address can reach the source
  let rebinds = 0
  const names: Record<string, () => string[]> = {
    'mixed.test': () => ['198.41.0.4', '10.0.0.7'],
    'rebind.test': () => rebinds++ === 0 ? ['198.41.0.4'] : ['127.0.0.1'],
    'source.test': () => ['127.0.0.1']
  }
  const resolve = async (host: string): Promise<Array<{ address: string, family: number }>> => (names[host]?.() ?? []).map((address) => ({ address, family: 4 }))
  const strict = await world({ resolve })
  const open = await world({ sources: 'any', resolve })
  try {
    t.deepEqual(await refusal(strict.url, { pieces: [{ pieceCid: cid, sourceUrl: `http://mixed.test:${port}/piece/${cid}` }] }), [403, 'ERR_PULL_SOURCE_FORBIDDEN'])
    t.deepEqual(await refusal(strict.url, { pieces: [{ pieceCid: cid, sourceUrl: `http://nowhere.test:${port}/piece/${cid}` }] }), [502, 'ERR_PULL_FAILED'])
    // public when the request was checked, loopback when fetched: refused at the fetch
    const rebound = await pull(strict.url, { pieces: [{ pieceCid: cid, sourceUrl: `http://rebind.test:${port}/piece/${cid}` }] })
    t.is(rebound.pieces[0]?.error?.code, 'ERR_PULL_SOURCE_FORBIDDEN')
    t.is(rebinds, 2)
    const pinned = await pull(open.url, { pieces: [{ pieceCid: cid, sourceUrl: `http://source.test:${port}/piece/${cid}` }] })
    t.is(pinned.status, 'complete')
    t.deepEqual(new Uint8Array(await (await fetch(`${open.url}/piece/${cid}`)).arrayBuffer()), new Uint8Array(bytes))
  } finally {
    await new Promise((resolve) => source.server.close(resolve))
    await Promise.all([stop(strict), stop(open)])
  }
})

test('a redirect from the source is not followed', async t => {
  const bytes = randomBytes(3000)
  const cid = (await pieceOf(bytes)).cid.toString()
  const good = await fakeSource(bytes)
  const hop = createServer((_req, res) => { res.writeHead(302, { Location: `${good.url}/piece/${cid}` }); res.end() })
  await new Promise<void>((resolve) => hop.listen(0, '127.0.0.1', resolve))
  const b = await world()
  try {
    const answer = await pull(b.url, { pieces: [{ pieceCid: cid, sourceUrl: `http://127.0.0.1:${(hop.address() as AddressInfo).port}/piece/${cid}` }] })
    t.is(answer.status, 'failed')
    t.is(answer.pieces[0]?.error?.code, 'ERR_PULL_FAILED')
    t.regex(answer.pieces[0]?.error?.message ?? '', /redirect/)
    t.is((await fetch(`${b.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
  } finally {
    await Promise.all([new Promise((resolve) => good.server.close(resolve)), new Promise((resolve) => hop.close(resolve))])
    await stop(b)
  }
})

/** Resolves when `p` does, or fails after `ms` saying what did not happen. */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} did not happen within ${ms} ms`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** A source whose first answer stalls after a few bytes; later ones send the piece whole. */
async function stallingSource (bytes: Uint8Array): Promise<{ url: string, server: Server, requests: () => number, nth: (n: number) => Promise<void> }> {
  let count = 0
  const waiters = new Map<number, () => void>()
  const seen = new Map<number, Promise<void>>()
  const nth = (n: number): Promise<void> => {
    let p = seen.get(n)
    if (p === undefined) {
      p = new Promise<void>((resolve) => { waiters.set(n, resolve) })
      seen.set(n, p)
    }
    return p
  }
  const server = createServer((_req, res) => {
    count++
    void nth(count)
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) })
    if (count === 1) res.write(bytes.subarray(0, 1000))
    else res.end(bytes)
    waiters.get(count)?.()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests: () => count, nth }
}

async function closeAll (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

test('a pull cut by a restart is resumed by the restarted provider before anyone polls, and an ended one is still answered after another', async t => {
  const b = await world()
  const bytes = randomBytes(50_000)
  const cid = (await pieceOf(bytes)).cid.toString()
  const source = await stallingSource(bytes)
  try {
    const body = { pieces: [{ pieceCid: cid, sourceUrl: `${source.url}/piece/${cid}` }] }
    const first = await send('POST', `${b.url}/pdp/piece/pull`, body)
    t.is(first.status, 200)
    t.not(((await first.json()) as PullAnswer).status, 'complete')
    await within(source.nth(1), 20_000, 'the first fetch')
    await restart(b)
    // nobody asked the new node: the store told it
    await within(source.nth(2), 20_000, 'the resumed fetch')
    const answer = await pull(b.url, body)
    t.is(answer.status, 'complete')
    t.is(source.requests(), 2)
    t.deepEqual(new Uint8Array(await (await fetch(`${b.url}/piece/${cid}`)).arrayBuffer()), new Uint8Array(bytes))
    await restart(b)
    const after = await send('POST', `${b.url}/pdp/piece/pull`, body)
    t.is(((await after.json()) as PullAnswer).status, 'complete')
    t.is(source.requests(), 2)
  } finally {
    await closeAll(source.server)
    await stop(b)
  }
})

test('a data-set step a restart cut short fails with ERR_PULL_INTERRUPTED instead of running twice', async t => {
  const b = await world()
  const bytes = randomBytes(5000)
  const cid = (await pieceOf(bytes)).cid.toString()
  const source = await stallingSource(bytes)
  try {
    const key = generatePrivateKey()
    const wallet = createWalletClient({ account: privateKeyToAccount(key), chain: calibration, transport: http('http://127.0.0.1:9') })
    const created = await send('POST', `${b.url}/pdp/data-sets`, { recordKeeper: CALIBRATION.fwssAddress, extraData: await signCreateDataSet(wallet, { payee: PAYEE as Hex, clientDataSetId: 4n }) })
    const { dataSetId } = await created.json() as { dataSetId: number }
    const extraData = await signAddPieces(wallet, { clientDataSetId: 4n, nonce: 1n, pieces: [{ pieceCid: Piece.parse(cid) }] })
    const body = { pieces: [{ pieceCid: cid, sourceUrl: `${source.url}/piece/${cid}` }], extraData, dataSetId }
    t.is((await send('POST', `${b.url}/pdp/piece/pull`, body)).status, 200)
    await within(source.nth(1), 20_000, 'the first fetch')
    await b.node.close()
    // as the store holds a pull stopped while its pieces were being added
    const state = new LevelStore(await b.repo.db())
    const kept = []
    for await (const [k, value] of state.iterate(spaces.pdpPulls)) kept.push([k, JSON.parse(new TextDecoder().decode(value))] as const)
    t.is(kept.length, 1)
    const [k, job] = kept[0] as readonly [string, { pieces: Array<{ status: string }>, dataSet: { status: string } }]
    for (const p of job.pieces) p.status = 'complete'
    job.dataSet.status = 'inProgress'
    await state.batch([{ type: 'put', space: spaces.pdpPulls, key: k, value: new TextEncoder().encode(JSON.stringify(job)) }])
    b.node = await startProviderNode(b.repo, testTerms({ payee: PAYEE }), { pdp: { pull: ANY } })
    b.url = b.node.url
    const answer = await pull(b.url, body)
    t.is(answer.status, 'failed')
    t.is(answer.dataSet?.error?.code, 'ERR_PULL_INTERRUPTED')
    t.is(source.requests(), 1)
  } finally {
    await closeAll(source.server)
    await stop(b)
  }
})
