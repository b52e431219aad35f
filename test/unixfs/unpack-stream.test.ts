/**
 * The streaming unpacker against the file-based one: the importer's DFS CAR
 * (no duplicate blocks, so repeated files, chunks, empty files and
 * directories arrive once) written while it streams must give the same tree
 * as `unpack` of the same CAR; out-of-order, missing and extra blocks are
 * refused with nothing left behind.
 */
import test from 'ava'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readCar, type CarBlock } from '../../src/car/index.js'
import { unpack } from '../../src/unixfs/exporter.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import type { Profile } from '../../src/unixfs/profile.js'
import { unpackStream, UnpackOutputError } from '../../src/unixfs/unpack-stream.js'
import { collect, deterministicBytes, sameTree, tempDir, writeTree, type Tree } from './helpers.js'

async function blocksOf (car: Uint8Array): Promise<CarBlock[]> {
  const out: CarBlock[] = []
  async function * once (): AsyncGenerator<Uint8Array> { yield car }
  for await (const block of readCar(once())) out.push(block)
  return out
}

async function * from (blocks: CarBlock[]): AsyncGenerator<CarBlock> {
  yield * blocks
}

const zeros = new Uint8Array(5000)
const tree: Tree = {
  'a.txt': 'hello',
  'a-again.txt': 'hello',
  big: deterministicBytes(20_000, 'big'),
  'big-again': deterministicBytes(20_000, 'big'),
  zeros,
  empty: {},
  'empty-too': {},
  'e.txt': '',
  'e2.txt': '',
  sub: { 'a.txt': 'hello', link: { symlink: '../a.txt' }, inner: { big: deterministicBytes(20_000, 'big') } },
  'sub-copy': { 'a.txt': 'hello', link: { symlink: '../a.txt' }, inner: { big: deterministicBytes(20_000, 'big') } },
  link: { symlink: 'a.txt' },
  'link-too': { symlink: 'a.txt' }
}

for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as Profile[]) {
  test(`${profile}: a DFS CAR without duplicates written as it streams equals unpack of the same CAR`, async t => {
    const dir = await tempDir()
    try {
      const input = join(dir.path, 'input')
      await writeTree(input, tree)
      // small chunks and few links: repeated leaves inside a file and across files, several levels
      const plan = await planImport([input], { profile, chunkSize: 1000, maxLinks: 3 })
      const car = await collect(carStream(plan))
      const blocks = await blocksOf(car)
      const seen = new Set(blocks.map(b => b.cid.toString()))
      t.is(seen.size, blocks.length)
      const streamed = await unpackStream(from(blocks), plan.root, join(dir.path, 'streamed'))
      await writeFile(join(dir.path, 'x.car'), car)
      const unpacked = await unpack(join(dir.path, 'x.car'), join(dir.path, 'unpacked'))
      await sameTree(t, join(dir.path, 'unpacked'), join(dir.path, 'streamed'))
      await sameTree(t, input, join(dir.path, 'streamed'))
      t.is(streamed.files, unpacked.files)
      t.is(streamed.directories, unpacked.directories)
      t.is(streamed.symlinks, unpacked.symlinks)
      t.is(streamed.bytes, unpacked.bytes)
    } finally {
      await dir.cleanup()
    }
  })
}

test('a single file, as the root', async t => {
  const dir = await tempDir()
  try {
    const input = join(dir.path, 'f.bin')
    await writeTree(input, deterministicBytes(50_000, 'f'))
    const plan = await planImport([input], { chunkSize: 4096, maxLinks: 4 })
    const blocks = await blocksOf(await collect(carStream(plan)))
    const result = await unpackStream(from(blocks), plan.root, join(dir.path, 'out'))
    t.true((await readFile(join(dir.path, 'out'))).equals(await readFile(input)))
    t.is(result.bytes, 50_000)
    t.is(result.files, 1)
  } finally {
    await dir.cleanup()
  }
})

test('out-of-order, missing and extra blocks are refused and leave nothing', async t => {
  const dir = await tempDir()
  try {
    const input = join(dir.path, 'input')
    await writeTree(input, { a: deterministicBytes(10_000, 'a'), b: { c: 'c' } })
    const plan = await planImport([input], { chunkSize: 1000, maxLinks: 3 })
    const blocks = await blocksOf(await collect(carStream(plan)))
    const swapped = [blocks[0], blocks[2], blocks[1], ...blocks.slice(3)]
    const cases: Array<[string, CarBlock[], string]> = [
      ['swapped', swapped, 'ERR_DAG_INVALID'],
      ['missing', blocks.slice(0, -1), 'ERR_CAR_BLOCK_MISSING'],
      ['extra', [...blocks, blocks[1]], 'ERR_DAG_INVALID']
    ]
    for (const [name, list, code] of cases) {
      const err = await t.throwsAsync(unpackStream(from(list), plan.root, join(dir.path, name)))
      t.is((err as { code?: string }).code, code, name)
      t.false(err instanceof UnpackOutputError, name)
      t.deepEqual((await readdir(dir.path)).filter(n => n.includes(name)), [], name)
    }
  } finally {
    await dir.cleanup()
  }
})

test('a lent block is handed to the writer once and given back once its write is done; a repeat asked for meanwhile gets a copy', async t => {
  const dir = await tempDir()
  try {
    const KiB = 1024
    const same = deterministicBytes(256 * KiB, 'lent')
    // 256 KiB leaves: the writer gathers sixteen into one 4 MiB write, so the repeat at 20 is asked
    // for while the write holding the first is still running, and written only after it is done
    const content = Buffer.concat([...Array.from({ length: 24 }, (_, i) => [0, 1, 20].includes(i) ? same : deterministicBytes(256 * KiB, `leaf ${i}`)), deterministicBytes(100, 'tail')])
    const input = join(dir.path, 'file')
    await writeFile(input, content)
    const plan = await planImport([input], { profile: 'unixfs-v1-2025', chunkSize: 256 * KiB })
    const blocks = await blocksOf(await collect(carStream(plan)))
    const leaves = new Set(blocks.filter(b => b.cid.code === 0x55).map(b => b.bytes))
    const given: Uint8Array[] = []
    const lent = {
      holds: (bytes: Uint8Array) => leaves.has(bytes),
      // what a body's slab does once given back: it is read into again
      done: (bytes: Uint8Array) => { leaves.delete(bytes); given.push(bytes); bytes.fill(0) }
    }
    const unique = leaves.size
    const result = await unpackStream(from(blocks), plan.root, join(dir.path, 'out'), { lent })
    t.is(result.bytes, content.length)
    t.true((await readFile(join(dir.path, 'out'))).equals(content), 'no write read a block after it was given back')
    t.is(given.length, unique, 'every lent leaf given back, once')
  } finally {
    await dir.cleanup()
  }
})
