/**
 * The CAR writer against @ipld/car and ipfs-car (oracles), and every rejection
 * of the verifying reader and the DAG completeness check, on CARs crafted here
 * byte by byte (js-car keeps such deliberately corrupt CARs as fixtures).
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CarReader } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { DagVerifier, encodeFramePrefix, encodeHeader, indexCar, linksOf, readCar } from '../../src/car/index.js'
import type { CarBlock } from '../../src/car/index.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import { collect, deterministicBytes, tempDir, writeTree } from '../unixfs/helpers.js'
import { codeOf } from '../helpers/errors.js'

const IPFS_CAR = fileURLToPath(new URL('../../../node_modules/ipfs-car/bin.js', import.meta.url))

async function * once (bytes: Uint8Array, step = 7): AsyncGenerator<Uint8Array> {
  // small uneven chunks exercise every boundary of the parser
  for (let i = 0; i < bytes.byteLength; i += step) yield bytes.subarray(i, i + step)
}

async function readAll (bytes: Uint8Array, options = {}): Promise<CarBlock[]> {
  const out: CarBlock[] = []
  for await (const block of readCar(once(bytes, 1000), options)) out.push(block)
  return out
}

async function rawBlock (data: string | Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function pbBlock (links: CID[]): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = dagPb.encode(dagPb.prepare({ Data: new Uint8Array([8, 1]), Links: links.map((Hash, i) => ({ Name: `n${i}`, Hash, Tsize: 1 })) }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

function car (roots: CID[], blocks: Array<{ cid: CID, bytes: Uint8Array }>, header?: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [header ?? encodeHeader(roots)]
  for (const b of blocks) parts.push(encodeFramePrefix(b.cid, b.bytes.byteLength), b.bytes)
  return Buffer.concat(parts)
}

function rawHeader (value: unknown): Uint8Array {
  const body = dagCbor.encode(value)
  return Buffer.concat([varint.encodeTo(body.byteLength, new Uint8Array(varint.encodingLength(body.byteLength))), body])
}

async function packed (): Promise<{ root: CID, bytes: Buffer, dir: string, cleanup: () => Promise<void> }> {
  const dir = await tempDir()
  const input = join(dir.path, 'input')
  await writeTree(input, {
    'a.txt': 'hello',
    same1: deterministicBytes(3000, 'dup'),
    same2: deterministicBytes(3000, 'dup'),
    zeros: new Uint8Array(5000),
    nested: { deeper: { 'b.bin': deterministicBytes(4000, 'b') }, empty: {} },
    ünicode: 'ü'
  })
  const plan = await planImport([input], { chunkSize: 500, maxLinks: 3 })
  return { root: plan.root, bytes: await collect(carStream(plan)), dir: dir.path, cleanup: dir.cleanup }
}

test('a packed CAR is read by @ipld/car with the root in its header, each block once, in DFS first-seen order', async t => {
  const p = await packed()
  try {
    const reader = await CarReader.fromBytes(p.bytes)
    t.deepEqual((await reader.getRoots()).map(String), [p.root.toString()])
    const order: string[] = []
    const blocks = new Map<string, Uint8Array>()
    for await (const { cid, bytes } of reader.blocks()) {
      order.push(cid.toString())
      blocks.set(cid.toString(), bytes)
    }
    t.is(new Set(order).size, order.length, 'no duplicates')
    const dfs: string[] = []
    const seen = new Set<string>()
    const visit = (cid: CID): void => {
      const key = cid.toString()
      if (seen.has(key)) return
      seen.add(key)
      dfs.push(key)
      const bytes = blocks.get(key)
      if (bytes === undefined) throw new Error(`missing ${key}`)
      for (const link of linksOf(cid, bytes)) visit(link)
    }
    visit(p.root)
    t.deepEqual(order, dfs)
    t.true(order.length > 10)
    // and our own strict checker agrees
    const verifier = new DagVerifier(p.root, { order: 'dfs' })
    for (const block of await readAll(p.bytes, { unique: true })) verifier.add(block.cid, block.bytes)
    t.notThrows(() => verifier.finish())
  } finally {
    await p.cleanup()
  }
})

test('ipfs-car unpack restores the packed tree byte for byte', async t => {
  const p = await packed()
  try {
    const carPath = join(p.dir, 'x.car')
    const { writeFile } = await import('node:fs/promises')
    await writeFile(carPath, p.bytes)
    const out = join(p.dir, 'out')
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [IPFS_CAR, 'unpack', carPath, '--output', out], { stdio: 'ignore' })
      child.on('error', reject)
      child.on('close', c => resolve(c ?? 1))
    })
    t.is(code, 0)
    for (const file of ['a.txt', 'same1', 'same2', 'zeros', 'nested/deeper/b.bin', 'ünicode']) {
      t.true((await readFile(join(out, file))).equals(await readFile(join(p.dir, 'input', file))), file)
    }
  } finally {
    await p.cleanup()
  }
})

test('the block index points at each block\'s bytes', async t => {
  const p = await packed()
  try {
    for await (const entry of indexCar(once(p.bytes, 4096))) {
      const bytes = p.bytes.subarray(entry.offset, entry.offset + entry.length)
      t.true(CID.createV1(entry.cid.code, await sha256.digest(bytes)).multihash.bytes.every((b, i) => b === entry.cid.multihash.bytes[i]))
    }
  } finally {
    await p.cleanup()
  }
})

test('reader rejections, each with its code', async t => {
  const leaf = await rawBlock('leaf')
  const other = await rawBlock('other')
  const good = car([leaf.cid], [leaf])
  await t.notThrowsAsync(readAll(good))
  const cases: Array<[string, Uint8Array, string, object?]> = [
    ['empty input', new Uint8Array(), 'ERR_CAR_TRUNCATED'],
    ['truncated block', good.subarray(0, good.byteLength - 2), 'ERR_CAR_TRUNCATED'],
    ['truncated header', good.subarray(0, 5), 'ERR_CAR_TRUNCATED'],
    ['truncated frame length', Buffer.concat([encodeHeader([leaf.cid]), new Uint8Array([0x80])]), 'ERR_CAR_TRUNCATED'],
    ['header not cbor', Buffer.from([4, 0xff, 0xff, 0xff, 0xff]), 'ERR_CAR_HEADER'],
    ['header not a map', rawHeader([1, 2]), 'ERR_CAR_HEADER'],
    ['CARv2 pragma', rawHeader({ version: 2 }), 'ERR_CAR_UNSUPPORTED_VERSION'],
    ['version 3', rawHeader({ version: 3, roots: [leaf.cid] }), 'ERR_CAR_UNSUPPORTED_VERSION'],
    ['roots not CIDs', rawHeader({ version: 1, roots: ['x'] }), 'ERR_CAR_HEADER'],
    ['no roots', car([], [leaf]), 'ERR_CAR_NO_ROOTS'],
    ['two roots', car([leaf.cid, other.cid], [leaf, other]), 'ERR_CAR_MULTIPLE_ROOTS'],
    ['block too large', Buffer.concat([encodeHeader([leaf.cid]), varint.encodeTo(3 * 1024 * 1024, new Uint8Array(4))]), 'ERR_CAR_BLOCK_TOO_LARGE'],
    ['bytes do not match the CID', car([leaf.cid], [{ cid: leaf.cid, bytes: new TextEncoder().encode('leaF') }]), 'ERR_BLOCK_MISMATCH'],
    ['duplicate block when unique', car([leaf.cid], [leaf, leaf]), 'ERR_CAR_DUPLICATE_BLOCK', { unique: true }],
    ['garbage CID in a frame', Buffer.concat([encodeHeader([leaf.cid]), new Uint8Array([3, 0xff, 0xff, 0xff])]), 'ERR_DAG_INVALID']
  ]
  for (const [name, bytes, code, options] of cases) {
    const err = await t.throwsAsync(readAll(bytes, options ?? {}), undefined, name)
    t.is((err as { code?: string })?.code, code, name)
  }
  t.is((await readAll(car([leaf.cid], [leaf, leaf]))).length, 2, 'duplicates allowed unless unique')
})

test('DAG completeness: root first, every link present, strict DFS order', async t => {
  const a = await rawBlock('a')
  const b = await rawBlock('b')
  const inner = await pbBlock([b.cid])
  const root = await pbBlock([a.cid, inner.cid])
  const stray = await rawBlock('stray')
  const check = (blocks: Array<{ cid: CID, bytes: Uint8Array }>, order: 'linked' | 'dfs', r = root.cid): void => {
    const v = new DagVerifier(r, { order })
    for (const block of blocks) v.add(block.cid, block.bytes)
    v.finish()
  }
  t.notThrows(() => check([root, a, inner, b], 'dfs'))
  t.notThrows(() => check([root, inner, b, a], 'linked'))
  t.is(codeOf(() => check([root, inner, b, a], 'dfs')), 'ERR_DAG_INVALID')
  t.is(codeOf(() => check([a, root, inner, b], 'linked')), 'ERR_CAR_ROOT_MISSING')
  t.is(codeOf(() => check([], 'linked')), 'ERR_CAR_ROOT_MISSING')
  t.is(codeOf(() => check([root, a, inner], 'dfs')), 'ERR_CAR_BLOCK_MISSING')
  t.is(codeOf(() => check([root, a, inner], 'linked')), 'ERR_CAR_BLOCK_MISSING')
  t.is(codeOf(() => check([root, a, a, inner, b], 'dfs')), 'ERR_CAR_DUPLICATE_BLOCK')
  t.is(codeOf(() => check([root, a, stray, inner, b], 'linked')), 'ERR_DAG_INVALID')
})
