/**
 * The one UnixFS reader on a DAG written by the reference importer
 * (ipfs-unixfs-importer) with a HAMT fanout of 16 instead of the 256 cairn
 * writes (its `shardFanoutBits` option): path resolution, `ls`, `unpack` of
 * the CAR file and `unpack` of the streamed DFS CAR all read the same shards.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { readCar, type CarBlock } from '../../src/car/index.js'
import { lsCarFile, unpack } from '../../src/unixfs/exporter.js'
import type { Load } from '../../src/unixfs/interface.js'
import { resolvePath } from '../../src/unixfs/reader.js'
import { unpackStream } from '../../src/unixfs/unpack-stream.js'
import { dfsPiece, importInto, MemoryBlocks } from '../provider/fixtures.js'
import { tempDir } from './helpers.js'

const encoder = new TextEncoder()
const names = Array.from({ length: 60 }, (_, i) => `name-${i}.txt`)
const contentOf = (name: string): Uint8Array => encoder.encode(`the content of ${name}\n`)

const blocks = new MemoryBlocks()
let root: CID
let car: Uint8Array

test.before(async () => {
  root = await importInto(blocks, [
    ...names.map(name => ({ path: `dir/${name}`, content: contentOf(name) })),
    { path: 'dir/sub/inner.txt', content: contentOf('inner.txt') }
  ], { shardSplitThresholdBytes: 100, shardFanoutBits: 4 })
  car = (await dfsPiece(root, blocks)).car
})

const load: Load = async (cid) => {
  const bytes = blocks.map.get(cid.toString())
  if (bytes === undefined) throw Object.assign(new Error(`no block ${cid.toString()}`), { code: 'ERR_BLOCK_NOT_FOUND' })
  return bytes
}

async function leafCid (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

test('the fixture is a HAMT of fanout 16, with sub-shards', t => {
  const unixfs = UnixFS.unmarshal(dagPb.decode(blocks.map.get(root.toString()) as Uint8Array).Data as Uint8Array)
  t.is(unixfs.type, 'hamt-sharded-directory')
  t.is(unixfs.fanout, 16n)
  t.true(dagPb.decode(blocks.map.get(root.toString()) as Uint8Array).Links.some(l => l.Name?.length === 1))
})

test('path resolution through a fanout-16 HAMT finds every name, with the shards on the way, and no other', async t => {
  const rootBlock = { cid: root, bytes: await load(root) }
  for (const name of names) {
    const { pathBlocks, terminal } = await resolvePath(rootBlock, [name], load)
    t.true(terminal.cid.equals(await leafCid(contentOf(name))), name)
    t.true(pathBlocks[0].cid.equals(root))
  }
  t.true((await Promise.all(names.map(async name => (await resolvePath(rootBlock, [name], load)).pathBlocks.length))).some(n => n > 1))
  const inner = await resolvePath(rootBlock, ['sub', 'inner.txt'], load)
  t.true(inner.terminal.cid.equals(await leafCid(contentOf('inner.txt'))))
  const err = await t.throwsAsync(resolvePath(rootBlock, ['name-60.txt'], load))
  t.is((err as { code?: string }).code, 'ERR_PATH_NOT_FOUND')
})

test('ls and unpack of the CAR file, and unpack of the streamed CAR, give every entry', async t => {
  const dir = await tempDir()
  try {
    const file = join(dir.path, 'x.car')
    await writeFile(file, car)
    const listed = new Set<string>()
    for await (const entry of lsCarFile(file)) listed.add(entry.path)
    const expected = [root.toString(), ...names.map(n => `${root.toString()}/${n}`), `${root.toString()}/sub`, `${root.toString()}/sub/inner.txt`]
    t.deepEqual([...listed].sort(), expected.sort())

    const unpacked = await unpack(file, join(dir.path, 'unpacked'))
    async function * stream (): AsyncGenerator<CarBlock> {
      yield * readCar((async function * () { yield car })())
    }
    const streamed = await unpackStream(stream(), root, join(dir.path, 'streamed'))
    for (const result of [unpacked, streamed]) {
      t.is(result.files, names.length + 1)
      t.is(result.directories, 2)
      for (const name of names) t.deepEqual(new Uint8Array(await readFile(join(result.output, name))), contentOf(name))
      t.deepEqual(new Uint8Array(await readFile(join(result.output, 'sub', 'inner.txt'))), contentOf('inner.txt'))
    }
  } finally {
    await dir.cleanup()
  }
})
