/**
 * Encryption as a user runs it, through the real binary and Debian's `age`:
 * what `add --encrypt` / `pack --encrypt` store, `age -d` opens with the
 * identity `cairn id --age-identity` exports; what `age -r` encrypted, laid
 * out by the reference importer, `cairn unpack` decrypts; and each bad input
 * gets its code.
 */
import test from 'ava'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CarWriter } from '@ipld/car/writer'
import { importer } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'
import { cairn, tempDir } from '../helpers/cli.js'
import { tree } from '../client/helpers.js'
import { age, ageChunker, run } from '../crypto/helpers.js'

async function setup (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ dir: string, repo: string, input: string }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = join(tmp.path, 'repo')
  const r = await cairn(['--repo', repo, 'init'])
  if (r.code !== 0) throw new Error(r.stderr)
  const input = join(tmp.path, 'in')
  await mkdir(join(input, 'private notes'), { recursive: true })
  await writeFile(join(input, 'private notes', 'diary.txt'), 'dear diary\n')
  await writeFile(join(input, 'photo.raw'), randomBytes(1_200_000))
  return { dir: tmp.path, repo, input }
}

test('add --encrypt, get: the tree comes back; the exported identity opens each stored file with age -d', async t => {
  const { dir, repo, input } = await setup(t)
  const id = await cairn(['--repo', repo, '--json', 'id'])
  t.is(id.code, 0, id.stderr)
  const recipient = (JSON.parse(id.stdout) as { ageRecipient: string }).ageRecipient
  t.regex(recipient, /^age1[0-9a-z]{58}$/)
  const exported = await cairn(['--repo', repo, 'id', '--age-identity'])
  t.is(exported.code, 0, exported.stderr)
  t.regex(exported.stdout, /^AGE-SECRET-KEY-1[0-9A-Z]+$/m)
  t.true(exported.stdout.includes(`# public key: ${recipient}`))
  const idFile = join(dir, 'me.key')
  await writeFile(idFile, exported.stdout)

  const added = await cairn(['--repo', repo, '--json', 'add', '--encrypt', input])
  t.is(added.code, 0, added.stderr)
  const result = JSON.parse(added.stdout) as { root: string, encrypted: boolean, files: number, bytes: number }
  t.true(result.encrypted)
  t.is(result.files, 2)
  t.is(result.bytes, 11 + 1_200_000)
  const got = await cairn(['--repo', repo, 'get', result.root, '-o', join(dir, 'out')])
  t.is(got.code, 0, got.stderr)
  t.deepEqual(await tree(join(dir, 'out')), await tree(input))

  const stored = await cairn(['--repo', repo, 'get', result.root, '-o', join(dir, 'stored'), '--no-decrypt'])
  t.is(stored.code, 0, stored.stderr)
  const names = JSON.parse((await age(['-d', '-i', idFile, join(dir, 'stored', 'names.age')])).toString()) as { entries: string[] }
  t.deepEqual(names.entries, ['photo.raw', 'private notes'])
  t.deepEqual(await age(['-d', '-i', idFile, join(dir, 'stored', '0')]), await readFile(join(input, 'photo.raw')))
  const inner = JSON.parse((await age(['-d', '-i', idFile, join(dir, 'stored', '1', 'names.age')])).toString()) as { entries: string[] }
  t.deepEqual(inner.entries, ['diary.txt'])
  t.is((await age(['-d', '-i', idFile, join(dir, 'stored', '1', '0')])).toString(), 'dear diary\n')
})

test('ls lists an encrypted tree by its real names when the node can open it, as stored otherwise; get takes a path of real names', async t => {
  const { dir, repo, input } = await setup(t)
  const root = (await cairn(['--repo', repo, 'add', '-Q', '--encrypt', input])).stdout.trim()
  const lines = async (args: string[], at = repo): Promise<{ entries: Array<{ path: string, size: number, type: string }>, stderr: string }> => {
    const r = await cairn(['--repo', at, '--json', 'ls', root, ...args])
    t.is(r.code, 0, r.stderr)
    return { entries: r.stdout.trim().split('\n').map(l => JSON.parse(l) as { path: string, size: number, type: string }), stderr: r.stderr }
  }
  const real = await lines([])
  t.deepEqual(real.entries.map(e => e.path.slice(root.length)).sort(), ['', '/photo.raw', '/private notes', '/private notes/diary.txt'])
  t.is(real.entries.find(e => e.path.endsWith('/photo.raw'))?.size, 1_200_000)
  const stored = await lines(['--no-decrypt'])
  t.true(stored.entries.some(e => e.path === `${root}/names.age`))
  t.false(stored.entries.some(e => e.path.includes('diary')))

  const piece = join(dir, 'tree.car')
  t.is((await cairn(['--repo', repo, 'get', root, '--car', piece])).code, 0)
  const stranger = join(dir, 'stranger')
  t.is((await cairn(['--repo', stranger, 'init'])).code, 0)
  const r = await cairn(['--repo', stranger, 'ls', piece])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /^warning: .*listed as stored/m)
  t.true(r.stdout.includes('names.age'))

  const got = await cairn(['--repo', repo, 'get', `${root}/private notes/diary.txt`, '-o', join(dir, 'diary.txt')])
  t.is(got.code, 0, got.stderr)
  t.is(await readFile(join(dir, 'diary.txt'), 'utf8'), 'dear diary\n')
  const missing = await cairn(['--repo', repo, 'get', `${root}/private notes/nothing`, '-o', join(dir, 'nothing')])
  t.is(missing.code, 4)
  t.regex(missing.stderr, /^error ERR_PATH_NOT_FOUND: /m)
})

test('pack --encrypt --recipient needs no repo; unpack decrypts with --identity, refuses without it (exit 3)', async t => {
  const { dir, input } = await setup(t)
  const keyFile = join(dir, 'friend.key')
  await run('age-keygen', ['-o', keyFile])
  const friend = /public key: (age1\S+)/.exec(await readFile(keyFile, 'utf8'))?.[1] as string
  const recipients = join(dir, 'recipients.txt')
  await writeFile(recipients, `# my friend\n${friend}\n`)
  const none = join(dir, 'no-repo')
  const car = join(dir, 'x.car')
  const packed = await cairn(['--repo', none, 'pack', input, '--recipients-file', recipients, '-o', car])
  t.is(packed.code, 0, packed.stderr)
  const refused = await cairn(['--repo', none, 'unpack', car, '-o', join(dir, 'out')])
  t.is(refused.code, 3)
  t.regex(refused.stderr, /^error ERR_NOT_A_RECIPIENT: /m)
  const opened = await cairn(['--repo', none, '--json', 'unpack', car, '-o', join(dir, 'out'), '--identity', keyFile])
  t.is(opened.code, 0, opened.stderr)
  t.true((JSON.parse(opened.stdout) as { decrypted: boolean }).decrypted)
  t.deepEqual(await tree(join(dir, 'out')), await tree(input))
  // the packing node is not a recipient: only the friend is
  const stranger = join(dir, 'stranger')
  t.is((await cairn(['--repo', stranger, 'init'])).code, 0)
  const wrong = await cairn(['--repo', stranger, 'unpack', car, '-o', join(dir, 'out2')])
  t.is(wrong.code, 3)
  t.regex(wrong.stderr, /ERR_NOT_A_RECIPIENT/)
  t.false((await readdir(dir)).includes('out2'))
})

test('cairn unpack decrypts what age -r encrypted, laid out by the reference importer with the header in its own leaf', async t => {
  const { dir, repo } = await setup(t)
  const recipient = (JSON.parse((await cairn(['--repo', repo, '--json', 'id'])).stdout) as { ageRecipient: string }).ageRecipient
  const plaintext = randomBytes(700_000)
  const sealed = await age(['-r', recipient], plaintext)
  const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  const blockstore = { put: async (cid: CID, bytes: Uint8Array) => { blocks.push({ cid, bytes }); return cid } }
  let root: CID | undefined
  for await (const entry of importer([{ path: 'f', content: sealed }], blockstore as never, { profile: 'unixfs-v1-2025', chunker: ageChunker(1048576) })) root = entry.cid as unknown as CID
  if (root === undefined) throw new Error('nothing imported')
  const { writer, out } = CarWriter.create([root as never])
  const written = (async () => { const parts: Uint8Array[] = []; for await (const p of out) parts.push(p); return Buffer.concat(parts) })()
  for (const block of blocks) await writer.put(block as never)
  await writer.close()
  await writeFile(join(dir, 'age.car'), await written)
  const unpacked = await cairn(['--repo', repo, 'unpack', join(dir, 'age.car'), '-o', join(dir, 'plain')])
  t.is(unpacked.code, 0, unpacked.stderr)
  t.deepEqual(await readFile(join(dir, 'plain')), plaintext)
})

test('bad recipients and identities: ERR_INVALID_RECIPIENT and ERR_INVALID_IDENTITY (exit 2), before anything is stored', async t => {
  const { dir, repo, input } = await setup(t)
  const bad = await cairn(['--repo', repo, 'add', '--recipient', 'age1notakey', input])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /^error ERR_INVALID_RECIPIENT: /m)
  await writeFile(join(dir, 'r.txt'), 'ssh-ed25519 AAAAC3Nza me@host\n')
  const file = await cairn(['--repo', repo, 'add', '--recipients-file', join(dir, 'r.txt'), input])
  t.is(file.code, 2)
  t.regex(file.stderr, /ERR_INVALID_RECIPIENT: .*line 1/)
  t.deepEqual(await readdir(join(repo, 'pieces')), [])
  await writeFile(join(dir, 'id.txt'), 'not a key\n')
  const badId = await cairn(['--repo', repo, 'unpack', join(dir, 'whatever.car'), '-o', join(dir, 'o'), '--identity', join(dir, 'id.txt')])
  t.is(badId.code, 2)
  t.regex(badId.stderr, /^error ERR_INVALID_IDENTITY: /m)
  const noRepo = await cairn(['--repo', join(dir, 'none'), 'pack', '--encrypt', input, '-o', join(dir, 'x.car')])
  t.is(noRepo.code, 2)
  t.regex(noRepo.stderr, /ERR_USAGE: --encrypt needs a recipient/)
})

test('share --to: a new root another node opens; the old root stays closed to it; bad uses get their codes', async t => {
  const { dir, repo, input } = await setup(t)
  const friendRepo = join(dir, 'friend')
  t.is((await cairn(['--repo', friendRepo, 'init'])).code, 0)
  const friend = (JSON.parse((await cairn(['--repo', friendRepo, '--json', 'id'])).stdout) as { ageRecipient: string }).ageRecipient
  const root = (await cairn(['--repo', repo, 'add', '-Q', '--encrypt', input])).stdout.trim()
  const shared = await cairn(['--repo', repo, '--json', 'share', root, '--to', friend])
  t.is(shared.code, 0, shared.stderr)
  const result = JSON.parse(shared.stdout) as { root: string, from: string, recipients: string[], headers: number, files: number, pieceCid: string }
  t.not(result.root, root)
  t.is(result.from, root)
  t.is(result.recipients.length, 2)
  t.true(result.recipients.includes(friend))
  t.is(result.files, 2)
  t.is(result.headers, 4)
  t.regex(result.pieceCid, /^bafkzcib/)
  for (const [r, name] of [[result.root, 'new.car'], [root, 'old.car']]) {
    const car = await cairn(['--repo', repo, 'get', r, '--car', join(dir, name)])
    t.is(car.code, 0, car.stderr)
  }
  const opened = await cairn(['--repo', friendRepo, 'unpack', join(dir, 'new.car'), '-o', join(dir, 'out')])
  t.is(opened.code, 0, opened.stderr)
  t.deepEqual(await tree(join(dir, 'out')), await tree(input))
  const closed = await cairn(['--repo', friendRepo, 'unpack', join(dir, 'old.car'), '-o', join(dir, 'out2')])
  t.is(closed.code, 3)
  t.regex(closed.stderr, /ERR_NOT_A_RECIPIENT/)
  // a CAR file as the source works too
  const fromFile = await cairn(['--repo', repo, 'share', '-q', join(dir, 'old.car'), '--to', friend])
  t.is(fromFile.code, 0, fromFile.stderr)
  t.regex(fromFile.stdout, /^bafy/)

  const nobody = await cairn(['--repo', repo, 'share', root])
  t.is(nobody.code, 2)
  t.regex(nobody.stderr, /ERR_USAGE/)
  const plain = (await cairn(['--repo', repo, 'add', '-Q', input])).stdout.trim()
  const notEncrypted = await cairn(['--repo', repo, 'share', plain, '--to', friend])
  t.is(notEncrypted.code, 2)
  t.regex(notEncrypted.stderr, /ERR_NOT_ENCRYPTED/)
  const missing = await cairn(['--repo', friendRepo, 'share', root, '--to', friend])
  t.is(missing.code, 4)
  t.regex(missing.stderr, /ERR_NOT_FOUND/)
  const notMine = await cairn(['--repo', friendRepo, 'share', join(dir, 'old.car'), '--to', friend])
  t.is(notMine.code, 3)
  t.regex(notMine.stderr, /ERR_NOT_A_RECIPIENT/)
})
