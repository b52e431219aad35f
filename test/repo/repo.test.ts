import test from 'ava'
import { stat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn, tempDir } from '../helpers/cli.js'
import { Repo } from '../../src/repo/repo.js'
import { didFromPublicKey, publicKeyFromDid, identityFromSecret, generateSecretKey, verifySignature } from '../../src/repo/identity.js'
import { rejectsCode, throwsCode } from '../helpers/errors.js'

test('init creates an identity with a 0600 key, config.json and the db; id prints it', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const repo = join(dir.path, 'repo')
  const init = await cairn(['--repo', repo, '--json', 'init'])
  t.is(init.code, 0, init.stderr)
  const { did } = JSON.parse(init.stdout)
  t.regex(did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/)
  t.is((await stat(join(repo, 'identity.key'))).mode & 0o777, 0o600)
  t.is(JSON.parse(await readFile(join(repo, 'config.json'), 'utf8')).did, did)
  t.true((await stat(join(repo, 'db'))).isDirectory())
  const id = await cairn(['id', '--json'], { env: { CAIRN_REPO: repo } })
  t.is(id.code, 0, id.stderr)
  t.is(JSON.parse(id.stdout).did, did)
})

test('init refuses to overwrite an existing repo', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  t.is((await cairn(['--repo', dir.path, 'init'])).code, 0)
  const again = await cairn(['--repo', dir.path, 'init'])
  t.is(again.code, 2)
  t.regex(again.stderr, /^error ERR_REPO_EXISTS: /m)
})

test('a missing repo is ERR_REPO_NOT_FOUND, exit 4', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const r = await cairn(['--repo', join(dir.path, 'none'), 'id'])
  t.is(r.code, 4)
  t.regex(r.stderr, /ERR_REPO_NOT_FOUND/)
})

test('unknown flags are usage errors, exit 2, with a code', async t => {
  const r = await cairn(['--no-such-flag'])
  t.is(r.code, 2)
  t.regex(r.stderr, /ERR_USAGE/)
  t.is((await cairn(['--help'])).code, 0)
})

test('a second process cannot open a repo whose db is held', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  await Repo.init(dir.path)
  const holder = await Repo.open(dir.path)
  await holder.db()
  t.teardown(async () => { await holder.close() })
  const other = await Repo.open(dir.path)
  await rejectsCode(t, other.db(), 'ERR_REPO_LOCKED')
})

test('did:key round-trips an Ed25519 key and signatures verify only for it', t => {
  const a = identityFromSecret(generateSecretKey())
  const b = identityFromSecret(generateSecretKey())
  t.deepEqual(publicKeyFromDid(didFromPublicKey(a.publicKey)), a.publicKey)
  const msg = new TextEncoder().encode('cairn')
  const sig = a.sign(msg)
  t.true(verifySignature(a.did, msg, sig))
  t.false(verifySignature(b.did, msg, sig))
  throwsCode(t, () => publicKeyFromDid('did:key:zQ3sh'), 'ERR_INVALID_ARGUMENT')
})

test('identity signatures (node:crypto) equal noble ed25519 byte for byte', async t => {
  const { ed25519 } = await import('@noble/curves/ed25519.js')
  for (let i = 0; i < 8; i++) {
    const secret = generateSecretKey()
    const message = new Uint8Array(i * 37).fill(i)
    t.deepEqual(identityFromSecret(secret).sign(message), ed25519.sign(message, secret))
  }
})
