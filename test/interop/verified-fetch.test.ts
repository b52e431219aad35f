/**
 * Retrieval interoperability: `@helia/verified-fetch` pointed at the provider
 * retrieves and verifies content. The oracle is the reference client itself
 * (4.0.3, the last line that runs on Node 20), with the provider as its only gateway:
 * it asks for one raw block at a time and checks every block against its CID,
 * so equal bytes here mean the gateway served a correct, complete DAG.
 */
import test from 'ava'
import { CarReader } from '@ipld/car'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { offlineVerifiedFetch, verifiedFetchOf, type Oracle } from './helia.js'
import { MiB, payload, randomBytes, startWorld, type Payload, type World } from './world.js'

let world: World
let oracle: Oracle
let file: Payload
let fileBytes: Uint8Array
let dir: Payload
let sharded: Payload
const entries = Array.from({ length: 40 }, (_, i) => new TextEncoder().encode(`entry ${i}\n`))
const nested = new TextEncoder().encode('a nested file, fetched by path\n')

test.before(async () => {
  world = await startWorld()
  fileBytes = randomBytes(3 * MiB + 12345, 11)
  // the unixfs-v1-2025 profile (IPIP-499, https://specs.ipfs.tech/ipips/ipip-0499/): raw leaves, 1 MiB chunks
  file = await payload([{ content: fileBytes }], { chunkSize: MiB, maxLinks: 1024 })
  dir = await payload([
    { path: 'd/readme.txt', content: new TextEncoder().encode('top level\n') },
    { path: 'd/sub/file.txt', content: nested },
    { path: 'd/sub/more.bin', content: randomBytes(70_000, 12) }
  ], { chunkSize: MiB, maxLinks: 1024 })
  // a HAMT-sharded directory (the importer shards above 1000 bytes of links here)
  sharded = await payload(entries.map((content, i) => ({ path: `h/entry-${i}.txt`, content })), { chunkSize: MiB, maxLinks: 1024, shardSplitThresholdBytes: 1000 })
  await world.deal(file)
  await world.deal(dir)
  await world.deal(sharded)
  oracle = await verifiedFetchOf(world.url)
})

test.serial.after('the oracle reached no address but the provider on loopback', (t) => {
  t.deepEqual(oracle.refused, [])
})

test.after.always(async () => {
  await oracle?.stop()
  await world?.close()
})

const blocksServed = (): number => world.service.metrics.retrievals.get({ kind: 'block' })

test.serial('a multi-block file by ipfs://<root>: verified bytes equal the original, blocks came from the provider', async (t) => {
  t.true(file.order.length >= 5, 'a root and at least four 1 MiB leaves')
  const before = blocksServed()
  const res = await oracle.fetch(`ipfs://${file.root.toString()}`, { signal: AbortSignal.timeout(30_000) })
  t.is(res.status, 200)
  const got = new Uint8Array(await res.arrayBuffer())
  t.is(got.length, fileBytes.length)
  t.true(Buffer.from(got).equals(Buffer.from(fileBytes)))
  // verified-fetch may re-ask for a block whose answer was slow (a loaded machine),
  // so the gateway served each block at least once, not necessarily exactly once
  t.true(blocksServed() - before >= file.order.length, 'every block of the file was served by the gateway')
})

test.serial('a file inside a directory by path ipfs://<dir>/sub/file.txt', async (t) => {
  const before = blocksServed()
  const res = await oracle.fetch(`ipfs://${dir.root.toString()}/sub/file.txt`, { signal: AbortSignal.timeout(30_000) })
  t.is(res.status, 200)
  t.deepEqual(new Uint8Array(await res.arrayBuffer()), nested)
  t.true(blocksServed() - before >= 2, 'the directory nodes and the file came from the gateway')
})

test.serial('a CAR through verified-fetch (Accept: application/vnd.ipld.car) holds the whole DAG, each block verified', async (t) => {
  const res = await oracle.fetch(`ipfs://${dir.root.toString()}`, { headers: { accept: 'application/vnd.ipld.car' }, signal: AbortSignal.timeout(30_000) })
  t.is(res.status, 200)
  t.regex(res.headers.get('content-type') ?? '', /^application\/vnd\.ipld\.car/)
  const reader = await CarReader.fromBytes(new Uint8Array(await res.arrayBuffer()))
  t.deepEqual((await reader.getRoots()).map(String), [dir.root.toString()])
  const got = new Set<string>()
  for await (const { cid, bytes } of reader.blocks()) {
    t.true(Buffer.from((await sha256.digest(bytes)).digest).equals(Buffer.from(cid.multihash.digest)), `${cid.toString()} hashes to its CID`)
    got.add(cid.toString())
  }
  t.deepEqual([...got].sort(), [...dir.order].sort())
})

/** Fetches a CAR from the gateway and asks an offline verified-fetch holding only its blocks for `path`. */
async function fromCarAlone (t: { true: (v: boolean, m?: string) => void }, gatewayPath: string, resource: string, init?: RequestInit, omit = -1): Promise<Response & { blocks: number }> {
  const car = await fetch(`${world.url}/ipfs/${gatewayPath}`, { headers: { accept: 'application/vnd.ipld.car' } })
  t.true(car.status === 200, `gateway answered ${car.status}`)
  const reader = await CarReader.fromBytes(new Uint8Array(await car.arrayBuffer()))
  const blocks = []
  for await (const block of reader.blocks()) blocks.push(block)
  if (omit >= 0) blocks.splice(omit, 1)
  const offline = await offlineVerifiedFetch(blocks)
  try {
    const res = await offline.fetch(resource, { ...init, signal: AbortSignal.timeout(10_000) })
    const body = new Uint8Array(await res.arrayBuffer())
    return Object.assign(new Response(body, { status: res.status, headers: res.headers }), { blocks: blocks.length })
  } finally {
    await offline.stop()
  }
}

test.serial('a HAMT-sharded directory: verified-fetch resolves a path through the shards from the gateway', async (t) => {
  const res = await oracle.fetch(`ipfs://${sharded.root.toString()}/entry-33.txt`, { signal: AbortSignal.timeout(30_000) })
  t.is(res.status, 200)
  t.deepEqual(new Uint8Array(await res.arrayBuffer()), entries[33])
})

test.serial('a path CAR is self-sufficient: verified-fetch holding only its blocks resolves the path (plain and HAMT directories)', async (t) => {
  const plain = await fromCarAlone(t, `${dir.root.toString()}/sub/file.txt?dag-scope=entity`, `ipfs://${dir.root.toString()}/sub/file.txt`)
  t.is(plain.status, 200)
  t.deepEqual(new Uint8Array(await plain.arrayBuffer()), nested)
  const hamt = await fromCarAlone(t, `${sharded.root.toString()}/entry-7.txt?dag-scope=entity`, `ipfs://${sharded.root.toString()}/entry-7.txt`)
  t.is(hamt.status, 200)
  t.deepEqual(new Uint8Array(await hamt.arrayBuffer()), entries[7])
  t.true(hamt.blocks < sharded.order.length, 'only the shards on the way, not the whole directory')
  // the control: with one of those blocks left out, the same oracle cannot answer
  const short = await fromCarAlone(t, `${sharded.root.toString()}/entry-7.txt?dag-scope=entity`, `ipfs://${sharded.root.toString()}/entry-7.txt`, {}, 1)
  t.not(short.status, 200)
})

test.serial('an entity-bytes CAR carries what a verifying client needs for that byte range', async (t) => {
  const from = MiB - 100
  const to = 2 * MiB + 99
  const res = await fromCarAlone(t, `${file.root.toString()}?entity-bytes=${from}:${to}`, `ipfs://${file.root.toString()}`, { headers: { range: `bytes=${from}-${to}` } })
  t.is(res.status, 206)
  t.true(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(fileBytes.subarray(from, to + 1))))
  t.is(res.blocks, 4, 'the root and the three leaves the range touches')
})

test.serial('content held under no deal: verified-fetch gives up quickly, the gateway answers 404', async (t) => {
  const absent = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('never stored')))
  const before = world.service.metrics.requests.get({ route: '/ipfs/:cid/*path', status: '4xx' })
  const started = Date.now()
  const res = await oracle.fetch(`ipfs://${absent.toString()}`, { signal: AbortSignal.timeout(3_000) })
  // verified-fetch 4.0.3 reports a block no gateway holds as 500 LoadBlockFailedError, not 404
  t.is(res.status, 500)
  t.is(((await res.json()) as { error: { name: string } }).error.name, 'LoadBlockFailedError')
  t.true(Date.now() - started < 3_000, 'the provider\'s 404 ends the search at once, before the abort signal')
  t.true(world.service.metrics.requests.get({ route: '/ipfs/:cid/*path', status: '4xx' }) > before, 'the provider was asked and refused')

  const raw = await fetch(`${world.url}/ipfs/${absent.toString()}?format=raw`, { headers: { accept: 'application/vnd.ipld.raw' } })
  t.is(raw.status, 404)
  t.is(((await raw.json()) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
})
