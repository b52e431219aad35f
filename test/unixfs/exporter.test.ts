/**
 * The exporter: pack → unpack round trips, and every refusal: corrupt blocks,
 * unsafe names, existing targets, truncated CARs, CARs without roots or with
 * their root or a block missing. Bad CARs are crafted here.
 */
import test from 'ava'
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { encodeFramePrefix, encodeHeader } from '../../src/car/index.js'
import { lsCarFile, unpack } from '../../src/unixfs/exporter.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import type { Profile } from '../../src/unixfs/profile.js'
import { cairn } from '../helpers/cli.js'
import { collect, deterministicBytes, sameTree, tempDir, writeTree, type Tree } from './helpers.js'
import { rejectionCodeOf as codeOf } from '../helpers/errors.js'

interface Block { cid: CID, bytes: Uint8Array }

async function rawBlock (text: string): Promise<Block> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function dirBlock (entries: Array<[string, CID]>, type: 'directory' | 'hamt-sharded-directory' = 'directory'): Promise<Block> {
  const unixfs = type === 'directory' ? new UnixFS({ type }) : new UnixFS({ type, fanout: 256n, hashType: 0x22n, data: new Uint8Array([1]) })
  const bytes = dagPb.encode(dagPb.prepare({ Data: unixfs.marshal(), Links: entries.map(([Name, Hash]) => ({ Name, Hash, Tsize: 1 })) }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

function carBytes (roots: CID[], blocks: Block[]): Buffer {
  const parts: Uint8Array[] = [encodeHeader(roots)]
  for (const b of blocks) parts.push(encodeFramePrefix(b.cid, b.bytes.byteLength), b.bytes)
  return Buffer.concat(parts)
}

async function drain<T> (source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of source) out.push(x)
  return out
}

const tree: Tree = {
  'a.txt': 'hello',
  big: deterministicBytes(20_000, 'big'),
  empty: {},
  'e.txt': '',
  日本: { 'ü.bin': deterministicBytes(3000, 'u'), link: { symlink: '../a.txt' } },
  '.hidden': 'not packed'
}

for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as Profile[]) {
  test(`${profile}: unpack restores a packed tree; ls lists it`, async t => {
    const dir = await tempDir()
    try {
      const input = join(dir.path, 'input')
      await writeTree(input, tree)
      const plan = await planImport([input], { profile, chunkSize: 1000, maxLinks: 3 })
      const carPath = join(dir.path, 'x.car')
      await writeFile(carPath, await collect(carStream(plan)))
      const out = join(dir.path, 'out')
      const result = await unpack(carPath, out)
      t.is(result.root.toString(), plan.root.toString())
      t.is(result.files, 4)
      await sameTree(t, input, out, { skipHidden: true })
      const entries = await drain(lsCarFile(carPath))
      const root = plan.root.toString()
      t.deepEqual(entries.map(e => [e.path, e.type, e.size]), [
        [root, 'directory', 0],
        [`${root}/a.txt`, 'file', 5],
        [`${root}/big`, 'file', 20_000],
        [`${root}/e.txt`, 'file', 0],
        [`${root}/empty`, 'directory', 0],
        [`${root}/日本`, 'directory', 0],
        [`${root}/日本/link`, 'symlink', 8],
        [`${root}/日本/ü.bin`, 'file', 3000]
      ])
    } finally {
      await dir.cleanup()
    }
  })
}

test('unpack of a HAMT-sharded directory and of a single file', async t => {
  const dir = await tempDir()
  try {
    const input = join(dir.path, 'input')
    const files: Record<string, Tree> = {}
    for (let i = 0; i < 4500; i++) files[`file-with-a-long-name-${i.toString().padStart(5, '0')}`] = String(i)
    await writeTree(input, files)
    const carPath = join(dir.path, 'x.car')
    await writeFile(carPath, await collect(carStream(await planImport([input]))))
    await unpack(carPath, join(dir.path, 'out'))
    await sameTree(t, input, join(dir.path, 'out'), { skipHidden: true })
    const single = join(dir.path, 'single.car')
    await writeFile(single, await collect(carStream(await planImport([join(input, 'file-with-a-long-name-00042')]))))
    await unpack(single, join(dir.path, 'one'))
    t.is(await readFile(join(dir.path, 'one'), 'utf8'), '42')
  } finally {
    await dir.cleanup()
  }
})

test('unsafe names are refused before anything is written', async t => {
  const dir = await tempDir()
  try {
    const leaf = await rawBlock('pwned')
    for (const name of ['..', '.', '', 'a/b', '/etc/passwd', 'nul\0byte']) {
      const root = await dirBlock([['ok', leaf.cid], [name, leaf.cid]])
      const carPath = join(dir.path, 'bad.car')
      await writeFile(carPath, carBytes([root.cid], [root, leaf]))
      const target = join(dir.path, 'target', 'out')
      t.is(await codeOf(unpack(carPath, target)), 'ERR_UNSAFE_PATH', JSON.stringify(name))
      t.deepEqual(await readdir(dir.path), ['bad.car'], 'nothing written, not even the parent')
    }
    // inside a HAMT shard too
    const shard = await dirBlock([['00..', leaf.cid]], 'hamt-sharded-directory')
    await writeFile(join(dir.path, 'bad.car'), carBytes([shard.cid], [shard, leaf]))
    t.is(await codeOf(unpack(join(dir.path, 'bad.car'), join(dir.path, 'out'))), 'ERR_UNSAFE_PATH')
    // a duplicate name
    const dup = await dirBlock([['a', leaf.cid], ['a', leaf.cid]])
    await writeFile(join(dir.path, 'bad.car'), carBytes([dup.cid], [dup, leaf]))
    t.is(await codeOf(unpack(join(dir.path, 'bad.car'), join(dir.path, 'out'))), 'ERR_UNSAFE_PATH')
    t.deepEqual(await readdir(dir.path), ['bad.car'])
  } finally {
    await dir.cleanup()
  }
})

test('an existing target is refused without force and replaced with it', async t => {
  const dir = await tempDir()
  try {
    const leaf = await rawBlock('new')
    const root = await dirBlock([['f', leaf.cid]])
    const carPath = join(dir.path, 'x.car')
    await writeFile(carPath, carBytes([root.cid], [root, leaf]))
    const out = join(dir.path, 'out')
    await mkdir(out)
    await writeFile(join(out, 'old'), 'old')
    t.is(await codeOf(unpack(carPath, out)), 'ERR_TARGET_EXISTS')
    t.is(await readFile(join(out, 'old'), 'utf8'), 'old')
    await unpack(carPath, out, { force: true })
    t.deepEqual(await readdir(out), ['f'])
    t.deepEqual((await readdir(dir.path)).sort(), ['out', 'x.car'], 'no temporary left')
  } finally {
    await dir.cleanup()
  }
})

test('corrupt, truncated, rootless and incomplete CARs: each its code, nothing written', async t => {
  const dir = await tempDir()
  try {
    const a = await rawBlock('aaaa')
    const b = await rawBlock('bbbb')
    const root = await dirBlock([['a', a.cid], ['b', b.cid]])
    const good = carBytes([root.cid], [root, a, b])
    const corrupt = Buffer.from(good)
    corrupt[corrupt.byteLength - 1] ^= 1
    const cases: Array<[string, Uint8Array, string]> = [
      ['corrupt block', corrupt, 'ERR_BLOCK_MISMATCH'],
      ['truncated', good.subarray(0, good.byteLength - 3), 'ERR_CAR_TRUNCATED'],
      ['no roots', carBytes([], [root, a, b]), 'ERR_CAR_NO_ROOTS'],
      ['root missing', carBytes([root.cid], [a, b]), 'ERR_CAR_ROOT_MISSING'],
      ['block missing', carBytes([root.cid], [root, a]), 'ERR_CAR_BLOCK_MISSING']
    ]
    for (const [name, bytes, code] of cases) {
      const carPath = join(dir.path, 'x.car')
      await writeFile(carPath, bytes)
      t.is(await codeOf(unpack(carPath, join(dir.path, 'out'))), code, name)
      t.is(await codeOf(drain(lsCarFile(carPath))), code, name)
      t.deepEqual(await readdir(dir.path), ['x.car'], name)
    }
  } finally {
    await dir.cleanup()
  }
})

test('cairn pack, ls, unpack end to end with exit statuses', async t => {
  const dir = await tempDir()
  try {
    const input = join(dir.path, 'input')
    await writeTree(input, { 'a.txt': 'hello', sub: { 'b.txt': 'b' } })
    const carPath = join(dir.path, 'x.car')
    let r = await cairn(['pack', input, '-o', carPath, '--json'])
    t.is(r.code, 0, r.stderr)
    const { root } = JSON.parse(r.stdout) as { root: string }
    r = await cairn(['ls', carPath, '--json'])
    t.is(r.code, 0, r.stderr)
    const lines = r.stdout.trim().split('\n').map(l => JSON.parse(l) as { cid: string, size: number, path: string, type: string })
    t.deepEqual(lines.map(l => l.path), [root, `${root}/a.txt`, `${root}/sub`, `${root}/sub/b.txt`])
    t.deepEqual(Object.keys(lines[1]).sort(), ['cid', 'path', 'size', 'type'])
    r = await cairn(['unpack', carPath, '-o', join(dir.path, 'out')])
    t.is(r.code, 0, r.stderr)
    t.is(await readFile(join(dir.path, 'out', 'sub', 'b.txt'), 'utf8'), 'b')
    r = await cairn(['unpack', carPath, '-o', join(dir.path, 'out')])
    t.is(r.code, 2)
    t.regex(r.stderr, /ERR_TARGET_EXISTS/)
    r = await cairn(['unpack', carPath, '-o', join(dir.path, 'out'), '--force'])
    t.is(r.code, 0, r.stderr)
    // corrupt the last byte (a leaf): verification failure, exit 3
    const bytes = await readFile(carPath)
    bytes[bytes.byteLength - 1] ^= 0xff
    await writeFile(carPath, bytes)
    r = await cairn(['unpack', carPath, '-o', join(dir.path, 'out2')])
    t.is(r.code, 3)
    t.regex(r.stderr, /ERR_BLOCK_MISMATCH/)
    r = await cairn(['ls', carPath])
    t.is(r.code, 3)
    r = await cairn(['ls', 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354', '--repo', join(dir.path, 'no-repo')])
    t.is(r.code, 4)
    // pack to stdout gives the same bytes as to a file
    r = await cairn(['pack', input, '-o', '-'])
    t.is(r.code, 0)
    t.regex(r.stderr, new RegExp(root))
  } finally {
    await dir.cleanup()
  }
})
