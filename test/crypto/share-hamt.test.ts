/**
 * `share` of an encrypted directory sharded as a HAMT: the shards are
 * re-linked, keeping their shape; `get <root>/<name>` and `ls` find real
 * names through the shards. A file of its own because it lowers the
 * profile's shard threshold for the whole process (thousands of entries,
 * each with an X25519 header, would take too long at the real 256 KiB).
 */
import test from 'ava'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { get, parseTarget } from '../../src/client/retrieve.js'
import { encryptTree } from '../../src/crypto/encrypt.js'
import { decrypterFor } from '../../src/crypto/keys.js'
import { shareTree } from '../../src/crypto/share.js'
import { lsCar, unpackCar } from '../../src/crypto/unpack.js'
import { carStream } from '../../src/unixfs/importer.js'
import { PROFILES, type ProfileParams } from '../../src/unixfs/profile.js'
import { collect, sameTree, tempDir } from '../unixfs/helpers.js'
import { newIdentity } from './helpers.js'

function rootType (car: Buffer): string {
  const reader = CarBufferReader.fromBytes(car)
  const root = (reader.getRoots())[0]
  return UnixFS.unmarshal(dagPb.decode((reader.get(root) as { bytes: Uint8Array }).bytes).Data as Uint8Array).type
}

const params = PROFILES['unixfs-v1-2025'] as ProfileParams
params.shardThreshold = 1000

/** 40 files and a sub-directory: more than the lowered threshold, so the root is sharded. */
async function setup (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ tmp: { path: string }, input: string }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const input = join(tmp.path, 'in')
  await mkdir(join(input, 'sub'), { recursive: true })
  for (let i = 0; i < 40; i++) await writeFile(join(input, `file-${i}.txt`), `content ${i}\n`)
  await writeFile(join(input, 'sub', 'x'), 'x')
  return { tmp, input }
}

test('share re-links a HAMT-sharded encrypted directory; it stays sharded and opens for the new recipient', async t => {
  const { tmp, input } = await setup(t)
  const me = await newIdentity()
  const friend = await newIdentity()
  const oldCar = join(tmp.path, 'old.car')
  const old = await collect(carStream(await encryptTree([input], [me.recipient])))
  t.is(rootType(old), 'hamt-sharded-directory')
  await writeFile(oldCar, old)
  const plan = await shareTree(oldCar, await decrypterFor([me.identity]), [friend.recipient])
  const shared = await collect(carStream(plan))
  t.is(rootType(shared), 'hamt-sharded-directory')
  await writeFile(join(tmp.path, 'new.car'), shared)
  const out = await unpackCar(join(tmp.path, 'new.car'), join(tmp.path, 'out'), { decrypter: await decrypterFor([friend.identity]) })
  t.is(out.files, 41)
  await sameTree(t, input, join(tmp.path, 'out'))
})

test('get <root>/<name> and ls find real names in a HAMT-sharded encrypted directory', async t => {
  const { tmp, input } = await setup(t)
  const me = await newIdentity()
  const plan = await encryptTree([input], [me.recipient])
  const bytes = await collect(carStream(plan))
  t.is(rootType(bytes), 'hamt-sharded-directory')
  const car = join(tmp.path, 'tree.car')
  await writeFile(car, bytes)
  const decrypter = await decrypterFor([me.identity])
  const local = [{ kind: 'local' as const, location: car, reason: 'repo' as const }]
  for (const name of ['file-0.txt', 'file-17.txt', 'file-39.txt']) {
    await get({ tmpDir: tmp.path }, parseTarget(`${plan.root.toString()}/${name}`), local, { output: join(tmp.path, name), decrypter })
    t.deepEqual(await readFile(join(tmp.path, name)), await readFile(join(input, name)), name)
  }
  await get({ tmpDir: tmp.path }, parseTarget(`${plan.root.toString()}/sub/x`), local, { output: join(tmp.path, 'x'), decrypter })
  t.is(await readFile(join(tmp.path, 'x'), 'utf8'), 'x')
  const paths: string[] = []
  for await (const entry of lsCar(car, { decrypter })) paths.push(entry.path.slice(plan.root.toString().length))
  t.deepEqual(paths.sort(), ['', '/sub', '/sub/x', ...Array.from({ length: 40 }, (_, i) => `/file-${i}.txt`)].sort())
})
