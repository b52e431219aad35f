/**
 * Temporary files of `pack -o`, `unpack` and `get -o`: removed when the
 * command is interrupted (SIGINT, SIGTERM), and the ones a killed run left
 * behind are removed by the next run onto the same target.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { BIN, cairn, tempDir } from '../helpers/cli.js'

async function bigFile (path: string, mib: number): Promise<void> {
  const out = createWriteStream(path)
  for (let i = 0; i < mib; i++) if (!out.write(randomBytes(1 << 20))) await once(out, 'drain')
  out.end()
  await once(out, 'finish')
}

const hidden = async (dir: string): Promise<string[]> => (await readdir(dir)).filter(n => n.startsWith('.') && n.includes('.tmp'))

/** Runs cairn, sends `signal` as soon as a temporary file shows in `watch`, and returns how it ended. */
async function interrupt (args: string[], watch: string, signal: NodeJS.Signals): Promise<{ signal: NodeJS.Signals | null, code: number | null, sawTemp: boolean }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CAIRN_REPO: '' } })
  const ended = new Promise<{ signal: NodeJS.Signals | null, code: number | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })))
  let done = false
  void ended.then(() => { done = true })
  let sawTemp = false
  for (let i = 0; i < 3000 && !done; i++) {
    if ((await hidden(watch)).length > 0) { sawTemp = true; child.kill(signal); break }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  if (!sawTemp) child.kill('SIGKILL')
  return { ...await ended, sawTemp }
}

test('an interrupted pack -o, unpack or get -o removes its temporary files', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const input = join(tmp.path, 'big.bin')
  await bigFile(input, 160)
  const out = join(tmp.path, 'out')
  await mkdir(out)

  const pack = await interrupt(['pack', input, '-o', join(out, 'big.car')], out, 'SIGINT')
  t.true(pack.sawTemp, 'pack wrote a temporary file beside its target')
  t.is(pack.signal, 'SIGINT')
  t.deepEqual(await readdir(out), [])

  const car = join(tmp.path, 'big.car')
  t.is((await cairn(['pack', input, '-o', car])).code, 0)
  const unpack = await interrupt(['unpack', car, '-o', join(out, 'restored')], out, 'SIGTERM')
  t.true(unpack.sawTemp)
  t.is(unpack.signal, 'SIGTERM')
  t.deepEqual(await readdir(out), [])

  const repo = join(tmp.path, 'repo')
  t.is((await cairn(['--repo', repo, 'init'])).code, 0)
  const added = await cairn(['--repo', repo, 'add', '-Q', input])
  t.is(added.code, 0, added.stderr)
  const get = await interrupt(['--repo', repo, 'get', added.stdout.trim(), '-o', join(out, 'got.bin')], out, 'SIGINT')
  t.true(get.sawTemp)
  t.is(get.signal, 'SIGINT')
  t.deepEqual(await readdir(out), [])
})

test('the next run removes temporary files a killed run left, and only those', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const input = join(tmp.path, 'in.txt')
  await writeFile(input, 'hello\n')
  const target = join(tmp.path, 'in.car')
  // pid 2^22+1 is above Linux's pid_max default: no such process; the test's own pid is alive
  const dead = `.in.car.${(1 << 22) + 1}.0123456789ab.tmp`
  const older = '.in.car.abcdef012345.tmp'
  const live = `.in.car.${process.pid}.0123456789ab.tmp`
  for (const name of [dead, older, live]) await writeFile(join(tmp.path, name), 'partial')
  const r = await cairn(['pack', input, '-o', target])
  t.is(r.code, 0, r.stderr)
  t.deepEqual((await hidden(tmp.path)).sort(), [live])

  const restoredDead = `.restored.${(1 << 22) + 1}.0123456789ab.tmp`
  await mkdir(join(tmp.path, restoredDead))
  const u = await cairn(['unpack', target, '-o', join(tmp.path, 'restored')])
  t.is(u.code, 0, u.stderr)
  t.deepEqual((await hidden(tmp.path)).sort(), [live])
})
