/**
 * `-` means stdout for every command that writes a file: `pack -o -`,
 * `get -o -` (one file's bytes) and `get --car -` (the verified CAR), with the
 * result on stderr so stdout carries only the data.
 */
import test from 'ava'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { cairn, tempDir } from '../helpers/cli.js'

test('get -o - and get --car - write to stdout, not to a file named -', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = join(tmp.path, 'repo')
  t.is((await cairn(['--repo', repo, 'init'])).code, 0)
  const file = join(tmp.path, 'photo.bin')
  const bytes = randomBytes(2_500_000)
  await writeFile(file, bytes)
  const added = await cairn(['--repo', repo, '--json', 'add', file])
  t.is(added.code, 0, added.stderr)
  const root = (JSON.parse(added.stdout) as { root: string }).root

  const cwd = join(tmp.path, 'cwd')
  await mkdir(cwd)
  const got = await cairn(['--repo', repo, 'get', root, '-o', '-'], { cwd })
  t.is(got.code, 0, got.stderr)
  t.true(got.stdoutBytes.equals(bytes))
  t.deepEqual(await readdir(cwd), [], 'no file named - (or anything else) is written')

  const car = await cairn(['--repo', repo, '--json', 'get', root, '--car', '-'], { cwd })
  t.is(car.code, 0, car.stderr)
  const packed = await cairn(['pack', file, '-o', '-'])
  t.is(packed.code, 0)
  t.true(car.stdoutBytes.equals(packed.stdoutBytes), 'the verified CAR is the piece pack writes')
  t.like(JSON.parse(car.stderr.trim().split('\n').at(-1) as string), { root, output: '-', car: true })
  t.deepEqual(await readdir(cwd), [])
  t.deepEqual(await readdir(join(repo, 'tmp')), [], 'the spool is removed')

  // a directory has no bytes to print
  const dir = join(tmp.path, 'dir')
  await mkdir(dir)
  await writeFile(join(dir, 'a.txt'), 'a')
  const addedDir = await cairn(['--repo', repo, '--json', 'add', dir])
  const dirRoot = (JSON.parse(addedDir.stdout) as { root: string }).root
  const refused = await cairn(['--repo', repo, 'get', dirRoot, '-o', '-'], { cwd })
  t.is(refused.code, 2)
  t.regex(refused.stderr, /ERR_NOT_A_FILE/)
  t.is(refused.stdoutBytes.length, 0)
  t.deepEqual(await readdir(join(repo, 'tmp')), [])
  t.deepEqual(await readFile(file), bytes)
})
