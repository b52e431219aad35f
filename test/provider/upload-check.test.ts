import test from 'ava'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { linksOf } from '../../src/car/index.js'
import { CairnError } from '../../src/errors.js'
import { encodeFrame, encodeHeader } from '../../src/car/index.js'
import { checkUploadCar, warmUploadCheck } from '../../src/provider/upload-check.js'
import { bytesOf, dfsPiece, importInto, MemoryBlocks } from './fixtures.js'

async function * chunks (bytes: Uint8Array, size = 1000): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size)
}

async function file (): Promise<{ root: CID, blocks: MemoryBlocks, car: Uint8Array, order: string[] }> {
  const blocks = new MemoryBlocks()
  // 40 leaves under 3 links per node: a tree three levels deep
  const root = await importInto(blocks, [{ path: 'f', content: bytesOf(40 * 256) }], { chunkSize: 256, maxLinks: 3 })
  const { car, order } = await dfsPiece(root, blocks)
  return { root, blocks, car, order }
}

test('a canonical DFS CAR: complete, canonical, each block located in the CAR', async t => {
  const { root, car, order } = await file()
  const check = await checkUploadCar(chunks(car), root)
  t.true(check.canonical)
  t.deepEqual(check.blocks.map(b => b.cid.toString()), order)
  for (const { cid, offset, length } of check.blocks) {
    const digest = createHash('sha256').update(car.subarray(offset, offset + length)).digest()
    t.deepEqual(new Uint8Array(digest), cid.multihash.digest)
  }
})

test('the same blocks in another linked order: complete but not canonical', async t => {
  const { root, blocks, order } = await file()
  // breadth-first: every block still comes after a block that links to it, but not depth-first
  const bfs: string[] = []
  const queue = [root]
  const seen = new Set<string>()
  while (queue.length > 0) {
    const cid = queue.shift() as CID
    if (seen.has(cid.toString())) continue
    seen.add(cid.toString())
    bfs.push(cid.toString())
    queue.push(...linksOf(cid, blocks.map.get(cid.toString()) as Uint8Array))
  }
  t.notDeepEqual(bfs, order)
  const car = Buffer.concat([encodeHeader([root]), ...bfs.map(k => encodeFrame(CID.parse(k), blocks.map.get(k) as Uint8Array))])
  const check = await checkUploadCar(chunks(car), root)
  t.false(check.canonical)
  t.is(check.blocks.length, order.length)
})

test('a missing block, a wrong root and a block out of nowhere each fail with their code', async t => {
  const { root, blocks, order } = await file()
  const frames = (keys: string[]): Uint8Array[] => keys.map(k => encodeFrame(CID.parse(k), blocks.map.get(k) as Uint8Array))
  const missing = Buffer.concat([encodeHeader([root]), ...frames(order.filter((_, i) => i !== order.length - 1))])
  await t.throwsAsync(checkUploadCar(chunks(missing), root), { instanceOf: CairnError, code: 'ERR_CAR_BLOCK_MISSING' })
  const other = CID.parse(order[1])
  const wrongRoot = Buffer.concat([encodeHeader([other]), ...frames(order)])
  await t.throwsAsync(checkUploadCar(chunks(wrongRoot), root), { instanceOf: CairnError, code: 'ERR_CAR_ROOT_MISSING' })
  const stray = Buffer.concat([encodeHeader([root]), ...frames([order[0], order[order.length - 1], ...order.slice(1)])])
  await t.throwsAsync(checkUploadCar(chunks(stray), root), { instanceOf: CairnError, code: 'ERR_DAG_INVALID' })
})

test('the start-up warm-up runs the check on its own DAG without error', async t => {
  await t.notThrowsAsync(warmUploadCheck())
})
