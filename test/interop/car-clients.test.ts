/**
 * CARs from the provider's gateway read by reference CAR clients: a request
 * sent the way lassie's HTTP retriever sends it (`GET /ipfs/{cid}?dag-scope=all`,
 * `Accept: application/vnd.ipld.car`, no `format=`) must come back as a valid
 * CARv1 in DFS first-seen order without duplicates (Trustless
 * Gateway spec: `dups` absent ⇒ a gateway in control of it answers `dups=n`),
 * readable by `@ipld/car` and restorable by `ipfs-car unpack`.
 */
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CarReader } from '@ipld/car'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { MiB, payload, randomBytes, startWorld, type Payload, type World } from './world.js'

const run = promisify(execFile)
const IPFS_CAR = join('node_modules', '.bin', 'ipfs-car')

let world: World
let scratch: string
let file: Payload
let fileBytes: Uint8Array
let zeros: Payload
let dir: Payload
const nested = new TextEncoder().encode('a nested file\n')
const readme = new TextEncoder().encode('top level\n')
const more = randomBytes(70_000, 22)

test.before(async () => {
  world = await startWorld()
  scratch = await mkdtemp(join(tmpdir(), 'cairn-interop-car-'))
  fileBytes = randomBytes(3 * MiB + 4321, 21)
  const shape = { chunkSize: MiB, maxLinks: 1024 }
  file = await payload([{ content: fileBytes }], shape)
  // three identical 1 MiB leaves: a DAG in which the walk meets one block three times
  zeros = await payload([{ content: new Uint8Array(3 * MiB + 1) }], shape)
  dir = await payload([
    { path: 'd/readme.txt', content: readme },
    { path: 'd/sub/file.txt', content: nested },
    { path: 'd/sub/more.bin', content: more }
  ], shape)
  for (const p of [file, zeros, dir]) await world.deal(p)
})

test.after.always(async () => {
  await world?.close()
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
})

/** What lassie sends: the CAR media type alone, dag-scope in the query, no format=. */
async function lassieGet (path: string, method = 'GET'): Promise<Response> {
  return await fetch(`${world.url}/ipfs/${path}${path.includes('?') ? '&' : '?'}dag-scope=all`, {
    method,
    headers: { accept: 'application/vnd.ipld.car' },
    signal: AbortSignal.timeout(30_000)
  })
}

interface ReadCar { roots: string[], order: string[], bytes: Uint8Array }

/** Reads a CAR with @ipld/car, checking every block hashes to its CID. */
async function readCar (t: { true: (v: boolean, m?: string) => void, is: (a: unknown, b: unknown, m?: string) => void }, bytes: Uint8Array): Promise<ReadCar> {
  const reader = await CarReader.fromBytes(bytes)
  const order: string[] = []
  for await (const { cid, bytes: block } of reader.blocks()) {
    t.is(cid.multihash.code, sha256.code, `${cid.toString()} is sha2-256`)
    const digest = await sha256.digest(block)
    t.true(Buffer.from(digest.digest).equals(Buffer.from(cid.multihash.digest)), `${cid.toString()} hashes to its CID`)
    order.push(cid.toString())
  }
  return { roots: (await reader.getRoots()).map(String), order, bytes }
}

async function unpack (car: Uint8Array, name: string, root?: string): Promise<string> {
  const carPath = join(scratch, `${name}.car`)
  const out = join(scratch, name)
  await writeFile(carPath, car)
  await run(IPFS_CAR, ['unpack', carPath, '--output', out, ...(root === undefined ? [] : ['--root', root])], { timeout: 60_000 })
  return out
}

for (const [name, pick] of [['multi-block file', () => file], ['file with repeated leaves', () => zeros], ['directory', () => dir]] as const) {
  test(`lassie-style CAR of a ${name}: header root, DFS first-seen order, no duplicates, verified blocks`, async (t) => {
    const p = pick()
    const res = await lassieGet(p.root.toString())
    t.is(res.status, 200)
    t.is(res.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
    const car = await readCar(t, new Uint8Array(await res.arrayBuffer()))
    t.deepEqual(car.roots, [p.root.toString()])
    t.is(new Set(car.order).size, car.order.length, 'no block twice')
    t.deepEqual(car.order, p.order, 'the DFS first-seen order of the DAG')
    if (p === zeros) t.is(car.order.length, 3, 'the root, the zero leaf once (linked three times), the 1-byte tail')
    t.true(Buffer.from(car.bytes).equals(Buffer.from(p.car)), 'byte for byte the piece payload the deal stored')
  })
}

test('ipfs-car unpack restores a multi-block file from the lassie-style CAR', async (t) => {
  const res = await lassieGet(file.root.toString())
  const out = await unpack(new Uint8Array(await res.arrayBuffer()), 'file')
  t.true((await readFile(out)).equals(Buffer.from(fileBytes)))
})

test('ipfs-car unpack restores a directory with a nested file from the lassie-style CAR', async (t) => {
  const res = await lassieGet(dir.root.toString())
  const out = await unpack(new Uint8Array(await res.arrayBuffer()), 'dir')
  t.deepEqual(await readFile(join(out, 'readme.txt')), Buffer.from(readme))
  t.deepEqual(await readFile(join(out, 'sub', 'file.txt')), Buffer.from(nested))
  t.true((await readFile(join(out, 'sub', 'more.bin'))).equals(Buffer.from(more)))
})

test('lassie-style CAR for a path: the directory blocks that prove it, then the file; ipfs-car unpacks the terminal', async (t) => {
  const res = await lassieGet(`${dir.root.toString()}/sub/file.txt`)
  t.is(res.status, 200)
  const roots = (res.headers.get('x-ipfs-roots') ?? '').split(',')
  t.is(roots.length, 3, 'dir, sub, file.txt')
  const car = await readCar(t, new Uint8Array(await res.arrayBuffer()))
  t.deepEqual(car.roots, [dir.root.toString()])
  t.deepEqual(car.order, roots, 'the path blocks in order, then the (single-block) file')
  const terminal = roots[2] as string
  const out = await unpack(car.bytes, 'path', terminal)
  t.deepEqual(await readFile(out), Buffer.from(nested))
})

test('content held under no deal: 404 ERR_NOT_FOUND for the lassie-style CAR, a raw block and HEAD', async (t) => {
  const absent = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('never stored'))).toString()
  const car = await lassieGet(absent)
  t.is(car.status, 404)
  t.is(((await car.json()) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
  const raw = await fetch(`${world.url}/ipfs/${absent}`, { headers: { accept: 'application/vnd.ipld.raw' } })
  t.is(raw.status, 404)
  t.is(((await raw.json()) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
  const head = await lassieGet(absent, 'HEAD')
  t.is(head.status, 404)
  // a block of a stored DAG is servable; a path under it that does not exist is not
  const missingPath = await lassieGet(`${dir.root.toString()}/sub/nope.txt`)
  t.is(missingPath.status, 404)
  t.is(((await missingPath.json()) as { error: { code: string } }).error.code, 'ERR_PATH_NOT_FOUND')
})
