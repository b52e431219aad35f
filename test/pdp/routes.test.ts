/**
 * The PDP piece API on an in-process provider (docs/pdp.md): every status and
 * code Curio's handlers answer with, parked pieces expiring and being swept,
 * the park quota, CAR pieces on /ipfs/, and restart safety.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as dagJSON from '@ipld/dag-json'
import { verifyAsk } from '../../src/protocol/ask.js'
import type { Signed } from '../../src/protocol/signing.js'
import { pieceCidV2, pieceOf } from '../../proofs/index.js'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import type { PdpOptions } from '../../src/pdp/mount.js'
import { dfsPiece, importInto, MemoryBlocks, rawRequest, testTerms } from '../provider/fixtures.js'

interface World { dir: string, repo: Repo, node: ProviderNode, url: string, clock: { now: number } }

async function world (pdp: PdpOptions = {}, dir?: string, payee?: string): Promise<World> {
  const base = dir ?? await mkdtemp(join(tmpdir(), 'cairn-pdp-'))
  const repo = dir === undefined ? await Repo.init(join(base, 'repo')) : await Repo.open(join(base, 'repo'))
  const clock = { now: Math.floor(Date.now() / 1000) }
  const node = await startProviderNode(repo, testTerms(payee === undefined ? {} : { payee }), { pdp: { now: () => clock.now, ...pdp } })
  return { dir: base, repo, node, url: node.url, clock }
}

async function stop (w: World, keep = false): Promise<void> {
  await w.node.close()
  await w.repo.close()
  if (!keep) await rm(w.dir, { recursive: true, force: true })
}

async function codeOf (res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code
}

function post (url: string, body?: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: body === undefined ? {} : { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
}

function chunked (bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0
  return new ReadableStream({
    pull (controller) {
      if (offset >= bytes.length) { controller.close(); return }
      controller.enqueue(bytes.slice(offset, offset + chunk))
      offset += chunk
    }
  })
}

function putStream (url: string, bytes: Uint8Array): Promise<Response> {
  return fetch(url, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: chunked(bytes), duplex: 'half' } as RequestInit)
}

async function announce (w: World, bytes: Uint8Array): Promise<{ cid: string, location: string }> {
  const cid = (await pieceOf(bytes)).cid.toString()
  const res = await post(`${w.url}/pdp/piece`, { pieceCid: cid })
  if (res.status !== 201) throw new Error(`POST /pdp/piece answered ${res.status}: ${await res.text()}`)
  return { cid, location: res.headers.get('location') ?? '' }
}

async function streamIn (w: World, bytes: Uint8Array): Promise<{ location: string, put: Response }> {
  const created = await post(`${w.url}/pdp/piece/uploads`)
  const location = created.headers.get('location') ?? ''
  return { location, put: await putStream(`${w.url}${location}`, bytes) }
}

test('ping answers 200; the signed ask announces the payee', async t => {
  const payee = '0x' + '5a'.repeat(20)
  const w = await world({}, undefined, payee)
  try {
    t.is((await fetch(`${w.url}/pdp/ping`)).status, 200)
    const ask = dagJSON.decode(new Uint8Array(await (await fetch(`${w.url}/v1/ask`)).arrayBuffer())) as Signed<unknown>
    t.is(verifyAsk(ask).payload.payee, payee)
  } finally { await stop(w) }
})

test('classic upload: 201 + Location, PUT 204, found, served with Range, ETag and immutable caching; a second PUT 409; an unknown upload 404', async t => {
  const w = await world()
  try {
    const bytes = new Uint8Array(randomBytes(5000))
    const { cid, location } = await announce(w, bytes)
    t.regex(location, /^\/pdp\/piece\/upload\/[0-9a-f-]{36}$/)
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
    const put = await fetch(`${w.url}${location}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes })
    t.is(put.status, 204)
    const found = await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)
    t.is(found.status, 200)
    t.deepEqual(await found.json(), { pieceCid: cid })
    const again = await post(`${w.url}/pdp/piece`, { pieceCid: cid })
    t.is(again.status, 200)
    t.deepEqual(await again.json(), { pieceCid: cid })

    const whole = await fetch(`${w.url}/piece/${cid}`)
    t.is(whole.status, 200)
    t.is(whole.headers.get('etag'), `"${cid}"`)
    t.regex(whole.headers.get('cache-control') ?? '', /immutable/)
    t.deepEqual(new Uint8Array(await whole.arrayBuffer()), bytes)
    const part = await fetch(`${w.url}/piece/${cid}`, { headers: { Range: 'bytes=100-199' } })
    t.is(part.status, 206)
    t.deepEqual(new Uint8Array(await part.arrayBuffer()), bytes.subarray(100, 200))
    const head = await fetch(`${w.url}/piece/${cid}`, { method: 'HEAD' })
    t.is(head.headers.get('content-length'), '5000')
    const v1 = (await pieceOf(bytes)).cidV1.toString()
    t.is((await fetch(`${w.url}/piece/${v1}`)).status, 200, 'the v1 CID finds the piece too')

    const status = await fetch(`${w.url}/pdp/piece/${cid}/status`)
    const body = await status.json() as Record<string, unknown>
    t.like(body, { pieceCid: cid, status: 'parked', indexed: false, size: 5000, parked: true })

    const second = await fetch(`${w.url}${location}`, { method: 'PUT', body: bytes })
    t.is(second.status, 409)
    t.is(await codeOf(second), 'ERR_UPLOAD_DONE')
    const unknown = await fetch(`${w.url}/pdp/piece/upload/00000000-0000-4000-8000-000000000000`, { method: 'PUT', body: bytes })
    t.is(unknown.status, 404)
    t.is(await codeOf(unknown), 'ERR_UPLOAD_NOT_FOUND')
  } finally { await stop(w) }
})

test('classic upload: other bytes are 400 ERR_PIECE_CID_MISMATCH, a short body 400 ERR_CONTENT_LENGTH, a long one 413; the upload stays open for a good PUT', async t => {
  const w = await world()
  try {
    const bytes = new Uint8Array(randomBytes(2000))
    const { cid, location } = await announce(w, bytes)
    const other = new Uint8Array(randomBytes(2000))
    const mismatch = await fetch(`${w.url}${location}`, { method: 'PUT', body: other })
    t.is(mismatch.status, 400)
    t.is(await codeOf(mismatch), 'ERR_PIECE_CID_MISMATCH')
    const short = await putStream(`${w.url}${location}`, bytes.subarray(0, 1500))
    t.is(short.status, 400)
    t.is(await codeOf(short), 'ERR_CONTENT_LENGTH')
    const long = await fetch(`${w.url}${location}`, { method: 'PUT', body: new Uint8Array(2001) })
    t.is(long.status, 413)
    t.is(await codeOf(long), 'ERR_PAYLOAD_TOO_LARGE')
    const longChunked = await putStream(`${w.url}${location}`, new Uint8Array(randomBytes(3000)))
    t.is(longChunked.status, 413)
    t.is(await codeOf(longChunked), 'ERR_PAYLOAD_TOO_LARGE')
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
    t.is((await fetch(`${w.url}${location}`, { method: 'PUT', body: bytes })).status, 204)
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 200)
    t.deepEqual(await readdir(join(w.repo.path, 'pdp', 'pieces')), [`${cid}.car`], 'no debris of the failed PUTs')
  } finally { await stop(w) }
})

test('POST /pdp/piece refuses bad CIDs and sizes outside 127 … 1,065,353,216 bytes with codes', async t => {
  const w = await world()
  try {
    const root = new Uint8Array(32).fill(1)
    const cases: Array<[unknown, number, string]> = [
      ['not a cid', 400, 'ERR_INVALID_CID'],
      [42, 400, 'ERR_INVALID_CID'],
      [(await pieceOf(new Uint8Array(300))).cidV1.toString(), 400, 'ERR_INVALID_CID'],
      // 100 payload bytes in a 4-leaf tree
      [pieceCidV2(root, 2, 27n).toString(), 400, 'ERR_UPLOAD_TOO_SMALL'],
      // a 2 GiB padded piece
      [pieceCidV2(root, 26, 0n).toString(), 413, 'ERR_PAYLOAD_TOO_LARGE']
    ]
    for (const [pieceCid, status, code] of cases) {
      const res = await post(`${w.url}/pdp/piece`, { pieceCid })
      t.is(res.status, status, String(pieceCid))
      t.is(await codeOf(res), code, String(pieceCid))
    }
    const noBody = await fetch(`${w.url}/pdp/piece`, { method: 'POST' })
    t.is(noBody.status, 400)
    t.is(await codeOf(noBody), 'ERR_INVALID_JSON')
    const missing = await fetch(`${w.url}/pdp/piece`)
    t.is(missing.status, 400)
    t.is(await codeOf(missing), 'ERR_INVALID_CID')
    const tooLong = await fetch(`${w.url}/pdp/piece/uploads/${'0'.repeat(8)}-0000-4000-8000-000000000000`, { method: 'PUT', headers: { 'Content-Length': '1065353217' } })
    t.is(tooLong.status, 404, 'an unknown upload is refused before its length is looked at')
  } finally { await stop(w) }
})

test('streaming upload: 201, chunked PUT 204, not found until finalized, a wrong CID 400, the right one 200; finalize before bytes 409', async t => {
  const w = await world()
  try {
    const early = await post(`${w.url}/pdp/piece/uploads`)
    t.is(early.status, 201)
    const earlyLocation = early.headers.get('location') ?? ''
    t.regex(earlyLocation, /^\/pdp\/piece\/uploads\/[0-9a-f-]{36}$/)
    const pending = await post(`${w.url}${earlyLocation}`, { pieceCid: (await pieceOf(new Uint8Array(200))).cid.toString() })
    t.is(pending.status, 409)
    t.is(await codeOf(pending), 'ERR_UPLOAD_PENDING')

    const bytes = new Uint8Array(randomBytes(300_000))
    const cid = (await pieceOf(bytes)).cid.toString()
    const { location, put } = await streamIn(w, bytes)
    t.is(put.status, 204)
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
    t.is((await fetch(`${w.url}/piece/${cid}`)).status, 404, 'not served before it is finalized')
    const wrong = await post(`${w.url}${location}`, { pieceCid: (await pieceOf(bytes.subarray(1))).cid.toString() })
    t.is(wrong.status, 400)
    t.is(await codeOf(wrong), 'ERR_PIECE_CID_MISMATCH')
    const right = await post(`${w.url}${location}`, { pieceCid: cid })
    t.is(right.status, 200)
    t.deepEqual(await right.json(), { pieceCid: cid })
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 200)
    t.is((await post(`${w.url}${location}`, { pieceCid: cid })).status, 404, 'a finalized upload is gone')
    const again = await putStream(`${w.url}${early.headers.get('location') ?? ''}`, new Uint8Array(100))
    t.is(again.status, 400)
    t.is(await codeOf(again), 'ERR_UPLOAD_TOO_SMALL')
  } finally { await stop(w) }
})

test('a piece that is a CARv1 is indexed and its blocks served on /ipfs/; raw bytes are not', async t => {
  const w = await world()
  try {
    const blocks = new MemoryBlocks()
    const root = await importInto(blocks, [{ path: 'a.bin', content: new Uint8Array(randomBytes(600_000)) }], { chunkSize: 65536 })
    const { car, pieceCid } = await dfsPiece(root, blocks)
    const { location, put } = await streamIn(w, car)
    t.is(put.status, 204)
    t.is((await post(`${w.url}${location}`, { pieceCid: pieceCid.toString() })).status, 200)
    const status = await (await fetch(`${w.url}/pdp/piece/${pieceCid.toString()}/status`)).json() as { indexed: boolean }
    t.true(status.indexed)
    const block = await fetch(`${w.url}/ipfs/${root.toString()}?format=raw`)
    t.is(block.status, 200)
    t.deepEqual(new Uint8Array(await block.arrayBuffer()), blocks.map.get(root.toString()))
    const whole = await fetch(`${w.url}/ipfs/${root.toString()}?format=car&dag-scope=all&dups=n`)
    t.is(whole.status, 200)
    t.deepEqual(new Uint8Array(await whole.arrayBuffer()), car, 'the canonical CAR is streamed as stored')
  } finally { await stop(w) }
})

test('parked pieces expire after the TTL: not found, not served, swept with their keys, file and quota usage', async t => {
  const w = await world({ parkTtl: 3600 })
  try {
    const bytes = new Uint8Array(randomBytes(4000))
    const { cid, location } = await announce(w, bytes)
    t.is((await fetch(`${w.url}${location}`, { method: 'PUT', body: bytes })).status, 204)
    t.is(w.node.pdp.pieces.quota.total, 4000n)
    w.clock.now += 3599
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 200)
    t.is(await w.node.pdp.sweep(), 0)
    w.clock.now += 2
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 404)
    t.is((await fetch(`${w.url}/piece/${cid}`)).status, 404)
    t.is(await w.node.pdp.sweep(), 1)
    t.deepEqual(await readdir(join(w.repo.path, 'pdp', 'pieces')), [])
    t.is(w.node.pdp.pieces.quota.total, 0n)
    const db = await w.repo.db()
    const left: string[] = []
    for await (const key of db.keys({ gte: 'pdp!', lt: 'pdp!\xff' })) left.push(key)
    t.deepEqual(left, ['pdp!usage-total'])
    t.is((await fetch(`${w.url}/pdp/piece/${cid}/status`)).status, 404)
  } finally { await stop(w) }
})

test('naming a held piece again restarts its TTL', async t => {
  const w = await world({ parkTtl: 100 })
  try {
    const bytes = new Uint8Array(randomBytes(1000))
    const { cid, location } = await announce(w, bytes)
    await fetch(`${w.url}${location}`, { method: 'PUT', body: bytes })
    w.clock.now += 90
    t.is((await post(`${w.url}/pdp/piece`, { pieceCid: cid })).status, 200)
    w.clock.now += 90
    t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 200)
    t.is(await w.node.pdp.sweep(), 0)
  } finally { await stop(w) }
})

test('the park quota: per client and in total, a coded 429 before or while the bytes arrive', async t => {
  const w = await world({ parkQuotaPerClient: 10_000n, parkQuota: 1n << 30n })
  try {
    const first = new Uint8Array(randomBytes(6000))
    const { location } = await announce(w, first)
    t.is((await fetch(`${w.url}${location}`, { method: 'PUT', body: first })).status, 204)
    const big = await post(`${w.url}/pdp/piece`, { pieceCid: (await pieceOf(new Uint8Array(randomBytes(5000)))).cid.toString() })
    t.is(big.status, 429)
    t.is(await codeOf(big), 'ERR_PARK_QUOTA_CLIENT')
    const { put } = await streamIn(w, new Uint8Array(randomBytes(300_000)))
    t.is(put.status, 429)
    t.is(await codeOf(put), 'ERR_PARK_QUOTA_CLIENT')
    t.is(w.node.pdp.pieces.quota.total, 6000n, 'the refused stream left nothing counted')
    t.deepEqual((await readdir(join(w.repo.path, 'pdp', 'pieces'))).length, 1)
  } finally { await stop(w) }
  const total = await world({ parkQuotaPerClient: 1n << 30n, parkQuota: 3000n })
  try {
    const { put } = await streamIn(total, new Uint8Array(randomBytes(300_000)))
    t.is(put.status, 429)
    t.is(await codeOf(put), 'ERR_PARK_QUOTA')
  } finally { await stop(total) }
})

test('open upload sessions are bounded: 429 ERR_TOO_MANY_UPLOADS', async t => {
  const w = await world({ sessions: { maxPerClient: 3 } })
  try {
    for (let i = 0; i < 3; i++) t.is((await post(`${w.url}/pdp/piece/uploads`)).status, 201)
    const over = await post(`${w.url}/pdp/piece/uploads`)
    t.is(over.status, 429)
    t.is(await codeOf(over), 'ERR_TOO_MANY_UPLOADS')
  } finally { await stop(w) }
})

test('restart: files no key names are removed, expired pieces are swept, held pieces stay', async t => {
  const w = await world({ parkTtl: 1000 })
  const bytes = new Uint8Array(randomBytes(3000))
  const { cid, location } = await announce(w, bytes)
  await fetch(`${w.url}${location}`, { method: 'PUT', body: bytes })
  const older = new Uint8Array(randomBytes(3000))
  const announced = await announce(w, older)
  await fetch(`${w.url}${announced.location}`, { method: 'PUT', body: older })
  await stop(w, true)
  const orphan = (await pieceOf(new Uint8Array(200).fill(9))).cid.toString()
  await writeFile(join(w.dir, 'repo', 'pdp', 'pieces', `${orphan}.car`), new Uint8Array(200).fill(9))
  // both pieces expire at the same second; only the file no key names goes at once
  const again = await world({ parkTtl: 1000 }, w.dir)
  try {
    const files = await readdir(join(again.repo.path, 'pdp', 'pieces'))
    t.deepEqual(files.sort(), [`${cid}.car`, `${announced.cid}.car`].sort())
    t.is(again.node.pdp.pieces.quota.total, 6000n, 'usage is read back from its counters')
    t.is((await fetch(`${again.url}/pdp/piece?pieceCid=${cid}`)).status, 200)
  } finally { await stop(again, true) }
  const later = await world({ parkTtl: 1000, now: () => Math.floor(Date.now() / 1000) + 2000 }, w.dir)
  try {
    t.deepEqual(await readdir(join(later.repo.path, 'pdp', 'pieces')), [], 'swept at start')
    t.is(later.node.pdp.pieces.quota.total, 0n)
  } finally { await stop(later) }
})

test('a piece CID from a query or body is checked to be v2 (CID.parse of a v1 is refused)', async t => {
  const w = await world()
  try {
    const v1 = (await pieceOf(new Uint8Array(300))).cidV1.toString()
    t.true(CID.parse(v1).code === 0xf101)
    const res = await fetch(`${w.url}/pdp/piece?pieceCid=${v1}`)
    t.is(res.status, 400)
    t.is(await codeOf(res), 'ERR_INVALID_CID')
  } finally { await stop(w) }
})

test('a PDP upload that stalls is cut off with 408 ERR_TIMEOUT and leaves nothing', async t => {
  const base = await mkdtemp(join(tmpdir(), 'cairn-pdp-'))
  const repo = await Repo.init(join(base, 'repo'))
  const node = await startProviderNode(repo, testTerms(), { limits: { idleTimeoutMs: 300 } })
  try {
    const created = await post(`${node.url}/pdp/piece/uploads`)
    const location = created.headers.get('location') ?? ''
    const { hostname, port } = new URL(node.url)
    const answer = await rawRequest(node.url, [
      `PUT ${location} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Length: 100000\r\n\r\n`,
      new Uint8Array(5000),
      { pauseMs: 2000 }
    ], 5000)
    t.is(answer.status, 408)
    t.regex(answer.body, /ERR_TIMEOUT/)
    t.deepEqual(await readdir(join(repo.path, 'pdp', 'pieces')), [])
    t.deepEqual(await readdir(repo.tmpDir), [])
  } finally {
    await node.close()
    await repo.close()
    await rm(base, { recursive: true, force: true })
  }
})

test('a crash between the rename and the batch leaves a file no key names; the next start removes it', async t => {
  const crash = new Error('simulated crash after the rename')
  const w = await world({ onCommitted: () => { throw crash } })
  const bytes = new Uint8Array(randomBytes(2000))
  const { cid, location } = await announce(w, bytes)
  const put = await fetch(`${w.url}${location}`, { method: 'PUT', body: bytes })
  t.is(put.status, 500)
  t.deepEqual(await readdir(join(w.repo.path, 'pdp', 'pieces')), [`${cid}.car`])
  t.is((await fetch(`${w.url}/pdp/piece?pieceCid=${cid}`)).status, 404, 'not found: no key names it')
  t.is((await fetch(`${w.url}/piece/${cid}`)).status, 404)
  await stop(w, true)
  const again = await world({}, w.dir)
  try {
    t.deepEqual(await readdir(join(again.repo.path, 'pdp', 'pieces')), [])
    t.is(again.node.pdp.pieces.quota.total, 0n)
  } finally { await stop(again) }
})

test('the provider\'s body deadline holds on the PDP routes: a JSON body sent a byte at a time is cut off with 408 ERR_TIMEOUT', async t => {
  const base = await mkdtemp(join(tmpdir(), 'cairn-pdp-'))
  const repo = await Repo.init(join(base, 'repo'))
  const node = await startProviderNode(repo, testTerms(), { limits: { bodyTimeoutMs: 400, idleTimeoutMs: 10_000 } })
  t.teardown(async () => {
    await node.close()
    await repo.close()
    await rm(base, { recursive: true, force: true })
  })
  const body = JSON.stringify({ pieceCid: 'bafkzcibdqqcapug2lehfxfgkijckuezzipiwt2wihm3ukrv5htag3dw5zwjudqyu' })
  const drip = [...body].flatMap(ch => [ch, { pauseMs: 100 }])
  const res = await rawRequest(node.url, [`POST /pdp/piece HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, ...drip], 20_000)
  t.is(res.status, 408)
  t.regex(res.body, /"code":"ERR_TIMEOUT".*within 400 ms/)
})
