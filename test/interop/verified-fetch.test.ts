/**
 * SPEC §1 (retrieval): `@helia/verified-fetch` pointed at the provider
 * retrieves and verifies content. The oracle is the reference client itself
 * (4.0.3, the Node 20 set in NOTES), with the provider as its only gateway:
 * it asks for one raw block at a time and checks every block against its CID,
 * so equal bytes here mean the gateway served a correct, complete DAG.
 */
import test from 'ava'
import { CarReader } from '@ipld/car'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { verifiedFetchOf, type Oracle } from './helia.js'
import { MiB, payload, randomBytes, startWorld, type Payload, type World } from './world.js'

let world: World
let oracle: Oracle
let file: Payload
let fileBytes: Uint8Array
let dir: Payload
const nested = new TextEncoder().encode('a nested file, fetched by path\n')

test.before(async () => {
  world = await startWorld()
  fileBytes = randomBytes(3 * MiB + 12345, 11)
  // SPEC §1.1 unixfs-v1-2025: raw leaves, 1 MiB chunks
  file = await payload([{ content: fileBytes }], { chunkSize: MiB, maxLinks: 1024 })
  dir = await payload([
    { path: 'd/readme.txt', content: new TextEncoder().encode('top level\n') },
    { path: 'd/sub/file.txt', content: nested },
    { path: 'd/sub/more.bin', content: randomBytes(70_000, 12) }
  ], { chunkSize: MiB, maxLinks: 1024 })
  await world.deal(file)
  await world.deal(dir)
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
  t.is(blocksServed() - before, file.order.length, 'every block of the file was served once by the gateway')
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
