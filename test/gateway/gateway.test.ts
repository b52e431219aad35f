/**
 * Trustless Gateway conformance, after the IPFS Trustless Gateway specification
 * (specs.ipfs.tech/http-gateways/trustless-gateway) and IPIP-0412: raw blocks,
 * CARs with each dag-scope, entity-bytes, dups, HEAD, the bafkqaaa probe, cache
 * headers and the 4xx cases. DAGs come from the reference importer
 * (ipfs-unixfs-importer); CARs are read back with @ipld/car.
 */
import test from 'ava'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { bytesOf, importInto, MemoryBlocks, startProvider, type Running } from '../provider/fixtures.js'

const CAR_DFS = 'application/vnd.ipld.car; version=1; order=dfs; dups=n'
const CHUNK = 1024

interface Fixture {
  run: Running
  /** 10 KiB file, 1 KiB raw leaves, at most 3 links per node: a three-level tree. */
  file: CID
  fileBytes: Uint8Array
  /** a directory: big.bin (the file above), small.txt, sub/inner.txt, and shard/ (a HAMT of 40 entries) */
  dir: CID
  /** 8 identical chunks: the same leaf linked 8 times */
  repeated: CID
}

let fx: Fixture

test.before(async () => {
  const blocks = new MemoryBlocks()
  const fileBytes = bytesOf(10 * CHUNK, 7)
  const file = await importInto(blocks, [{ path: 'big.bin', content: fileBytes }], { chunkSize: CHUNK, maxLinks: 3 })
  const repeated = await importInto(blocks, [{ content: new Uint8Array(8 * CHUNK) }], { chunkSize: CHUNK })
  const shard = Array.from({ length: 40 }, (_, i) => ({ path: `d/shard/entry-${i}.txt`, content: new TextEncoder().encode(`entry ${i}\n`) }))
  const dir = await importInto(blocks, [
    { path: 'd/big.bin', content: fileBytes },
    { path: 'd/small.txt', content: new TextEncoder().encode('hello\n') },
    { path: 'd/sub/inner.txt', content: new TextEncoder().encode('inner\n') },
    ...shard
  ], { chunkSize: CHUNK, maxLinks: 3, shardSplitThresholdBytes: 200 })
  const run = await startProvider({}, { blocks })
  fx = { run, file, fileBytes, dir, repeated }
})

test.after.always(async () => { await fx?.run.service.close() })

async function get (path: string, accept?: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  if (accept !== undefined) headers.set('accept', accept)
  return await fetch(fx.run.url + path, { ...init, headers })
}

async function carBlocks (res: Response): Promise<{ roots: CID[], cids: string[], blocks: Array<{ cid: CID, bytes: Uint8Array }> }> {
  const bytes = new Uint8Array(await res.arrayBuffer())
  const iterator = await CarBlockIterator.fromBytes(bytes)
  const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  for await (const block of iterator) {
    // every block must hash to its CID: the client trusts nothing else
    const digest = await sha256.digest(block.bytes)
    if (digest.bytes.join() !== block.cid.multihash.bytes.join()) throw new Error(`block ${block.cid.toString()} does not match its CID`)
    blocks.push({ cid: block.cid as CID, bytes: block.bytes })
  }
  return { roots: (await iterator.getRoots()) as CID[], cids: blocks.map((b) => b.cid.toString()), blocks }
}

/** The reference DFS first-seen order over the fixture's blocks (`ipfs dag export` order). */
function dfsOrder (root: CID, dups = false, seen = new Set<string>(), out: string[] = []): string[] {
  const key = root.toString()
  if (seen.has(key) && !dups) return out
  seen.add(key)
  out.push(key)
  if (root.code === dagPB.code) {
    const bytes = fx.run.blocks.map.get(key)
    if (bytes === undefined) throw new Error(`fixture lacks ${key}`)
    for (const link of dagPB.decode(bytes).Links) dfsOrder(link.Hash, dups, seen, out)
  }
  return out
}

function leavesOf (cids: string[]): string[] {
  return cids.filter((c) => CID.parse(c).code === 0x55)
}

test('probe: GET /ipfs/bafkqaaa as a raw block is 200 with an empty body', async (t) => {
  const res = await get('/ipfs/bafkqaaa?format=raw', 'application/vnd.ipld.raw')
  t.is(res.status, 200)
  t.is((await res.arrayBuffer()).byteLength, 0)
  t.is(res.headers.get('content-type'), 'application/vnd.ipld.raw')
})

test('probe: HEAD /ipfs/bafkqaaa is 200; as a CAR its roots are bafkqaaa and it carries no identity block', async (t) => {
  const head = await get('/ipfs/bafkqaaa', 'application/vnd.ipld.raw', { method: 'HEAD' })
  t.is(head.status, 200)
  const res = await get('/ipfs/bafkqaaa?format=car', 'application/vnd.ipld.car')
  t.is(res.status, 200)
  const { roots, cids } = await carBlocks(res)
  t.deepEqual(roots.map(String), ['bafkqaaa'])
  t.deepEqual(cids, [])
})

test('raw block: body is the block, with Etag "<cid>.raw", immutable caching, nosniff and attachment', async (t) => {
  const res = await get(`/ipfs/${fx.file.toString()}?format=raw`, 'application/vnd.ipld.raw')
  t.is(res.status, 200)
  const body = new Uint8Array(await res.arrayBuffer())
  t.deepEqual(body, fx.run.blocks.map.get(fx.file.toString()))
  t.is(res.headers.get('etag'), `"${fx.file.toString()}.raw"`)
  t.is(res.headers.get('cache-control'), 'public, max-age=29030400, immutable')
  t.is(res.headers.get('x-content-type-options'), 'nosniff')
  t.is(res.headers.get('content-type'), 'application/vnd.ipld.raw')
  t.is(res.headers.get('content-length'), String(body.length))
  t.regex(res.headers.get('content-disposition') ?? '', /^attachment; filename="[a-z0-9]+\.bin"$/)
})

test('raw block: each leaf is servable on its own, as verified-fetch asks (format=raw and Accept)', async (t) => {
  for (const leaf of leavesOf(dfsOrder(fx.file)).slice(0, 3)) {
    const res = await get(`/ipfs/${leaf}?format=raw`, 'application/vnd.ipld.raw')
    t.is(res.status, 200)
    const digest = await sha256.digest(new Uint8Array(await res.arrayBuffer()))
    t.deepEqual(digest.bytes, CID.parse(leaf).multihash.bytes)
  }
})

test('raw block: HEAD carries the headers and Content-Length, no body', async (t) => {
  const res = await get(`/ipfs/${fx.file.toString()}`, 'application/vnd.ipld.raw', { method: 'HEAD' })
  t.is(res.status, 200)
  t.is(res.headers.get('content-length'), String(fx.run.blocks.map.get(fx.file.toString())?.length))
  t.is((await res.arrayBuffer()).byteLength, 0)
})

test('raw block: If-None-Match with the Etag is 304', async (t) => {
  const res = await get(`/ipfs/${fx.file.toString()}?format=raw`, 'application/vnd.ipld.raw', { headers: { 'if-none-match': `"${fx.file.toString()}.raw"` } })
  t.is(res.status, 304)
})

test('CAR dag-scope=all: every block of a directory in DFS first-seen order, no duplicates', async (t) => {
  const res = await get(`/ipfs/${fx.dir.toString()}?format=car&dag-scope=all`, 'application/vnd.ipld.car')
  t.is(res.status, 200)
  t.is(res.headers.get('content-type'), CAR_DFS)
  t.regex(res.headers.get('etag') ?? '', new RegExp(`^W/"${fx.dir.toString()}\\.car\\.[a-z2-7]+"$`))
  t.is(res.headers.get('cache-control'), 'public, max-age=29030400, immutable')
  const { roots, cids } = await carBlocks(res)
  t.deepEqual(roots.map(String), [fx.dir.toString()])
  t.deepEqual(cids, dfsOrder(fx.dir))
  t.is(new Set(cids).size, cids.length)
})

test('CAR dag-scope=block: the root block alone', async (t) => {
  const res = await get(`/ipfs/${fx.file.toString()}?format=car&dag-scope=block`, 'application/vnd.ipld.car')
  const { cids } = await carBlocks(res)
  t.deepEqual(cids, [fx.file.toString()])
})

test('CAR dag-scope=entity: a file is all its blocks; a directory is its node alone', async (t) => {
  const file = await carBlocks(await get(`/ipfs/${fx.file.toString()}?format=car&dag-scope=entity`, 'application/vnd.ipld.car'))
  t.deepEqual(file.cids, dfsOrder(fx.file))
  const dir = await carBlocks(await get(`/ipfs/${fx.dir.toString()}?format=car&dag-scope=entity`, 'application/vnd.ipld.car'))
  t.deepEqual(dir.cids, [fx.dir.toString()])
})

test('CAR etags differ by dag-scope and entity-bytes', async (t) => {
  const tags = new Set<string>()
  for (const q of ['dag-scope=all', 'dag-scope=block', 'dag-scope=entity', 'entity-bytes=0:10', 'entity-bytes=0:11']) {
    const res = await get(`/ipfs/${fx.file.toString()}?format=car&${q}`, 'application/vnd.ipld.car', { method: 'HEAD' })
    tags.add(res.headers.get('etag') ?? '')
  }
  t.is(tags.size, 5)
})

test('CAR with a path: the blocks to verify the path, then the terminal entity', async (t) => {
  const res = await get(`/ipfs/${fx.dir.toString()}/sub/inner.txt?format=car&dag-scope=entity`, 'application/vnd.ipld.car')
  t.is(res.status, 200)
  const { roots, blocks } = await carBlocks(res)
  t.deepEqual(roots.map(String), [fx.dir.toString()])
  t.is(blocks.length, 3)
  t.is(blocks[0]?.cid.toString(), fx.dir.toString())
  t.is(new TextDecoder().decode(blocks[2]?.bytes), 'inner\n')
})

test('CAR with a path through a HAMT-sharded directory finds the entry', async (t) => {
  const res = await get(`/ipfs/${fx.dir.toString()}/shard/entry-37.txt?format=car&dag-scope=entity`, 'application/vnd.ipld.car')
  t.is(res.status, 200)
  const { blocks } = await carBlocks(res)
  t.is(new TextDecoder().decode(blocks.at(-1)?.bytes), 'entry 37\n')
  // every entry of the shard resolves
  for (let i = 0; i < 40; i += 7) {
    const r = await get(`/ipfs/${fx.dir.toString()}/shard/entry-${i}.txt?format=car&dag-scope=block`, 'application/vnd.ipld.car')
    const { blocks: b } = await carBlocks(r)
    t.is(new TextDecoder().decode(b.at(-1)?.bytes), `entry ${i}\n`)
  }
  const missing = await get(`/ipfs/${fx.dir.toString()}/shard/entry-99.txt?format=car`, 'application/vnd.ipld.car')
  t.is(missing.status, 404)
  t.is(((await missing.json()) as { error: { code: string } }).error.code, 'ERR_PATH_NOT_FOUND')
})

test('CAR dag-scope=entity on a HAMT directory: its shard nodes, not the entries', async (t) => {
  const shardDir = (await carBlocks(await get(`/ipfs/${fx.dir.toString()}/shard?format=car&dag-scope=block`, 'application/vnd.ipld.car'))).blocks.at(-1)
  t.truthy(shardDir)
  t.is(UnixFS.unmarshal(dagPB.decode(shardDir?.bytes ?? new Uint8Array()).Data ?? new Uint8Array()).type, 'hamt-sharded-directory')
  const res = await get(`/ipfs/${shardDir?.cid.toString() ?? ''}?format=car&dag-scope=entity`, 'application/vnd.ipld.car')
  const { blocks } = await carBlocks(res)
  t.true(blocks.length >= 1)
  t.true(blocks.every((b) => b.cid.code === dagPB.code))
  t.false(blocks.some((b) => new TextDecoder().decode(b.bytes).startsWith('entry')))
})

/** Leaves covering bytes [from, to] of the 10-leaf fixture file, in order. */
function expectedLeaves (from: number, to: number): string[] {
  const leaves = leavesOf(dfsOrder(fx.file))
  return leaves.filter((_, i) => i * CHUNK <= to && (i + 1) * CHUNK - 1 >= from)
}

async function rangeLeaves (spec: string): Promise<{ status: number, cids: string[] }> {
  const res = await get(`/ipfs/${fx.file.toString()}?format=car&entity-bytes=${spec}`, 'application/vnd.ipld.car')
  if (res.status !== 200) return { status: res.status, cids: [] }
  const { cids } = await carBlocks(res)
  t0(cids[0] === fx.file.toString(), 'the root comes first')
  return { status: res.status, cids: leavesOf(cids) }
}

function t0 (ok: boolean, message: string): void { if (!ok) throw new Error(message) }

test('entity-bytes: only the leaves needed for the range (from:to inclusive)', async (t) => {
  t.deepEqual((await rangeLeaves('0:0')).cids, expectedLeaves(0, 0))
  t.deepEqual((await rangeLeaves('1500:2500')).cids, expectedLeaves(1500, 2500))
  t.deepEqual((await rangeLeaves('1024:2047')).cids, expectedLeaves(1024, 2047))
  t.is((await rangeLeaves('1024:2047')).cids.length, 1)
  t.deepEqual((await rangeLeaves('0:*')).cids, expectedLeaves(0, 10 * CHUNK - 1))
})

test('entity-bytes: negative offsets count from the end; * is end-of-file; to past the end is clamped', async (t) => {
  const size = 10 * CHUNK
  t.deepEqual((await rangeLeaves('-1024:*')).cids, expectedLeaves(size - 1024, size - 1))
  t.deepEqual((await rangeLeaves('499:-1000')).cids, expectedLeaves(499, size - 1000))
  t.deepEqual((await rangeLeaves('9000:99999')).cids, expectedLeaves(9000, size - 1))
  t.deepEqual((await rangeLeaves('-99999:100')).cids, expectedLeaves(0, 100))
})

test('entity-bytes: a range wholly past the end is 400; a zero-length one answers the root block only', async (t) => {
  t.is((await rangeLeaves('20000:*')).status, 400)
  const res = await get(`/ipfs/${fx.file.toString()}?format=car&entity-bytes=0:-20000`, 'application/vnd.ipld.car')
  t.is(res.status, 200)
  t.deepEqual((await carBlocks(res)).cids, [fx.file.toString()])
})

test('entity-bytes: the blocks returned reassemble exactly the requested bytes', async (t) => {
  const res = await get(`/ipfs/${fx.file.toString()}?format=car&entity-bytes=3000:5000`, 'application/vnd.ipld.car')
  const { blocks } = await carBlocks(res)
  const leaves = blocks.filter((b) => b.cid.code === 0x55)
  const first = Math.floor(3000 / CHUNK)
  const joined = Buffer.concat(leaves.map((b) => b.bytes))
  t.deepEqual(new Uint8Array(joined.subarray(3000 - first * CHUNK, 5001 - first * CHUNK)), fx.fileBytes.subarray(3000, 5001))
})

test('dups: n sends a repeated leaf once, y sends it every time the walk meets it', async (t) => {
  const once = await get(`/ipfs/${fx.repeated.toString()}`, 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
  t.is(once.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
  t.deepEqual((await carBlocks(once)).cids, dfsOrder(fx.repeated))
  t.is(dfsOrder(fx.repeated).length, 2)
  const every = await get(`/ipfs/${fx.repeated.toString()}`, 'application/vnd.ipld.car; version=1; order=dfs; dups=y')
  t.is(every.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=y')
  t.deepEqual((await carBlocks(every)).cids, dfsOrder(fx.repeated, true))
  t.is(dfsOrder(fx.repeated, true).length, 9)
})

test('lassie-style request (Accept only, dag-scope=all, dups=y) gets a valid DFS CAR', async (t) => {
  const res = await get(`/ipfs/${fx.dir.toString()}?dag-scope=all`, 'application/vnd.ipld.car;version=1;order=dfs;dups=y')
  t.is(res.status, 200)
  t.is(res.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=y')
  const { roots, cids } = await carBlocks(res)
  t.deepEqual(roots.map(String), [fx.dir.toString()])
  t.deepEqual(cids, dfsOrder(fx.dir, true))
})

test('CAR HEAD: 200 with the CAR content type and no body', async (t) => {
  const res = await get(`/ipfs/${fx.dir.toString()}?format=car`, undefined, { method: 'HEAD' })
  t.is(res.status, 200)
  t.is(res.headers.get('content-type'), CAR_DFS)
  t.is((await res.arrayBuffer()).byteLength, 0)
})

test('format= takes precedence over Accept', async (t) => {
  const res = await get(`/ipfs/${fx.file.toString()}?format=raw`, 'application/vnd.ipld.car')
  t.is(res.headers.get('content-type'), 'application/vnd.ipld.raw')
})

test('4xx: bad CID 400, missing content 404, text/html only 406, no Accept 400, bad params 400', async (t) => {
  const cases: Array<[string, string | undefined, number, string]> = [
    ['/ipfs/not-a-cid?format=raw', undefined, 400, 'ERR_INVALID_CID'],
    ['/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', 'application/vnd.ipld.raw', 404, 'ERR_NOT_FOUND'],
    [`/ipfs/${fx.file.toString()}`, 'text/html', 406, 'ERR_NOT_ACCEPTABLE'],
    [`/ipfs/${fx.file.toString()}`, undefined, 400, 'ERR_BAD_REQUEST'],
    [`/ipfs/${fx.file.toString()}?format=dag-json`, undefined, 406, 'ERR_NOT_ACCEPTABLE'],
    [`/ipfs/${fx.file.toString()}?format=zip`, undefined, 400, 'ERR_INVALID_ARGUMENT'],
    [`/ipfs/${fx.file.toString()}`, 'application/vnd.ipld.car; version=2', 406, 'ERR_NOT_ACCEPTABLE'],
    [`/ipfs/${fx.file.toString()}?format=car&dag-scope=everything`, undefined, 400, 'ERR_INVALID_ARGUMENT'],
    [`/ipfs/${fx.file.toString()}?format=car&entity-bytes=10:5`, undefined, 400, 'ERR_INVALID_ARGUMENT'],
    [`/ipfs/${fx.file.toString()}?format=car&entity-bytes=abc`, undefined, 400, 'ERR_INVALID_ARGUMENT'],
    [`/ipfs/${fx.dir.toString()}/small.txt?format=raw`, undefined, 400, 'ERR_INVALID_ARGUMENT'],
    [`/ipfs/${fx.dir.toString()}/nope?format=car`, undefined, 404, 'ERR_PATH_NOT_FOUND'],
    [`/ipfs/${fx.file.toString()}/x?format=car`, undefined, 404, 'ERR_PATH_NOT_FOUND']
  ]
  for (const [path, accept, status, code] of cases) {
    const res = await get(path, accept)
    t.is(res.status, status, path)
    t.is(((await res.json()) as { error: { code: string } }).error.code, code, path)
  }
})

test('only-if-cached for content not held is 412', async (t) => {
  const res = await get('/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi?format=raw', undefined, { headers: { 'cache-control': 'only-if-cached' } })
  t.is(res.status, 412)
})

test('a block missing mid-walk cuts the CAR stream short instead of sending a complete-looking CAR', async (t) => {
  const blocks = new MemoryBlocks()
  const root = await importInto(blocks, [{ content: bytesOf(6 * CHUNK, 3) }], { chunkSize: CHUNK })
  const leaves = leavesOf([...blocks.map.keys()])
  blocks.map.delete(leaves[3] as string)
  const run = await startProvider({}, { blocks })
  try {
    // the status may already be out (then the body fails) or the cut may come first (then fetch fails)
    await t.throwsAsync(async () => {
      const res = await fetch(`${run.url}/ipfs/${root.toString()}?format=car`, { headers: { accept: 'application/vnd.ipld.car' } })
      await res.arrayBuffer()
    })
    const healthy = await fetch(`${run.url}/healthz`)
    t.is(healthy.status, 200)
  } finally {
    await run.service.close()
  }
})

test('metrics count retrievals by kind', async (t) => {
  const text = await (await fetch(`${fx.run.url}/metrics`)).text()
  t.regex(text, /cairn_retrievals_total\{kind="block"\} \d+/)
  t.regex(text, /cairn_retrievals_total\{kind="car"\} \d+/)
})

test('an unknown Block CID in other bases parses (base58btc CIDv1, CIDv0)', async (t) => {
  const b58 = fx.file.toString(((await import('multiformats/bases/base58')).base58btc))
  const res = await get(`/ipfs/${b58}?format=raw`, 'application/vnd.ipld.raw')
  t.is(res.status, 200)
  const v0 = await get('/ipfs/QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n?format=raw', 'application/vnd.ipld.raw')
  t.is(v0.status, 404)
})
