/**
 * Real names inside an encrypted tree (docs/encryption.md): `ls` lists it by
 * the names and plaintext sizes of its decrypted manifests, and
 * `get <root>/<path>` takes a path of real names, looked up in them. The
 * expected listing is that of the same input imported as plaintext.
 */
import test from 'ava'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { CairnError } from '../../src/errors.js'
import { get, parseTarget, type Source } from '../../src/client/retrieve.js'
import { encryptTree } from '../../src/crypto/encrypt.js'
import { decrypterFor } from '../../src/crypto/keys.js'
import { lsCar } from '../../src/crypto/unpack.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import type { Entry } from '../../src/unixfs/interface.js'
import { collect, sameTree, tempDir, writeTree, type Tree } from '../unixfs/helpers.js'
import { newIdentity } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

const sample: Tree = {
  'a.txt': 'hello\n',
  'big.bin': randomBytes(2_500_000),
  'secret folder': { 'deeper secret.txt': 'x', nested: { 'ünïcode ☕': 'yes' } },
  'link-to-a': { symlink: 'a.txt' }
}
/** the entries of the root as stored: ordinals in the order of the sorted names (docs/encryption.md, "Directories") */
const rootEntries = ['a.txt', 'big.bin', 'secret folder']

async function setup (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ dir: string, input: string, car: string, root: string, me: Awaited<ReturnType<typeof newIdentity>> }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const input = join(tmp.path, 'in')
  await writeTree(input, sample)
  const me = await newIdentity()
  const plan = await encryptTree([input], [me.recipient])
  const car = join(tmp.path, 'tree.car')
  await writeFile(car, await collect(carStream(plan)))
  return { dir: tmp.path, input, car, root: plan.root.toString(), me }
}

async function listing (entries: AsyncIterable<Entry>): Promise<Array<{ path: string, type: string, size: number }>> {
  const out = []
  for await (const e of entries) out.push({ path: e.path.slice(e.path.indexOf('/') + 1 || e.path.length), type: e.type, size: e.size })
  return out.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
}

test('ls of an encrypted tree gives the real names and plaintext sizes of the plaintext import; as stored with decrypt false', async t => {
  const { dir, input, car, me } = await setup(t)
  const plainCar = join(dir, 'plain.car')
  await writeFile(plainCar, await collect(carStream(await planImport([input]))))
  const expected = await listing(lsCar(plainCar))
  t.true(expected.some(e => e.path === 'secret folder/nested/ünïcode ☕' && e.size === 3))
  t.deepEqual(await listing(lsCar(car, { decrypter: await decrypterFor([me.identity]) })), expected)

  const stored = await listing(lsCar(car, { decrypt: false }))
  t.deepEqual(stored.filter(e => !e.path.includes('/') && e.path !== '').map(e => e.path), ['0', '1', '2', 'names.age'])
})

test('ls of an encrypted tree no identity here opens: listed as stored, and told why', async t => {
  const { car } = await setup(t)
  const stranger = await newIdentity()
  const told: CairnError[] = []
  const entries = await listing(lsCar(car, { decrypter: await decrypterFor([stranger.identity]), onStored: err => told.push(err) }))
  t.is(told.length, 1)
  t.is(told[0].code, 'ERR_NOT_A_RECIPIENT')
  t.true(entries.some(e => e.path === 'names.age'))
  t.false(entries.some(e => e.path.includes('secret')))
  // no identity at all
  const none: CairnError[] = []
  await listing(lsCar(car, { onStored: err => none.push(err) }))
  t.deepEqual(none.map(e => e.code), ['ERR_NOT_A_RECIPIENT'])
})

test('get <root>/<path> from a CAR takes real names; a missing name or a symlink is ERR_PATH_NOT_FOUND; decrypt false takes the stored names', async t => {
  const { dir, input, car, root, me } = await setup(t)
  const spool = { tmpDir: dir }
  const local: Source[] = [{ kind: 'local', location: car, reason: 'repo' }]
  const decrypter = await decrypterFor([me.identity])

  const file = await get(spool, parseTarget(`${root}/secret folder/nested/ünïcode ☕`), local, { output: join(dir, 'one'), decrypter })
  t.true(file.unpacked?.decrypted)
  t.is(file.path, 'secret folder/nested/ünïcode ☕')
  t.is(await readFile(join(dir, 'one'), 'utf8'), 'yes')

  const folder = await get(spool, parseTarget(`${root}/secret%20folder`), local, { output: join(dir, 'folder'), decrypter })
  t.true(folder.unpacked?.decrypted)
  await sameTree(t, join(input, 'secret folder'), join(dir, 'folder'))

  await rejectsCode(t, get(spool, parseTarget(`${root}/secret folder/missing`), local, { output: join(dir, 'x'), decrypter }), 'ERR_PATH_NOT_FOUND')
  await t.throwsAsync(get(spool, parseTarget(`${root}/link-to-a`), local, { output: join(dir, 'x'), decrypter }), { code: 'ERR_PATH_NOT_FOUND', message: /symbolic link/ })
  // an ordinal is not a real name
  await rejectsCode(t, get(spool, parseTarget(`${root}/0`), local, { output: join(dir, 'x'), decrypter }), 'ERR_PATH_NOT_FOUND')
  const stranger = await newIdentity()
  await rejectsCode(t, get(spool, parseTarget(`${root}/a.txt`), local, { output: join(dir, 'x'), decrypter: await decrypterFor([stranger.identity]) }), 'ERR_NOT_A_RECIPIENT')
  await rejectsCode(t, get(spool, parseTarget(`${root}/a.txt`), local, { output: join(dir, 'x') }), 'ERR_NOT_A_RECIPIENT')

  const ordinal = String(rootEntries.indexOf('secret folder'))
  const asStored = await get(spool, parseTarget(`${root}/${ordinal}`), local, { output: join(dir, 'stored'), decrypt: false })
  t.false(asStored.unpacked?.decrypted)
  t.deepEqual((await readdir(join(dir, 'stored'))).sort(), ['0', '1', 'names.age'])
  t.false((await readdir(dir)).includes('x'))
})
