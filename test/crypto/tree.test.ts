/**
 * Encrypted imports (docs/encryption.md): round trips through the importer
 * and the decrypting unpacker, the layout against ipfs-unixfs-importer (the
 * reference importer, given a chunker that cuts an age file as cairn does),
 * Debian's `age` decrypting what was stored, and the refusals.
 */
import test from 'ava'
import { readFile, readdir, writeFile, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import * as raw from 'multiformats/codecs/raw'
import { encryptTree } from '../../src/crypto/encrypt.js'
import { isHeader } from '../../src/crypto/header.js'
import { decrypterFor } from '../../src/crypto/keys.js'
import { unpackCar } from '../../src/crypto/unpack.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import type { Profile } from '../../src/unixfs/profile.js'
import { collect, sameTree, tempDir, writeTree, type Tree } from '../unixfs/helpers.js'
import { age, newIdentity, oracleEncryptedRoot } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

const sample: Tree = {
  'a.txt': 'hello\n',
  'empty.txt': '',
  'exact.bin': randomBytes(64 * 1024),
  'big.bin': randomBytes(2_500_000),
  'secret-name-of-a-folder': { 'deeper-secret.txt': 'x', nested: {} },
  'link-to-a': { symlink: 'a.txt' }
}

async function setup (t: { teardown: (fn: () => Promise<void>) => void }, tree: Tree = sample): Promise<{ dir: string, input: string }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const input = join(tmp.path, 'in')
  await writeTree(input, tree)
  return { dir: tmp.path, input }
}

async function writeCar (path: string, source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const bytes = await collect(source)
  await writeFile(path, bytes)
  return bytes
}

for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as Profile[]) {
  test(`${profile}: an encrypted tree unpacks to the input; stored as is, the reference importer gives the same root`, async t => {
    const { dir, input } = await setup(t)
    const me = await newIdentity()
    const plan = await encryptTree([input], [me.recipient], { profile })
    t.is(plan.files, 5)
    t.is(plan.bytes, 6 + 64 * 1024 + 2_500_000 + 1)
    const car = join(dir, 'tree.car')
    const bytes = await writeCar(car, carStream(plan))
    t.is(bytes.length, plan.carSize)
    const out = await unpackCar(car, join(dir, 'out'), { decrypter: await decrypterFor([me.identity]) })
    t.true(out.decrypted)
    t.like(out, { files: 5, symlinks: 1, bytes: plan.bytes })
    await sameTree(t, input, join(dir, 'out'))
    // as stored: ordinal names, age files, a names.age per directory; the reference importer agrees on every CID
    const stored = await unpackCar(car, join(dir, 'stored'), { decrypt: false })
    t.false(stored.decrypted)
    t.deepEqual((await readdir(join(dir, 'stored'))).sort(), ['0', '1', '2', '3', '4', 'names.age'])
    t.is(await oracleEncryptedRoot(join(dir, 'stored'), profile), plan.root.toString())
  })
}

test('Debian\'s age decrypts each stored file and the names with the identity; nothing else does', async t => {
  const { dir, input } = await setup(t)
  const me = await newIdentity()
  const other = await newIdentity()
  const plan = await encryptTree([input], [me.recipient, other.recipient])
  const car = join(dir, 'tree.car')
  await writeCar(car, carStream(plan))
  await unpackCar(car, join(dir, 'stored'), { decrypt: false })
  const id = join(dir, 'me.key')
  await writeFile(id, me.identity + '\n')
  const otherId = join(dir, 'other.key')
  await writeFile(otherId, other.identity + '\n')
  const names = JSON.parse((await age(['-d', '-i', id, join(dir, 'stored', 'names.age')])).toString())
  t.deepEqual(names.entries, ['a.txt', 'big.bin', 'empty.txt', 'exact.bin', 'secret-name-of-a-folder'])
  t.deepEqual(names.symlinks, [{ name: 'link-to-a', target: 'a.txt' }])
  for (const [i, name] of names.entries.entries()) {
    if (name === 'secret-name-of-a-folder') continue
    // each recipient opens every file on its own
    for (const key of [id, otherId]) t.deepEqual(await age(['-d', '-i', key, join(dir, 'stored', String(i))]), await readFile(join(input, name)), name)
  }
  const stranger = await newIdentity()
  await writeFile(join(dir, 'stranger.key'), stranger.identity + '\n')
  await t.throwsAsync(age(['-d', '-i', join(dir, 'stranger.key'), join(dir, 'stored', '0')]), { message: /no identity matched/ })
})

test('an encrypted file is its header leaf, then payload leaves of the chunk size, all raw leaves', async t => {
  const { dir } = await setup(t, { f: randomBytes(3_000_000) })
  const me = await newIdentity()
  const plan = await encryptTree([join(dir, 'in', 'f')], [me.recipient])
  const reader = CarBufferReader.fromBytes(await collect(carStream(plan)))
  const root = dagPb.decode((reader.get(plan.root) as { bytes: Uint8Array }).bytes)
  t.is(root.Links.length, 4)
  const leaves = root.Links.map(l => reader.get(l.Hash) as { cid: { code: number }, bytes: Uint8Array })
  t.true(leaves.every(l => l.cid.code === raw.code))
  t.true(isHeader(leaves[0].bytes))
  t.deepEqual(leaves.slice(1).map(l => l.bytes.length), [1048576, 1048576, 16 + 3_000_000 + 16 * 46 - 2 * 1048576])
})

test('names and symlink targets do not appear in the CAR; contents neither', async t => {
  const { input } = await setup(t)
  const me = await newIdentity()
  const bytes = await collect(carStream(await encryptTree([input], [me.recipient])))
  for (const secret of ['secret-name-of-a-folder', 'deeper-secret', 'a.txt', 'link-to-a', 'big.bin', 'hello']) {
    t.is(bytes.indexOf(Buffer.from(secret)), -1, secret)
  }
  // while the plaintext CAR holds them
  const plain = await collect(carStream(await planImport([input])))
  t.not(plain.indexOf(Buffer.from('secret-name-of-a-folder')), -1)
})

test('each encryption of the same input is a DAG of its own: no block in common', async t => {
  const { input } = await setup(t)
  const me = await newIdentity()
  const blocks = async (): Promise<Set<string>> => {
    const reader = CarBufferReader.fromBytes(await collect(carStream(await encryptTree([input], [me.recipient]))))
    return new Set(reader.cids().map(String))
  }
  const a = await blocks()
  const b = await blocks()
  t.is([...a].filter(cid => b.has(cid)).length, 0)
})

test('wrapped inputs and several paths are an encrypted directory of their own', async t => {
  const { dir, input } = await setup(t, { one: 'first', two: { three: 'third' }, l: { symlink: 'one' } })
  const me = await newIdentity()
  const plan = await encryptTree([join(input, 'one'), join(input, 'two'), join(input, 'l')], [me.recipient])
  const car = join(dir, 'w.car')
  await writeCar(car, carStream(plan))
  await unpackCar(car, join(dir, 'out'), { decrypter: await decrypterFor([me.identity]) })
  await sameTree(t, input, join(dir, 'out'))
})

test('a file that changes between the passes is ERR_FILE_CHANGED, encrypted too', async t => {
  const { dir } = await setup(t, { f: randomBytes(2_000_000) })
  const me = await newIdentity()
  const file = join(dir, 'in', 'f')
  const plan = await encryptTree([file], [me.recipient])
  const bytes = await readFile(file)
  bytes[1_500_000] ^= 1
  await writeFile(file, bytes)
  await rejectsCode(t, collect(carStream(plan)), 'ERR_FILE_CHANGED')
  // the same size, inode and modification time, other bytes: only the re-sealed chunks' tags can tell,
  // whether sealed on the worker (1 MiB leaves) or inline (leaves of under two chunks)
  for (const options of [{}, { chunkSize: 100_000 }]) {
    await utimes(file, 1_000_000_000, 1_000_000_000)
    const again = await encryptTree([file], [me.recipient], options)
    bytes[10] ^= 1
    await writeFile(file, bytes)
    await utimes(file, 1_000_000_000, 1_000_000_000)
    await rejectsCode(t, collect(carStream(again)), 'ERR_FILE_CHANGED', JSON.stringify(options))
  }
})

test('a lone symlink cannot be encrypted without a directory to keep it in: ERR_INVALID_ARGUMENT', async t => {
  const { input } = await setup(t, { l: { symlink: 'nowhere' } })
  const me = await newIdentity()
  await rejectsCode(t, encryptTree([join(input, 'l')], [me.recipient]), 'ERR_INVALID_ARGUMENT')
})

test('unpacking with the wrong identity, or none, is ERR_NOT_A_RECIPIENT and leaves nothing', async t => {
  const { dir, input } = await setup(t)
  const me = await newIdentity()
  const stranger = await newIdentity()
  const car = join(dir, 'tree.car')
  await writeCar(car, carStream(await encryptTree([input], [me.recipient])))
  await rejectsCode(t, unpackCar(car, join(dir, 'out'), { decrypter: await decrypterFor([stranger.identity]) }), 'ERR_NOT_A_RECIPIENT')
  await rejectsCode(t, unpackCar(car, join(dir, 'out'), {}), 'ERR_NOT_A_RECIPIENT')
  t.deepEqual((await readdir(dir)).filter(n => n.includes('out')), [])
  // an encrypted single file too
  const one = join(dir, 'one.car')
  await writeCar(one, carStream(await encryptTree([join(input, 'big.bin')], [me.recipient])))
  await rejectsCode(t, unpackCar(one, join(dir, 'big'), { decrypter: await decrypterFor([stranger.identity]) }), 'ERR_NOT_A_RECIPIENT')
  const mine = await unpackCar(one, join(dir, 'big'), { decrypter: await decrypterFor([stranger.identity, me.identity]) })
  t.true(mine.decrypted)
  t.deepEqual(await readFile(join(dir, 'big')), await readFile(join(input, 'big.bin')))
})

test('a plaintext tree is unpacked as before, with or without identities', async t => {
  const { dir, input } = await setup(t)
  const me = await newIdentity()
  const car = join(dir, 'plain.car')
  await writeCar(car, carStream(await planImport([input])))
  const out = await unpackCar(car, join(dir, 'out'), { decrypter: await decrypterFor([me.identity]) })
  t.false(out.decrypted)
  await sameTree(t, input, join(dir, 'out'))
})

test('names in an encrypted directory are checked like any: a manifest naming ../x is ERR_UNSAFE_PATH', async t => {
  const { dir } = await setup(t, { a: 'x' })
  const me = await newIdentity()
  // an encrypted directory whose manifest says "../escape", built with the importer's own encryption
  const { ageEncryption } = await import('../../src/crypto/encrypt.js')
  const honest = ageEncryption([me.recipient])
  const evil = { ...honest, manifest: () => Buffer.from(JSON.stringify({ format: 'cairn/names/v1', entries: ['../escape'], symlinks: [] })) }
  const car = join(dir, 'evil.car')
  await writeCar(car, carStream(await planImport([join(dir, 'in')], { encryption: evil })))
  await rejectsCode(t, unpackCar(car, join(dir, 'out'), { decrypter: await decrypterFor([me.identity]) }), 'ERR_UNSAFE_PATH')
  const miscounted = { ...honest, manifest: () => Buffer.from(JSON.stringify({ format: 'cairn/names/v1', entries: [], symlinks: [] })) }
  await writeCar(car, carStream(await planImport([join(dir, 'in')], { encryption: miscounted })))
  await rejectsCode(t, unpackCar(car, join(dir, 'out'), { decrypter: await decrypterFor([me.identity]) }), 'ERR_DAG_INVALID')
})
