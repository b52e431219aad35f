/**
 * Root CIDs against ipfs-unixfs-importer 17 (the oracle, same profile and
 * overrides) and against the IPIP-499 conformance vectors
 * (fixtures/unixfs/ipip-499.json, from kubo's cid_profiles_test.go).
 */
import test from 'ava'
import { readFileSync } from 'node:fs'
import { writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import * as fc from 'fast-check'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import type { Profile } from '../../src/unixfs/profile.js'
import { collect, deterministicBytes, deterministicNames, oracleRoot, tempDir, treeArbitrary, writeTree, type Tree } from './helpers.js'
import { CarBufferReader } from '@ipld/car/buffer-reader'

const profiles: Profile[] = ['unixfs-v1-2025', 'unixfs-v0-2015']
const fixtures = JSON.parse(readFileSync(new URL('../../../fixtures/unixfs/ipip-499.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ name: string, profile: Profile, kind: string, cid: string, text?: string, seed?: string, size?: number, count?: number, nameLength?: number, lastNameLength?: number, type?: string, slow?: boolean }>
}

async function rootType (path: string, profile: Profile): Promise<string> {
  const plan = await planImport([path], { profile })
  const reader = CarBufferReader.fromBytes(await collect(carStream(plan)))
  const block = reader.get(plan.root)
  if (block === undefined) throw new Error('root missing')
  return UnixFS.unmarshal(dagPb.decode(block.bytes).Data as Uint8Array).type
}

for (const vector of fixtures.vectors) {
  const run = vector.slow === true && process.env.CAIRN_SLOW_TESTS === undefined ? test.skip : test
  run(`IPIP-499 vector: ${vector.name}`, async t => {
    const dir = await tempDir()
    try {
      let path: string
      switch (vector.kind) {
        case 'text':
          path = join(dir.path, 'file')
          await writeFile(path, vector.text as string)
          break
        case 'bytes':
          path = join(dir.path, 'file')
          await writeFile(path, deterministicBytes(vector.size as number, vector.seed as string))
          break
        case 'empty-dir':
          path = join(dir.path, 'emptyDir')
          await mkdir(path)
          break
        default: {
          path = join(dir.path, 'rootDir')
          await mkdir(path)
          const names = deterministicNames(vector.count as number, vector.nameLength as number, vector.lastNameLength as number, vector.seed as string)
          for (const name of names) await writeFile(join(path, name), 'x')
        }
      }
      const plan = await planImport([path], { profile: vector.profile })
      t.is(plan.root.toString(), vector.cid)
      if (vector.type !== undefined) t.is(await rootType(path, vector.profile), vector.type)
    } finally {
      await dir.cleanup()
    }
  })
}

async function same (t: import('ava').ExecutionContext, tree: Tree, options: { profile: Profile, chunkSize?: number, maxLinks?: number, wrap?: boolean, hidden?: boolean }): Promise<void> {
  const dir = await tempDir()
  try {
    const path = join(dir.path, 'input')
    await writeTree(path, tree)
    const plan = await planImport([path], options)
    t.is(plan.root.toString(), await oracleRoot([path], options), JSON.stringify(options))
    t.is((await collect(carStream(plan))).byteLength, plan.carSize)
  } finally {
    await dir.cleanup()
  }
}

const small = { chunkSize: 16, maxLinks: 4 }
const sizes: Array<[string, number]> = [
  ['empty file', 0],
  ['1 byte', 1],
  ['exactly one chunk', 16],
  ['one chunk + 1', 17],
  ['chunk × maxLinks', 16 * 4],
  ['chunk × maxLinks + 1', 16 * 4 + 1],
  ['multi-level (3 levels)', 16 * 4 * 4 * 3 + 5]
]

for (const profile of profiles) {
  for (const [name, size] of sizes) {
    test(`${profile}: ${name} equals the importer (chunk 16, 4 links)`, async t => {
      await same(t, deterministicBytes(size, name), { profile, ...small })
    })
  }

  test(`${profile}: default parameters, 1 byte and chunk-boundary files`, async t => {
    const chunk = profile === 'unixfs-v1-2025' ? 1_048_576 : 262_144
    await same(t, { a: 'x', b: deterministicBytes(chunk, 'b'), c: deterministicBytes(chunk + 1, 'c'), e: '' }, { profile })
  })

  test(`${profile}: nested directories with unicode names, empty dirs, symlinks`, async t => {
    const tree: Tree = {
      'héllo wörld.txt': 'hi',
      日本語: { 'ファイル.txt': deterministicBytes(100, 'j'), empty: {} },
      '🙂': { deeper: { deepest: { file: 'deep' } } },
      empty: {},
      link: { symlink: '日本語/ファイル.txt' },
      '.hidden': 'skipped by default'
    }
    await same(t, tree, { profile, ...small })
    await same(t, tree, { profile, ...small, hidden: true })
    await same(t, tree, { profile, wrap: true })
  })

  test(`${profile}: random trees equal the importer (fast-check)`, async t => {
    // The oracle splits paths on '/' unless escaped by '\\' (ipfs-unixfs-importer's
    // toPathComponents), so a name ending in a backslash cannot be given to it as a
    // path component; cairn stores such names as they are.
    const treeArb = treeArbitrary(['back\\slash'], name => !name.endsWith('\\'))
    await fc.assert(fc.asyncProperty(treeArb, fc.integer({ min: 1, max: 64 }), fc.integer({ min: 2, max: 6 }), fc.boolean(), async (tree, chunkSize, maxLinks, hidden) => {
      const dir = await tempDir()
      try {
        const path = join(dir.path, 'input')
        await writeTree(path, tree)
        const plan = await planImport([path], { profile, chunkSize, maxLinks, hidden })
        return plan.root.toString() === await oracleRoot([path], { profile, chunkSize, maxLinks, hidden })
      } finally {
        await dir.cleanup()
      }
    }), { numRuns: 40 })
    t.pass()
  })
}

test('a directory big enough to be sharded, with sub-directories, in both profiles', async t => {
  const dir = await tempDir()
  try {
    const path = join(dir.path, 'input')
    const tree: Record<string, Tree> = { sub: { a: 'a', b: 'b' }, empty: {} }
    // 4500 links of 27-byte names: over 256 KiB for both estimators
    for (let i = 0; i < 4500; i++) tree[`file-with-a-long-name-${i.toString().padStart(5, '0')}`] = String(i % 7)
    await writeTree(path, tree)
    for (const profile of profiles) {
      const plan = await planImport([path], { profile })
      t.is(plan.root.toString(), await oracleRoot([path], { profile }), profile)
      t.is(await rootType(path, profile), 'hamt-sharded-directory')
    }
  } finally {
    await dir.cleanup()
  }
})

test('several paths are wrapped in one directory under their base names', async t => {
  const dir = await tempDir()
  try {
    await writeTree(join(dir.path, 'a.txt'), 'a')
    await writeTree(join(dir.path, 'd'), { b: 'b', c: { d: 'd' } })
    const paths = [join(dir.path, 'a.txt'), join(dir.path, 'd')]
    const plan = await planImport(paths)
    t.is(plan.root.toString(), await oracleRoot(paths))
    t.is(plan.files, 3)
    t.is(plan.bytes, 3)
  } finally {
    await dir.cleanup()
  }
})

test('the same input gives the same CAR bytes', async t => {
  const dir = await tempDir()
  try {
    await writeTree(join(dir.path, 'd'), { x: deterministicBytes(5000, 'x'), y: deterministicBytes(5000, 'x'), z: { w: 'w' } })
    const a = await collect(carStream(await planImport([join(dir.path, 'd')], { chunkSize: 1000 })))
    const b = await collect(carStream(await planImport([join(dir.path, 'd')], { chunkSize: 1000 })))
    t.true(a.equals(b))
  } finally {
    await dir.cleanup()
  }
})
