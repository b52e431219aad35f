/**
 * The provider's deal flow end to end over HTTP, on a real repo (LevelDB
 * ledger, piece store): signed proposal → acceptance → signed upload verified
 * while it streams → active deal whose blocks the gateway and the piece route
 * serve; and every way an upload can be refused leaves nothing behind.
 */
import test, { type ExecutionContext } from 'ava'
import { mkdtemp, open, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagPB from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { pieceOf } from '../../proofs/index.js'
import { signProposal } from '../../src/protocol/proposal.js'
import type { Proposal } from '../../src/protocol/interface.js'
import { encodeFrame, encodeHeader, readCar } from '../../src/car/index.js'
import { uploadAuthorization } from '../../src/protocol/auth.js'
import { ProviderDeals } from '../../src/provider/deals.js'
import { createProviderServer, type HttpService } from '../../src/provider/server.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { Repo } from '../../src/repo/repo.js'
import { bytesOf, dfsPiece, importInto, MemoryBlocks, testTerms } from './fixtures.js'
import { startProviderNode } from '../../src/provider/node.js'

interface Payload { root: CID, car: Uint8Array, pieceCid: CID, pieceSize: bigint, blocks: MemoryBlocks }

/** A DFS-ordered CARv1 of a small UnixFS directory, and its piece. */
async function payload (seed: number): Promise<Payload> {
  const blocks = new MemoryBlocks()
  const root = await importInto(blocks, [
    { path: 'd/a.bin', content: bytesOf(5000, seed) },
    { path: 'd/b.txt', content: new TextEncoder().encode(`seed ${seed}\n`) }
  ], { chunkSize: 1024 })
  const { car, pieceCid, pieceSize } = await dfsPiece(root, blocks)
  return { root, car, pieceCid, pieceSize, blocks }
}

interface World {
  dir: string
  repo: Repo
  service: HttpService
  url: string
  node: ProviderDeals
  client: ReturnType<typeof identityFromSecret>
}

async function world (options: { hashOnRead?: boolean } = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-provider-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const { node, service, url } = await startProviderNode(repo, testTerms(), options)
  return { dir, repo, service, url, node, client: identityFromSecret(generateSecretKey()) }
}

async function teardown (w: World): Promise<void> {
  await w.service.close()
  await w.repo.close()
  await rm(w.dir, { recursive: true, force: true })
}

function proposalFor (w: World, p: Payload, nonce: bigint, overrides: Partial<Proposal> = {}): Proposal {
  const now = Math.floor(Date.now() / 1000)
  return {
    pieceCid: p.pieceCid,
    pieceSize: p.pieceSize,
    payloadCid: p.root,
    payloadSize: BigInt(p.car.length),
    client: w.client.did,
    provider: w.repo.identity.did,
    label: 'test',
    start: now,
    end: now + 86400,
    pricePerGiBDay: 40n,
    providerCollateral: 0n,
    clientCollateral: 0n,
    provingPeriod: 3600,
    challenges: 16,
    nonce,
    head: null,
    ...overrides
  }
}

async function propose (w: World, proposal: Proposal): Promise<Response> {
  const signed = signProposal(w.client, proposal)
  return await fetch(`${w.url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(signed) })
}

async function accepted (w: World, p: Payload, nonce: bigint): Promise<string> {
  const res = await propose(w, proposalFor(w, p, nonce))
  if (res.status !== 201) throw new Error(`proposal refused: ${await res.text()}`)
  const acceptance = dagJSON.parse(await res.text()) as { payload: { dealId: CID } }
  return acceptance.payload.dealId.toString()
}

async function code (res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code
}

test('signed proposal → 201 acceptance; signed upload → active; the gateway and /piece serve it', async (t) => {
  const w = await world()
  try {
    const ask = dagJSON.parse(await (await fetch(`${w.url}/v1/ask`)).text()) as { payload: { provider: string }, signer: string }
    t.is(ask.payload.provider, w.repo.identity.did)
    const p = await payload(1)
    const dealId = await accepted(w, p, 1n)
    const put = await fetch(`${w.url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car, headers: { authorization: uploadAuthorization(w.client, dealId) } })
    t.is(put.status, 200, await put.clone().text())
    const status = dagJSON.parse(await put.text()) as { payload: { state: string } }
    t.is(status.payload.state, 'active')
    // the piece and its layer cache (docs/protocol.md "Proofs"), written when the piece is stored
    t.deepEqual((await readdir(w.repo.piecesDir)).sort(), [`${p.pieceCid.toString()}.car`, `${p.pieceCid.toString()}.layers`])

    const car = await fetch(`${w.url}/ipfs/${p.root.toString()}?format=car`, { headers: { accept: 'application/vnd.ipld.car' } })
    t.is(car.status, 200)
    const got = new Uint8Array(await car.arrayBuffer())
    t.deepEqual(got, p.car, 'a dag-scope=all DFS CAR of the root is the piece payload itself')
    const iterator = await CarBlockIterator.fromBytes(got)
    let n = 0
    for await (const _ of iterator) n++
    t.is(n, p.blocks.map.size)

    const piece = await fetch(`${w.url}/piece/${p.pieceCid.toString()}`)
    t.deepEqual(new Uint8Array(await piece.arrayBuffer()), p.car)
    const part = await fetch(`${w.url}/piece/${p.pieceCid.toString()}`, { headers: { range: 'bytes=100-199' } })
    t.is(part.status, 206)
    t.deepEqual(new Uint8Array(await part.arrayBuffer()), p.car.subarray(100, 200))

    const admin = w.node.admin()
    const summary = await admin.status()
    t.is(summary.deals.active, 1)
    t.is(summary.bytesStored, p.car.length)
    t.is((await admin.deals({ state: 'active' }))[0]?.id, dealId)
    t.deepEqual(await admin.deals({ state: 'failed' }), [])
  } finally {
    await teardown(w)
  }
})

test('refused proposals carry the rule: price too low, replayed deal (409), malformed envelope', async (t) => {
  const w = await world()
  try {
    const p = await payload(2)
    const low = await propose(w, proposalFor(w, p, 1n, { pricePerGiBDay: 10n }))
    t.is(low.status, 403)
    t.is(await code(low), 'ERR_PRICE_TOO_LOW')
    const proposal = proposalFor(w, p, 2n)
    t.is((await propose(w, proposal)).status, 201)
    const again = await propose(w, proposal)
    t.is(again.status, 409)
    t.is(await code(again), 'ERR_REPLAYED_DEAL')
    const junk = await fetch(`${w.url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payload: {}, signer: 'x', signature: 'y', extra: 1 }) })
    t.is(junk.status, 400)
    t.is(await code(junk), 'ERR_INVALID_MESSAGE')
    // a v1 proposal carries no ledger head to witness
    const { head: _head, ...v1 } = proposalFor(w, p, 3n)
    const old = await propose(w, v1)
    t.is(old.status, 403)
    t.is(await code(old), 'ERR_UNSUPPORTED_VERSION')
  } finally {
    await teardown(w)
  }
})

test('uploads refused or failing leave no piece, no index and no active deal', async (t) => {
  const w = await world()
  try {
    const p = await payload(3)
    const dealId = await accepted(w, p, 1n)
    const url = `${w.url}/v1/deals/${dealId}/piece`

    const unsigned = await fetch(url, { method: 'PUT', body: p.car })
    t.is(unsigned.status, 401)
    t.is(await code(unsigned), 'ERR_UNAUTHORIZED')
    const stranger = identityFromSecret(generateSecretKey())
    const forged = await fetch(url, { method: 'PUT', body: p.car, headers: { authorization: uploadAuthorization(stranger, dealId) } })
    t.is(forged.status, 401)

    const auth = { authorization: uploadAuthorization(w.client, dealId) }
    const short = await fetch(url, { method: 'PUT', body: p.car.subarray(1), headers: auth })
    t.is(short.status, 400)
    t.is(await code(short), 'ERR_CONTENT_LENGTH')

    const corrupt = new Uint8Array(p.car)
    corrupt[corrupt.length - 10] ^= 0xff
    const bad = await fetch(url, { method: 'PUT', body: corrupt, headers: auth })
    t.is(bad.status, 422)
    t.is(await code(bad), 'ERR_BLOCK_MISMATCH')

    // a different, valid DAG of the same length is not this deal's piece
    const other = await payload(4)
    if (other.car.length === p.car.length) {
      const wrong = await fetch(url, { method: 'PUT', body: other.car, headers: auth })
      t.is(wrong.status, 422)
    }

    t.deepEqual(await readdir(w.repo.piecesDir), [])
    t.deepEqual(await readdir(w.repo.tmpDir), [])
    const raw = await fetch(`${w.url}/ipfs/${p.root.toString()}?format=raw`, { headers: { accept: 'application/vnd.ipld.raw' } })
    t.is(raw.status, 404)
    t.is((await w.node.admin().deals({}))[0]?.state, 'accepted')

    // and the deal can still be completed afterwards
    const ok = await fetch(url, { method: 'PUT', body: p.car, headers: auth })
    t.is(ok.status, 200)
    const twice = await fetch(url, { method: 'PUT', body: p.car, headers: auth })
    t.is(twice.status, 409)
    t.is(await code(twice), 'ERR_DEAL_STATE')
  } finally {
    await teardown(w)
  }
})

/** The same DAG as `payload`, its blocks breadth first: linked from the root, but not the gateway's DFS order. */
async function breadthFirst (p: Payload): Promise<Payload> {
  const parts: Uint8Array[] = [encodeHeader([p.root])]
  const seen = new Set<string>()
  const queue: CID[] = [p.root]
  while (queue.length > 0) {
    const cid = queue.shift() as CID
    if (seen.has(cid.toString())) continue
    seen.add(cid.toString())
    const bytes = p.blocks.map.get(cid.toString()) as Uint8Array
    parts.push(encodeFrame(cid, bytes))
    if (cid.code === dagPB.code) for (const l of dagPB.decode(bytes).Links) queue.push(l.Hash)
  }
  const car = new Uint8Array(Buffer.concat(parts))
  const piece = await pieceOf(car)
  return { ...p, car, pieceCid: piece.cid, pieceSize: piece.paddedSize }
}

test('the gateway streams a piece whole only when it is the DFS CAR it would walk; either way the bytes are the walk\'s', async (t) => {
  const w = await world()
  // the same provider's blocks without the whole-DAG shortcut: the walk, block by block
  const walkOnly = createProviderServer({ deals: w.node, blocks: { get: async (cid) => await w.node.get(cid) }, pieces: w.node, log: () => {} })
  const walkUrl = await walkOnly.listen('127.0.0.1', 0)
  try {
    const accept = { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' }
    const dfs = await payload(7)
    const bfs = await breadthFirst(await payload(8))
    t.notDeepEqual(bfs.car, (await payload(8)).car)
    for (const p of [dfs, bfs]) {
      const dealId = await accepted(w, p, p === dfs ? 71n : 72n)
      const put = await fetch(`${w.url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car, headers: { authorization: uploadAuthorization(w.client, dealId) } })
      t.is(put.status, 200, await put.clone().text())
    }
    t.truthy(await w.node.dag(dfs.root), 'a DFS upload is recorded whole')
    t.is(await w.node.dag(bfs.root), undefined, 'a breadth-first upload is not')
    for (const p of [dfs, bfs]) {
      const fast = new Uint8Array(await (await fetch(`${w.url}/ipfs/${p.root.toString()}?dag-scope=all`, { headers: accept })).arrayBuffer())
      const walked = new Uint8Array(await (await fetch(`${walkUrl}/ipfs/${p.root.toString()}?dag-scope=all`, { headers: accept })).arrayBuffer())
      t.deepEqual(fast, walked)
      t.deepEqual(fast, (await payload(p === dfs ? 7 : 8)).car, 'the DFS CAR of the DAG, whatever order it was uploaded in')
    }
    // other shapes of the same root are walked, never the piece
    const dups = new Uint8Array(await (await fetch(`${w.url}/ipfs/${dfs.root.toString()}?dag-scope=entity`, { headers: accept })).arrayBuffer())
    const dupsWalked = new Uint8Array(await (await fetch(`${walkUrl}/ipfs/${dfs.root.toString()}?dag-scope=entity`, { headers: accept })).arrayBuffer())
    t.deepEqual(dups, dupsWalked)
    t.notDeepEqual(dups, dfs.car)
  } finally {
    await walkOnly.close()
    await teardown(w)
  }
})

/** A 3.3 MB file of 256 KiB raw leaves, stored under a deal as its DFS CAR; the URL of its whole DAG. */
async function bigFile (t: ExecutionContext, w: World): Promise<{ car: Uint8Array, pieceFile: string, url: string }> {
  const blocks = new MemoryBlocks()
  const root = await importInto(blocks, [{ path: 'd/big.bin', content: bytesOf(3_300_000, 9) }], { chunkSize: 262_144 })
  const { car, pieceCid, pieceSize } = await dfsPiece(root, blocks)
  const p: Payload = { root, car, pieceCid, pieceSize, blocks }
  const dealId = await accepted(w, p, 91n)
  const put = await fetch(`${w.url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car, headers: { authorization: uploadAuthorization(w.client, dealId) } })
  t.is(put.status, 200, await put.clone().text())
  t.truthy(await w.node.dag(root))
  return { car, pieceFile: join(w.repo.piecesDir, `${pieceCid.toString()}.car`), url: `${w.url}/ipfs/${root.toString()}?dag-scope=all` }
}

const carAccept = { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' }

/** One chunk as a stream. */
async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

/** Flips the byte at `at` of a file in place (same length). */
async function flip (file: string, at: number): Promise<void> {
  const handle = await open(file, 'r+')
  const one = Buffer.alloc(1)
  await handle.read(one, 0, 1, at)
  one[0] ^= 0xff
  await handle.write(one, 0, 1, at)
  await handle.close()
}

/** What a CAR response carried, and whether it was cut rather than ended. */
async function carResponse (url: string): Promise<{ bytes: Buffer, cut: boolean }> {
  const got: Uint8Array[] = []
  let cut = false
  try {
    const res = await fetch(url, { headers: carAccept })
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) got.push(chunk)
  } catch {
    cut = true
  }
  return { bytes: Buffer.concat(got), cut }
}

/** Where in `car` the data of a raw leaf and of a dag-pb node with links (not the root) lie: a byte in the middle of each. */
/** The whole-piece stream at `url` is cut (not ended) before byte `at` of `car`, and what arrived is `car`'s prefix. */
async function cutBefore (t: ExecutionContext, url: string, car: Uint8Array, at: number): Promise<void> {
  const { bytes: prefix, cut } = await carResponse(url)
  t.true(cut, 'the stream is cut, not ended')
  t.true(prefix.length < at, `${prefix.length} bytes arrived`)
  t.deepEqual(prefix, Buffer.from(car.subarray(0, prefix.length)))
}

async function places (car: Uint8Array): Promise<{ leaf: number, inner: number }> {
  let leaf: number | undefined
  let inner: number | undefined
  let first = true
  for await (const block of readCar(once(car))) {
    if (block.cid.code === 0x55 && leaf === undefined && block.blockOffset > 2_000_000) leaf = block.blockOffset + (block.length >> 1)
    if (block.cid.code === dagPB.code && !first && dagPB.decode(block.bytes).Links.length > 0) inner ??= block.blockOffset + (block.length >> 1)
    first = false
  }
  if (leaf === undefined || inner === undefined) throw new Error('the fixture has no leaf past 2 MB or no inner node')
  return { leaf, inner }
}

test('with --hash-on-read the whole-piece stream crosses its 1 MiB reads intact, again and again; a byte changed on disk in a leaf cuts it after a prefix of verified frames', async (t) => {
  const w = await world({ hashOnRead: true })
  try {
    const { car, pieceFile, url } = await bigFile(t, w)
    // several in a row and at once: the read buffers go back to the pool and are reused
    const answers = await Promise.all([1, 2, 3].map(async () => new Uint8Array(await (await fetch(url, { headers: carAccept })).arrayBuffer())))
    for (const answer of answers) t.deepEqual(answer, car)

    const at = (await places(car)).leaf
    await flip(pieceFile, at)
    await cutBefore(t, url, car, at)
  } finally {
    await teardown(w)
  }
})

test('by default (no --hash-on-read) a leaf changed on disk is streamed as it is, for the client to refuse; a changed inner node still cuts the stream', async (t) => {
  const w = await world()
  try {
    const { car, pieceFile, url } = await bigFile(t, w)
    const { leaf, inner } = await places(car)
    await flip(pieceFile, leaf)
    const sent = await carResponse(url)
    t.false(sent.cut, 'the stream ends whole')
    const changed = Buffer.from(car)
    changed[leaf] ^= 0xff
    t.deepEqual(sent.bytes, changed, 'the CAR as stored, the changed leaf in it')
    // what a client does with it: the leaf's hash does not match its CID
    const err = await t.throwsAsync(async () => { for await (const block of readCar(once(sent.bytes))) t.truthy(block.cid) })
    t.is((err as { code?: string }).code, 'ERR_BLOCK_MISMATCH')

    await flip(pieceFile, leaf)
    await flip(pieceFile, inner)
    await cutBefore(t, url, car, inner)
  } finally {
    await teardown(w)
  }
})

test('with --hash-on-read a changed inner node cuts the whole-piece stream too', async (t) => {
  const w = await world({ hashOnRead: true })
  try {
    const { car, pieceFile, url } = await bigFile(t, w)
    const { inner } = await places(car)
    await flip(pieceFile, inner)
    await cutBefore(t, url, car, inner)
  } finally {
    await teardown(w)
  }
})
