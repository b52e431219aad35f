/**
 * `share`: a new recipient set rewrites each age file's header leaf and the
 * nodes above it and no payload block; the new root opens for the new
 * recipients and still for the node, the old root still only for the old
 * ones; the tree keeps its shape.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { encryptTree } from '../../src/crypto/encrypt.js'
import { isHeader } from '../../src/crypto/header.js'
import { decrypterFor } from '../../src/crypto/keys.js'
import { shareTree } from '../../src/crypto/share.js'
import { unpackCar } from '../../src/crypto/unpack.js'
import { carStream, planImport, type ImportOptions } from '../../src/unixfs/importer.js'
import { collect, sameTree, tempDir, writeTree, type Tree } from '../unixfs/helpers.js'
import { newIdentity } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

/** Each block of a CAR, classed: an age header leaf, another leaf (payload), or a node with links or a directory. */
function classify (car: Buffer): Map<string, 'header' | 'payload' | 'node'> {
  const out = new Map<string, 'header' | 'payload' | 'node'>()
  const reader = CarBufferReader.fromBytes(car)
  for (const cid of reader.cids()) {
    const { bytes } = reader.get(cid) as { bytes: Uint8Array }
    let data: Uint8Array | undefined = bytes
    if ((cid as CID).code !== raw.code) {
      const node = dagPb.decode(bytes)
      const fs = UnixFS.unmarshal(node.Data as Uint8Array)
      data = node.Links.length === 0 && fs.type === 'file' ? fs.data ?? new Uint8Array() : undefined
    }
    out.set(cid.toString(), data === undefined ? 'node' : isHeader(data) ? 'header' : 'payload')
  }
  return out
}

const tree: Tree = {
  'notes.txt': 'meet at noon\n',
  'video.bin': randomBytes(2_700_000),
  'empty.txt': '',
  inner: { 'deep.bin': randomBytes(150_000), more: { x: 'y' } },
  link: { symlink: 'notes.txt' }
}

for (const [name, options] of [
  ['unixfs-v1-2025', { profile: 'unixfs-v1-2025' }],
  ['unixfs-v0-2015', { profile: 'unixfs-v0-2015' }],
  ['tiny chunks and 3 links per node (files several levels deep)', { chunkSize: 4096, maxLinks: 3 }]
] as Array<[string, ImportOptions]>) {
  test(`${name}: share changes no payload block and the headers and nodes above them only`, async t => {
    const tmp = await tempDir()
    t.teardown(tmp.cleanup)
    const input = join(tmp.path, 'in')
    await writeTree(input, tree)
    const me = await newIdentity()
    const friend = await newIdentity()
    const stranger = await newIdentity()
    const oldCar = join(tmp.path, 'old.car')
    const oldBytes = await collect(carStream(await encryptTree([input], [me.recipient], options)))
    await writeFile(oldCar, oldBytes)
    const plan = await shareTree(oldCar, await decrypterFor([me.identity]), [me.recipient, friend.recipient])
    t.is(plan.files, 5)
    // five files and three directories (in, inner, more), each with its names
    t.is(plan.headers, 5 + 3)
    const newBytes = await collect(carStream(plan))
    t.is(newBytes.length, plan.carSize)
    await writeFile(join(tmp.path, 'new.car'), newBytes)

    const before = classify(oldBytes)
    const after = classify(newBytes)
    const payload = (m: Map<string, string>): string[] => [...m].filter(([, kind]) => kind === 'payload').map(([cid]) => cid).sort()
    t.deepEqual(payload(after), payload(before))
    t.true(payload(before).length > 0)
    const added = [...after.keys()].filter(cid => !before.has(cid))
    const removed = [...before.keys()].filter(cid => !after.has(cid))
    t.true(added.every(cid => after.get(cid) !== 'payload'))
    t.is(added.filter(cid => after.get(cid) === 'header').length, 8)
    t.is(removed.filter(cid => before.get(cid) === 'header').length, 8)
    t.true(removed.every(cid => before.get(cid) !== 'payload'))
    t.is(after.size, before.size)

    // the friend, and the node itself, open the new root; the friend not the old one
    const out = await unpackCar(join(tmp.path, 'new.car'), join(tmp.path, 'friend'), { decrypter: await decrypterFor([friend.identity]) })
    t.true(out.decrypted)
    await sameTree(t, input, join(tmp.path, 'friend'))
    await unpackCar(join(tmp.path, 'new.car'), join(tmp.path, 'me'), { decrypter: await decrypterFor([me.identity]) })
    await sameTree(t, input, join(tmp.path, 'me'))
    await rejectsCode(t, unpackCar(oldCar, join(tmp.path, 'no'), { decrypter: await decrypterFor([friend.identity]) }), 'ERR_NOT_A_RECIPIENT')
    await rejectsCode(t, unpackCar(join(tmp.path, 'new.car'), join(tmp.path, 'no'), { decrypter: await decrypterFor([stranger.identity]) }), 'ERR_NOT_A_RECIPIENT')
  })
}

test('share of a single encrypted file; of a plaintext tree is ERR_NOT_ENCRYPTED; by a non-recipient ERR_NOT_A_RECIPIENT', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const file = join(tmp.path, 'f.bin')
  await writeFile(file, randomBytes(3_000_000))
  const me = await newIdentity()
  const friend = await newIdentity()
  const car = join(tmp.path, 'f.car')
  await writeFile(car, await collect(carStream(await encryptTree([file], [me.recipient]))))
  const plan = await shareTree(car, await decrypterFor([me.identity]), [friend.recipient])
  t.is(plan.files, 1)
  await writeFile(join(tmp.path, 'shared.car'), await collect(carStream(plan)))
  await unpackCar(join(tmp.path, 'shared.car'), join(tmp.path, 'out'), { decrypter: await decrypterFor([friend.identity]) })
  t.deepEqual(await readFile(join(tmp.path, 'out')), await readFile(file))
  await rejectsCode(t, shareTree(car, await decrypterFor([friend.identity]), [friend.recipient]), 'ERR_NOT_A_RECIPIENT')
  const plain = join(tmp.path, 'plain.car')
  await writeFile(plain, await collect(carStream(await planImport([file]))))
  await rejectsCode(t, shareTree(plain, await decrypterFor([me.identity]), [friend.recipient]), 'ERR_NOT_ENCRYPTED')
})
