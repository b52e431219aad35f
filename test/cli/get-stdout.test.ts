/**
 * `cairn get --car -`: the verified CAR on stdout (as `pack -o -` writes one),
 * the summary on stderr, nothing left in the repo's tmp/ or the working
 * directory.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, cairn, tempDir } from '../helpers/cli.js'

async function run (args: string[], cwd: string): Promise<{ code: number, stdout: Buffer, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, CAIRN_REPO: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }) })
  })
}

test('get --car - writes the verified CAR to stdout and the summary to stderr', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const repo = join(dir.path, 'repo')
  t.is((await cairn(['--repo', repo, 'init'])).code, 0)
  const file = join(dir.path, 'data.bin')
  await writeFile(file, randomBytes(1_500_000))
  const added = JSON.parse((await cairn(['--repo', repo, '--json', 'add', file])).stdout) as { root: string, pieceCid: string }

  const got = await run(['--repo', repo, '--json', 'get', added.root, '--car', '-'], dir.path)
  t.is(got.code, 0, got.stderr)
  t.deepEqual(got.stdout, await readFile(join(repo, 'pieces', `${added.pieceCid}.car`)))
  t.like(JSON.parse(got.stderr) as object, { root: added.root, output: '-', car: true, source: { kind: 'local' } })
  t.deepEqual(await readdir(join(repo, 'tmp')), [])
  t.false((await readdir(dir.path)).includes('-'))

  const packed = await run(['pack', file, '-o', '-'], dir.path)
  t.deepEqual(got.stdout, packed.stdout)
})

test('get --car - of content nobody holds is ERR_NOT_FOUND with nothing on stdout', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const repo = join(dir.path, 'repo')
  t.is((await cairn(['--repo', repo, 'init'])).code, 0)
  const missing = await run(['--repo', repo, 'get', 'bafkreihmraviauz2uyj6uhvawd5azg5iazygj3ctodp2l6zdqxvwmbhlfm', '--car', '-'], dir.path)
  t.is(missing.code, 4)
  t.regex(missing.stderr, /^error ERR_NOT_FOUND: /)
  t.is(missing.stdout.length, 0)
  const both = await run(['--repo', repo, 'get', 'bafkreihmraviauz2uyj6uhvawd5azg5iazygj3ctodp2l6zdqxvwmbhlfm', '--car', '-', '-o', 'x'], dir.path)
  t.regex(both.stderr, /^error ERR_USAGE: /)
})
