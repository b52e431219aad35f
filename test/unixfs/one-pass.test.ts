/**
 * The one-pass import writes, byte for byte, the CAR the two-pass importer
 * streams (`carStream` of `planImport`), with the piece CID
 * @web3-storage/data-segment computes of those bytes; it gives way to the two
 * passes when a node is met twice.
 */
import test from 'ava'
import { appendFile, open, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as fc from 'fast-check'
import { Piece } from '@web3-storage/data-segment'
import { writePiece, type PlacedBytes } from '../../src/store/pieces.js'
import { carStream, planImport, type ImportOptions } from '../../src/unixfs/importer.js'
import { importCar, OnePassImport, RepeatedNode } from '../../src/unixfs/one-pass.js'
import type { Profile } from '../../src/unixfs/profile.js'
import { collect, deterministicBytes, tempDir, treeArbitrary, writeTree, type Tree } from './helpers.js'
import { ageEncryption } from '../../src/crypto/encrypt.js'
import type { Recipient } from '../../src/crypto/keys.js'
import type { ContentEncryption, FileEncryption } from '../../src/unixfs/importer.js'
import { newIdentity } from '../crypto/helpers.js'

const profiles: Profile[] = ['unixfs-v1-2025', 'unixfs-v0-2015']
const small = { chunkSize: 16, maxLinks: 4 }

/** The CAR a source of (placed) bytes makes in a file, and its piece CID. */
async function written (dir: string, car: AsyncIterable<Uint8Array | PlacedBytes>): Promise<{ bytes: Buffer, piece: string }> {
  const path = join(dir, 'out.car')
  const handle = await open(path, 'w+')
  try {
    const { piece } = await writePiece(handle, car)
    return { bytes: await readFile(path), piece: piece.cid.toString() }
  } finally {
    await handle.close()
    await rm(path, { force: true })
  }
}

/** One pass and two passes over `paths` give the same CAR, root and counts; one pass must not give way unless `repeats`. */
async function same (t: import('ava').ExecutionContext, dir: string, paths: string[], options: ImportOptions, repeats = false): Promise<void> {
  const label = JSON.stringify(options)
  const plan = await planImport(paths, options)
  const expected = await collect(carStream(plan))
  const pass = await OnePassImport.plan(paths, options)
  if (repeats) {
    await t.throwsAsync(written(dir, pass.placed()), { instanceOf: RepeatedNode }, label)
  } else {
    const one = await written(dir, pass.placed())
    t.true(one.bytes.equals(expected), `CAR bytes, ${label}`)
    t.is(one.piece, Piece.fromPayload(expected).link.toString(), `piece, ${label}`)
    const { dag: _, ...summary } = plan
    t.deepEqual({ ...pass.summary, root: pass.summary.root.toString() }, { ...summary, root: plan.root.toString() }, label)
  }
  // whichever way it went, importCar writes the two-pass CAR
  const { plan: made, written: out } = await importCar(paths, options, async car => await written(dir, car))
  t.true(out.bytes.equals(expected), `importCar, ${label}`)
  t.is(made.root.toString(), plan.root.toString())
}

for (const profile of profiles) {
  test(`${profile}: files of every layout size, one pass equals two`, async t => {
    const dir = await tempDir()
    try {
      // distinct leaves: 0, 1 byte, one chunk, one more, a full node, one more, three levels
      for (const size of [0, 1, 16, 17, 64, 65, 16 * 4 * 4 * 3 + 5]) {
        const path = join(dir.path, `f${size}`)
        await writeFile(path, deterministicBytes(size, `f${size}`))
        await same(t, dir.path, [path], { profile, ...small })
        await same(t, dir.path, [path], { profile, ...small, wrap: true })
      }
      const big = join(dir.path, 'big')
      await writeFile(big, deterministicBytes(3 * 1024 * 1024 + 7, 'big'))
      await same(t, dir.path, [big], { profile })
    } finally {
      await dir.cleanup()
    }
  })

  test(`${profile}: directories with unicode names, empty files and directories, symlinks, hidden names, several paths`, async t => {
    const dir = await tempDir()
    try {
      const tree: Tree = {
        'héllo wörld.txt': 'hi',
        日本語: { 'ファイル.txt': deterministicBytes(100, 'j'), empty: {}, none: '' },
        '🙂': { deeper: { deepest: { file: deterministicBytes(300, 'deep') } } },
        empty: {},
        none: '',
        link: { symlink: '日本語/ファイル.txt' },
        again: { symlink: '日本語/ファイル.txt' },
        '.hidden': 'skipped by default'
      }
      const path = join(dir.path, 'input')
      await writeTree(path, tree)
      await same(t, dir.path, [path], { profile, ...small })
      await same(t, dir.path, [path], { profile, ...small, hidden: true })
      await same(t, dir.path, [join(path, 'link'), join(path, '日本語'), join(path, 'héllo wörld.txt')], { profile, ...small })
    } finally {
      await dir.cleanup()
    }
  })
}

test('a sharded directory (HAMT), its files not in name order in the CAR, one pass equals two', async t => {
  const dir = await tempDir()
  try {
    const tree: Record<string, Tree> = { sub: { a: 'a', b: deterministicBytes(200, 'b') }, empty: {} }
    // 4500 links of 27-byte names: over 256 KiB for both estimators; files of one leaf or more, none alike (each tail 8 bytes or more)
    for (let i = 0; i < 4500; i++) tree[`file-with-a-long-name-${i.toString().padStart(5, '0')}`] = deterministicBytes(16 * (i % 4) + 8 + i % 8, String(i))
    const path = join(dir.path, 'input')
    await writeTree(path, tree)
    for (const profile of profiles) await same(t, dir.path, [path], { profile, chunkSize: 16 })
  } finally {
    await dir.cleanup()
  }
})

test('leaves met again are left out in one pass; a node met again (two copies of a file of several leaves) gives way to two passes', async t => {
  const dir = await tempDir()
  try {
    // runs of zeros: one leaf met again and again in a file, under nodes that differ, in both profiles
    const zeros = join(dir.path, 'zeros')
    await writeFile(zeros, Buffer.concat([0, 1, 2, 3, 4].flatMap(k => [new Uint8Array(48), deterministicBytes(16, `k${k}`)])))
    await same(t, dir.path, [zeros], small)
    await same(t, dir.path, [zeros], { ...small, profile: 'unixfs-v0-2015' })
    // copies of a file of one leaf, empty files, and a file whose leaves are another's in another order
    const ones = join(dir.path, 'ones')
    const [x, y] = [deterministicBytes(16, 'x'), deterministicBytes(16, 'y')]
    await writeTree(ones, { a: deterministicBytes(10, 'one'), b: deterministicBytes(10, 'one'), c: { d: deterministicBytes(10, 'one'), e: '' }, f: '', xy: Buffer.concat([x, y]), yx: Buffer.concat([y, x]) })
    await same(t, dir.path, [ones], small)
    // a file of zeros long enough that whole nodes of zero leaves repeat, and two copies of a file of three leaves: their top node is met twice
    await writeFile(zeros, new Uint8Array(1000))
    await same(t, dir.path, [zeros], small, true)
    const twins = join(dir.path, 'twins')
    await writeTree(twins, { a: deterministicBytes(40, 'twin'), b: deterministicBytes(40, 'twin'), c: 'c' })
    await same(t, dir.path, [twins], small, true)
    await same(t, dir.path, [twins], { ...small, profile: 'unixfs-v0-2015' }, true)
  } finally {
    await dir.cleanup()
  }
})

test('random trees: one pass (or the two it gives way to) equals two (fast-check)', async t => {
  const treeArb = treeArbitrary()
  let onePass = 0
  await fc.assert(fc.asyncProperty(treeArb, fc.constantFrom(...profiles), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 2, max: 6 }), fc.boolean(), async (tree, profile, chunkSize, maxLinks, hidden) => {
    const dir = await tempDir()
    try {
      const path = join(dir.path, 'input')
      await writeTree(path, tree)
      const options = { profile, chunkSize, maxLinks, hidden }
      const expected = await collect(carStream(await planImport([path], options)))
      const pass = await OnePassImport.plan([path], options)
      try {
        const one = await written(dir.path, pass.placed())
        onePass++
        if (!one.bytes.equals(expected)) return false
      } catch (err) {
        if (!(err instanceof RepeatedNode)) throw err
      }
      return (await importCar([path], options, async car => await written(dir.path, car))).written.bytes.equals(expected)
    } finally {
      await dir.cleanup()
    }
  }), { numRuns: 40 })
  // only copies of a file of several leaves give way; most trees take one pass
  t.true(onePass > 20, `${onePass} of 40 trees took one pass`)
})

test('a file that changed or went away after it was laid out is ERR_FILE_CHANGED', async t => {
  const dir = await tempDir()
  try {
    const path = join(dir.path, 'file')
    await writeFile(path, deterministicBytes(1000, 'changes'))
    const grown = await OnePassImport.plan([path], small)
    await appendFile(path, 'more')
    await t.throwsAsync(written(dir.path, grown.placed()), { code: 'ERR_FILE_CHANGED' })
    const gone = await OnePassImport.plan([path], small)
    await rm(path)
    await t.throwsAsync(written(dir.path, gone.placed()), { code: 'ERR_FILE_CHANGED' })
    t.throws(() => gone.summary, { message: /not finished/ })
  } finally {
    await dir.cleanup()
  }
})

/**
 * An age encryption (src/crypto/encrypt.ts) that records each file's key, nonce
 * and header the first time round and gives the same ones back, in the same
 * order, the second: one pass and two passes then make the same ciphertext.
 */
function replayed (recipients: readonly Recipient[]): { encryption: ContentEncryption, replay: () => void } {
  const age = ageEncryption(recipients)
  const made: FileEncryption[] = []
  let next: number | undefined
  return {
    encryption: {
      ...age,
      file: async size => {
        if (next === undefined) {
          const file = await age.file(size)
          made.push(file)
          return file
        }
        return made[next++] as FileEncryption
      }
    },
    replay: () => { next = 0 }
  }
}

test('encrypted: one pass, sealing each leaf as its plaintext is read, equals two passes under the same keys (test/cli/encrypt.test.ts decrypts what add and pack make)', async t => {
  const dir = await tempDir()
  try {
    const { recipient } = await newIdentity()
    const path = join(dir.path, 'input')
    // a file of several leaves and seal-pool batches, small and empty files, a symlink, a nested directory
    await writeTree(path, { big: deterministicBytes(2 * 1024 * 1024 + 70_000, 'big'), small: 'small', empty: '', link: { symlink: 'small' }, sub: { deeper: deterministicBytes(300_000, 'deeper') } })
    for (const profile of profiles) {
      for (const paths of [[path], [join(path, 'big')]]) {
        const { encryption, replay } = replayed([recipient])
        const options = { profile, chunkSize: profile === 'unixfs-v1-2025' ? 262_144 : undefined, encryption }
        const pass = await OnePassImport.plan(paths, options)
        const one = await written(dir.path, pass.placed())
        replay()
        const plan = await planImport(paths, options)
        const two = await collect(carStream(plan))
        t.true(one.bytes.equals(two), `${profile}, ${paths.length} path(s)`)
        t.is(pass.summary.root.toString(), plan.root.toString())
        t.is(one.piece, Piece.fromPayload(two).link.toString())
      }
    }
  } finally {
    await dir.cleanup()
  }
})
