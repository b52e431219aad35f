/**
 * `get` of encrypted trees from a real provider (its deal service and server,
 * in this process on 127.0.0.1:0): decrypted with the client's identity,
 * written as stored with `decrypt: false`, refused to anyone else.
 */
import test from 'ava'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { addToRepo, storePlan } from '../../src/client/content.js'
import { makeDeal } from '../../src/client/deal.js'
import { ProviderClient } from '../../src/client/provider-client.js'
import { get, parseTarget, sourcesFor } from '../../src/client/retrieve.js'
import { ageEncryption } from '../../src/crypto/encrypt.js'
import { decrypterFor, repoAgeIdentity } from '../../src/crypto/keys.js'
import { shareTree } from '../../src/crypto/share.js'
import { PieceStore } from '../../src/store/pieces.js'
import { findRoot } from '../../src/store/roots.js'
import { sampleTree, tamperingProxy, tree, world } from '../client/helpers.js'
import { newIdentity } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

test('get from a provider decrypts an encrypted directory and file; --no-decrypt writes them as stored; a stranger gets ERR_NOT_A_RECIPIENT until shared with', async (t) => {
  const w = await world()
  try {
    const mine = await repoAgeIdentity(w.client.repo.path)
    const encryption = ageEncryption([mine.recipient])
    const sample = await sampleTree(join(w.dir, 'sample'))
    const added = await addToRepo(w.client.repo, [sample], { encryption })
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const target = parseTarget(added.root)
    const remote = (await sourcesFor(w.client.repo, w.client.ledger, target.root, [])).filter(s => s.kind === 'provider')
    t.is(remote.length, 1)
    const decrypter = await decrypterFor([mine.identity])

    const result = await get(w.client.repo, target, remote, { output: join(w.dir, 'out'), decrypter })
    t.is(result.source.location, w.provider.url)
    t.true(result.unpacked?.decrypted)
    t.deepEqual(await tree(join(w.dir, 'out')), await tree(sample))

    const stored = await get(w.client.repo, target, remote, { output: join(w.dir, 'stored'), decrypt: false })
    t.false(stored.unpacked?.decrypted)
    t.deepEqual((await readdir(join(w.dir, 'stored'))).sort(), ['0', '1', '2', '3', 'names.age'])

    const stranger = await newIdentity()
    await rejectsCode(t, get(w.client.repo, target, remote, { output: join(w.dir, 'no'), decrypter: await decrypterFor([stranger.identity]) }), 'ERR_NOT_A_RECIPIENT')
    await rejectsCode(t, get(w.client.repo, target, remote, { output: join(w.dir, 'no') }), 'ERR_NOT_A_RECIPIENT')
    t.false((await readdir(w.dir)).some(n => n.startsWith('no') || n.startsWith('.no')))
    t.deepEqual(await readdir(w.client.repo.tmpDir), [])

    // shared with the stranger, the new root is dealt like any other and the stranger reads it from the provider
    const record = await findRoot(await w.client.repo.db(), added.root)
    const piece = new PieceStore(w.client.repo.piecesDir, w.client.repo.tmpDir).path(record?.piece as string)
    const shared = await storePlan(w.client.repo, await shareTree(piece, decrypter, [mine.recipient, stranger.recipient]))
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, shared.root, w.provider.url, { duration: 86400 * 3 })
    const theirs = await get(w.client.repo, parseTarget(shared.root), [{ kind: 'provider', location: w.provider.url, reason: 'named' }], { output: join(w.dir, 'theirs'), decrypter: await decrypterFor([stranger.identity]) })
    t.true(theirs.unpacked?.decrypted)
    t.deepEqual(await tree(join(w.dir, 'theirs')), await tree(sample))

    // one encrypted file
    const file = join(w.dir, 'one.bin')
    await writeFile(file, randomBytes(1_500_000))
    const one = await addToRepo(w.client.repo, [file], { encryption })
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, one.root, w.provider.url, { duration: 86400 * 3 })
    const fromProvider = (await sourcesFor(w.client.repo, w.client.ledger, parseTarget(one.root).root, [])).filter(s => s.kind === 'provider')
    const got = await get(w.client.repo, parseTarget(one.root), fromProvider, { output: join(w.dir, 'one.out'), decrypter })
    t.true(got.unpacked?.decrypted)
    t.deepEqual(await readFile(join(w.dir, 'one.out')), await readFile(file))
  } finally {
    await w.cleanup()
  }
})

test('get <root>/<path> from a provider takes real names, looked up in the encrypted names block by block; a wrong block is refused', async (t) => {
  const w = await world()
  try {
    const mine = await repoAgeIdentity(w.client.repo.path)
    const sample = await sampleTree(join(w.dir, 'sample'))
    const added = await addToRepo(w.client.repo, [sample], { encryption: ageEncryption([mine.recipient]) })
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const remote = (await sourcesFor(w.client.repo, w.client.ledger, parseTarget(added.root).root, [])).filter(s => s.kind === 'provider')
    t.is(remote.length, 1)
    const decrypter = await decrypterFor([mine.identity])

    const file = await get(w.client.repo, parseTarget(`${added.root}/docs/deep/naïve ☕.txt`), remote, { output: join(w.dir, 'one.txt'), decrypter })
    t.is(file.source.location, w.provider.url)
    t.true(file.unpacked?.decrypted)
    t.is(await readFile(join(w.dir, 'one.txt'), 'utf8'), 'unicode\n')
    const docs = await get(w.client.repo, parseTarget(`${added.root}/docs`), remote, { output: join(w.dir, 'docs'), decrypter })
    t.true(docs.unpacked?.decrypted)
    t.deepEqual(await tree(join(w.dir, 'docs')), await tree(join(sample, 'docs')))
    await rejectsCode(t, get(w.client.repo, parseTarget(`${added.root}/docs/nothing`), remote, { output: join(w.dir, 'no'), decrypter }), 'ERR_PATH_NOT_FOUND')

    // as stored, the path is in ordinals: the root's entries sorted by name
    const ordinal = String(['big.bin', 'docs', 'empty', 'hello.txt'].indexOf('docs'))
    const stored = await get(w.client.repo, parseTarget(`${added.root}/${ordinal}`), remote, { output: join(w.dir, 'stored'), decrypt: false })
    t.false(stored.unpacked?.decrypted)
    t.deepEqual((await readdir(join(w.dir, 'stored'))).sort(), ['0', 'names.age'])

    // a provider whose blocks do not match their CIDs
    const proxy = await tamperingProxy(w.provider.url, 'corrupt', 10)
    try {
      await rejectsCode(t, new ProviderClient(proxy.url).block(parseTarget(added.root).root), 'ERR_BLOCK_MISMATCH')
      await rejectsCode(t, get(w.client.repo, parseTarget(`${added.root}/docs`), [{ kind: 'provider', location: proxy.url, reason: 'named' }], { output: join(w.dir, 'no'), decrypter }), 'ERR_BLOCK_MISMATCH')
    } finally {
      await proxy.close()
    }
    t.false((await readdir(w.dir)).some(n => n.startsWith('no') || n.startsWith('.no')))
    t.deepEqual(await readdir(w.client.repo.tmpDir), [])
  } finally {
    await w.cleanup()
  }
})
