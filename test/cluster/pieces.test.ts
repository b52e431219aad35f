/**
 * The internal node-to-node piece endpoint and its client, in isolation: a
 * small piece directory behind the handler on a loopback server. Only requests
 * signed with the cluster's secret, fresh and not replayed, are served; Range
 * works as on /piece.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import type { CID } from 'multiformats/cid'
import { pieceOf } from '../../proofs/index.js'
import { CairnError } from '../../src/errors.js'
import { ClusterAuth, CLUSTER_HEADERS, generateClusterSecret, parseClusterSecret, signClusterRequest } from '../../src/cluster/auth.js'
import { INTERNAL_PIECE_ROUTE, internalPieceHandler, readRemotePiece } from '../../src/cluster/pieces.js'
import { Router, sendError, toCairnError } from '../../src/http/server.js'
import type { PieceSource } from '../../src/provider/interface.js'

const secret = parseClusterSecret(generateClusterSecret())
const dir = await mkdtemp(join(tmpdir(), 'cairn-internal-pieces-'))
const pieces = new Map<string, Uint8Array>()
let server: Server
let url: string

/** Pieces as files named by their piece CID, as the piece store keeps them. */
const source: PieceSource = {
  async open (cid: CID) {
    const path = join(dir, `${cid.toString()}.car`)
    const info = await stat(path).catch(() => undefined)
    if (info === undefined) return undefined
    return { size: info.size, createReadStream: (start: number, end: number) => createReadStream(path, { start, end }) }
  }
}

async function addPiece (bytes: Uint8Array): Promise<string> {
  const cid = (await pieceOf(bytes)).cid.toString()
  await writeFile(join(dir, `${cid}.car`), bytes)
  pieces.set(cid, bytes)
  return cid
}

let small: string
let large: string
let absent: string

test.before(async () => {
  small = await addPiece(randomBytes(1000))
  large = await addPiece(randomBytes(8 << 20))
  absent = (await pieceOf(randomBytes(100))).cid.toString()
  const router = new Router().on('GET', INTERNAL_PIECE_ROUTE, internalPieceHandler({ auth: new ClusterAuth(secret), pieces: source }))
  server = createServer((req, res) => {
    const ctx = { req, res, url: new URL(req.url ?? '/', 'http://localhost'), params: {}, signal: new AbortController().signal }
    void (async () => {
      const match = router.match(req.method ?? 'GET', ctx.url.pathname)
      await match.handler({ ...ctx, params: match.params })
    })().catch((err) => { sendError(res, toCairnError(err)) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

test.after.always(async () => {
  await new Promise(resolve => server?.close(resolve))
  await rm(dir, { recursive: true, force: true })
})

async function bytesOf (body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** A raw GET with the given headers; returns the status and the error code of the body. */
async function raw (path: string, headers: Record<string, string>): Promise<{ status: number, code: string | undefined }> {
  const res = await request(url + path, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode >= 400 ? JSON.parse(text).error.code : undefined }
}

const pathOf = (cid: string): string => `/internal/v1/pieces/${cid}`

test('a node reads a whole piece from another, streamed', async (t) => {
  const piece = await readRemotePiece(url, large, { secret, node: 'node-b' })
  t.deepEqual([piece.size, piece.start, piece.end], [8 << 20, 0, (8 << 20) - 1])
  const hash = createHash('sha256')
  let chunks = 0
  for await (const chunk of piece.body) { hash.update(chunk); chunks++ }
  t.true(chunks > 1, 'the body arrives in chunks')
  t.is(hash.digest('hex'), createHash('sha256').update(pieces.get(large) as Uint8Array).digest('hex'))
})

test('a range of a piece, closed or open-ended', async (t) => {
  const whole = pieces.get(small) as Uint8Array
  const part = await readRemotePiece(url, small, { secret, node: 'node-b', range: { start: 100, end: 199 } })
  t.deepEqual([part.size, part.start, part.end], [1000, 100, 199])
  t.deepEqual(await bytesOf(part.body), Buffer.from(whole.subarray(100, 200)))
  const tail = await readRemotePiece(url, small, { secret, node: 'node-b', range: { start: 990 } })
  t.deepEqual([tail.start, tail.end], [990, 999])
  t.deepEqual(await bytesOf(tail.body), Buffer.from(whole.subarray(990)))
})

test('a piece the node does not hold is ERR_PIECE_NOT_FOUND; a range past its end ERR_RANGE_NOT_SATISFIABLE', async (t) => {
  await t.throwsAsync(readRemotePiece(url, absent, { secret, node: 'node-b' }), { instanceOf: CairnError, code: 'ERR_PIECE_NOT_FOUND' })
  await t.throwsAsync(readRemotePiece(url, small, { secret, node: 'node-b', range: { start: 5000 } }), { instanceOf: CairnError, code: 'ERR_RANGE_NOT_SATISFIABLE' })
  await t.throwsAsync(readRemotePiece(url, 'not-a-cid', { secret, node: 'node-b' }), { instanceOf: CairnError, code: 'ERR_INVALID_CID' })
})

test('a request without the cluster\'s signature, or signed with another secret, is ERR_CLUSTER_AUTH', async (t) => {
  t.deepEqual(await raw(pathOf(small), {}), { status: 403, code: 'ERR_CLUSTER_AUTH' })
  const other = parseClusterSecret(generateClusterSecret())
  await t.throwsAsync(readRemotePiece(url, small, { secret: other, node: 'intruder' }), { instanceOf: CairnError, code: 'ERR_CLUSTER_AUTH' })
  const headers = signClusterRequest(secret, 'node-b', { method: 'GET', path: pathOf(small) })
  for (const name of Object.values(CLUSTER_HEADERS)) {
    const { [name]: _left, ...without } = headers
    t.deepEqual(await raw(pathOf(small), without), { status: 403, code: 'ERR_CLUSTER_AUTH' }, `without ${name}`)
  }
})

test('a captured request cannot be replayed, nor turned to another piece or range', async (t) => {
  const headers = signClusterRequest(secret, 'node-b', { method: 'GET', path: pathOf(small), range: 'bytes=0-9' })
  t.deepEqual(await raw(pathOf(small), { ...headers, range: 'bytes=0-9' }), { status: 206, code: undefined })
  t.deepEqual(await raw(pathOf(small), { ...headers, range: 'bytes=0-9' }), { status: 403, code: 'ERR_CLUSTER_AUTH' }, 'replayed')
  const fresh = signClusterRequest(secret, 'node-b', { method: 'GET', path: pathOf(small), range: 'bytes=0-9' })
  t.deepEqual(await raw(pathOf(small), { ...fresh, range: 'bytes=0-999' }), { status: 403, code: 'ERR_CLUSTER_AUTH' }, 'another range')
  t.deepEqual(await raw(pathOf(large), { ...fresh, range: 'bytes=0-9' }), { status: 403, code: 'ERR_CLUSTER_AUTH' }, 'another piece')
  t.deepEqual(await raw(pathOf(small), { ...fresh, [CLUSTER_HEADERS.node]: 'node-c', range: 'bytes=0-9' }), { status: 403, code: 'ERR_CLUSTER_AUTH' }, 'another sender')
})

test('a request dated outside the window is refused; within it, accepted', (t) => {
  let now = 1_800_000_000_000
  const auth = new ClusterAuth(secret, { windowMs: 30_000, now: () => now })
  const request = { method: 'GET', path: '/internal/v1/pieces/x' }
  const old = signClusterRequest(secret, 'a', request, now - 31_000)
  const future = signClusterRequest(secret, 'a', request, now + 31_000)
  const skewed = signClusterRequest(secret, 'a', request, now + 29_000)
  t.throws(() => auth.verify(request, old), { instanceOf: CairnError, code: 'ERR_CLUSTER_AUTH', message: /clocks/ })
  t.throws(() => auth.verify(request, future), { instanceOf: CairnError, code: 'ERR_CLUSTER_AUTH' })
  t.is(auth.verify(request, skewed), 'a')
  // once the window has passed, the nonce is forgotten and the time alone refuses the request
  now += 120_000
  t.throws(() => auth.verify(request, skewed), { instanceOf: CairnError, code: 'ERR_CLUSTER_AUTH', message: /clocks/ })
})

test('a cluster secret is at least 32 bytes of hex or base64', (t) => {
  t.is(parseClusterSecret('ab'.repeat(32)).length, 32)
  t.is(parseClusterSecret(Buffer.alloc(48, 7).toString('base64')).length, 48)
  for (const bad of ['ab'.repeat(31), 'correct horse battery staple', '', Buffer.alloc(16).toString('base64')]) {
    t.throws(() => parseClusterSecret(bad), { instanceOf: CairnError, code: 'ERR_CLUSTER_SECRET' }, bad)
  }
  t.throws(() => new ClusterAuth(new Uint8Array(16)), { instanceOf: CairnError, code: 'ERR_CLUSTER_SECRET' })
})

test('a node that cannot be reached is ERR_UNREACHABLE', async (t) => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  await t.throwsAsync(readRemotePiece(`http://127.0.0.1:${port}`, small, { secret, node: 'node-b' }), { instanceOf: CairnError, code: 'ERR_UNREACHABLE' })
})
