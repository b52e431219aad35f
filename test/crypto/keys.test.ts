/** age keys: recipients and identity files as the age tools write them, and the repo's own identity. */
import test from 'ava'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { identityToRecipient } from 'age-encryption'
import { AGE_KEY_FILE, parseIdentities, parseRecipient, readIdentityFile, readRecipientsFile, repoAgeIdentity } from '../../src/crypto/keys.js'
import { Repo } from '../../src/repo/repo.js'
import { tempDir } from '../unixfs/helpers.js'
import { age, newIdentity, run } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

test('init makes an age identity beside the Ed25519 one, mode 0600, in age-keygen\'s format', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = await Repo.init(join(tmp.path, 'r'))
  const file = join(repo.path, AGE_KEY_FILE)
  t.is((await stat(file)).mode & 0o777, 0o600)
  const mine = await repoAgeIdentity(repo.path)
  t.is(await identityToRecipient(mine.identity), mine.recipient)
  t.is(await readFile(file, 'utf8'), mine.file)
  t.regex(mine.file, new RegExp(`^# public key: ${mine.recipient}$`, 'm'))
  // the age command reads the file as it is and encrypts to what it names
  const sealed = await age(['-r', mine.recipient], Buffer.from('for me'))
  t.is((await age(['-d', '-i', file], sealed)).toString(), 'for me')
})

test('a repo made before encryption gets its identity on first use, and racing first uses agree on one', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = await Repo.init(join(tmp.path, 'r'))
  await rm(join(repo.path, AGE_KEY_FILE))
  const made = await Promise.all(Array.from({ length: 8 }, async () => await repoAgeIdentity(repo.path)))
  t.is(new Set(made.map(m => m.identity)).size, 1)
  t.is((await repoAgeIdentity(repo.path)).identity, made[0].identity)
})

test('a damaged repo identity is ERR_REPO_CORRUPT, never replaced', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = await Repo.init(join(tmp.path, 'r'))
  await writeFile(join(repo.path, AGE_KEY_FILE), 'AGE-SECRET-KEY-1NOTAKEY\n')
  await rejectsCode(t, repoAgeIdentity(repo.path), 'ERR_REPO_CORRUPT')
  t.is(await readFile(join(repo.path, AGE_KEY_FILE), 'utf8'), 'AGE-SECRET-KEY-1NOTAKEY\n')
})

test('recipients: age1… from age-keygen pass; others are ERR_INVALID_RECIPIENT naming the file and line', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const keygen = (await run('age-keygen', [])).stdout
  const recipient = /public key: (age1\S+)/.exec(keygen)?.[1] as string
  t.is(await parseRecipient(` ${recipient}\n`) as string, recipient)
  for (const bad of ['', 'age1', 'age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq', recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q'), 'ssh-ed25519 AAAA', recipient.toUpperCase().replace('AGE1', 'age1')]) {
    await rejectsCode(t, parseRecipient(bad), 'ERR_INVALID_RECIPIENT', bad)
  }
  const other = await newIdentity()
  const file = join(tmp.path, 'recipients.txt')
  await writeFile(file, `# team\n${recipient}\n\n  ${other.recipient}  \n`)
  t.deepEqual([...await readRecipientsFile(file)] as string[], [recipient, other.recipient])
  await writeFile(file, `${recipient}\nnot-a-key\n`)
  await t.throwsAsync(readRecipientsFile(file), { code: 'ERR_INVALID_RECIPIENT', message: /line 2/ })
  await writeFile(file, '# nobody\n')
  await rejectsCode(t, readRecipientsFile(file), 'ERR_INVALID_RECIPIENT')
  await rejectsCode(t, readRecipientsFile(join(tmp.path, 'missing')), 'ERR_PATH_NOT_FOUND')
})

test('identity files: age-keygen\'s output parses; anything else is ERR_INVALID_IDENTITY', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const file = join(tmp.path, 'key.txt')
  await run('age-keygen', ['-o', file])
  const [identity] = await readIdentityFile(file)
  t.regex(identity, /^AGE-SECRET-KEY-1[0-9A-Z]+$/)
  await rejectsCode(t, parseIdentities('# only comments\n', 'x'), 'ERR_INVALID_IDENTITY')
  await rejectsCode(t, parseIdentities('AGE-SECRET-KEY-1QQQQ\n', 'x'), 'ERR_INVALID_IDENTITY')
  await t.throwsAsync(parseIdentities('-----BEGIN OPENSSH PRIVATE KEY-----\n', 'x'), { code: 'ERR_INVALID_IDENTITY', message: /line 1/ })
})
