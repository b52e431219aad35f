/**
 * The package as a user gets it: `npm pack`, then `npm install -g` of the
 * tarball into a temporary prefix with the machine's npm (from its cache where
 * it can, else the npm registry), and the installed `cairn` run from there.
 *
 * The tarball is packed with --ignore-scripts: `npm test` has just built dist/
 * and `npm ci` the addon, which is what prepack would build, and re-running tsc
 * here would rewrite dist/ under the other test files running beside this one.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pieceOf } from '../../proofs/index.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string, version: string, files: string[], scripts: Record<string, string> }

function run (cmd: string, args: string[], options: { cwd?: string, env?: Record<string, string | undefined>, timeoutMs?: number } = {}): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(cmd, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, encoding: 'utf8', timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 << 20 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}` }
}

const hasCompiler = run(process.env.CC ?? 'cc', ['--version']).status === 0

test('the packed tarball installs globally and runs --version, demo and piece, on the native engine', async (t) => {
  t.timeout(600_000)
  t.not(pkg.name, 'cairn', 'the npm name cairn belongs to another package')
  t.regex(pkg.scripts.prepack ?? '', /tsc -p \. && node proofs\/native\/build\.mjs/)
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pack-'))
  try {
    const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: root })
    t.is(packed.status, 0, packed.stderr)
    const listing = JSON.parse(packed.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
    const files = (listing[0]?.files ?? []).map(f => f.path)
    for (const needed of ['bin/cairn.js', 'dist/src/index.js', 'dist/src/cli/demo.js', 'dist/proofs/index.js', 'proofs/native/build.mjs', 'proofs/native/commp.c']) {
      t.true(files.includes(needed), `${needed} is in the tarball`)
    }
    t.false(files.some(f => f.startsWith('dist/test/') || f.startsWith('src/cli/')), 'tests and TypeScript sources stay out')
    const tarball = join(dir, listing[0]?.filename ?? '')

    const prefix = join(dir, 'prefix')
    const installed = run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: dir })
    t.is(installed.status, 0, installed.stderr)
    const bin = join(prefix, 'bin', 'cairn')
    const home = join(prefix, 'lib', 'node_modules', pkg.name)
    t.true(existsSync(bin))
    const env = { CAIRN_REPO: join(dir, 'repo'), CAIRN_CACHE_DIR: join(dir, 'cache'), CAIRN_COMMP_ENGINE: '' }

    const version = run(bin, ['--version'], { env })
    t.is(version.status, 0, version.stderr)
    t.is(version.stdout.trim(), pkg.version)

    const demo = run(bin, ['demo', '--json'], { env, timeoutMs: 180_000 })
    t.is(demo.status, 0, demo.stderr)
    const shown = JSON.parse(demo.stdout) as { ok: boolean, retrieved: { identical: boolean } }
    t.true(shown.ok)
    t.true(shown.retrieved.identical)

    const sample = join(dir, 'sample.bin')
    const bytes = new Uint8Array(3 << 20).map((_, i) => (i * 31 + 7) & 0xff)
    writeFileSync(sample, bytes)
    const expected = (await pieceOf(bytes)).cid.toString()
    const piece = run(bin, ['piece', sample, '--json'], { env })
    t.is(piece.status, 0, piece.stderr)
    t.is((JSON.parse(piece.stdout) as { pieceCid: string }).pieceCid, expected)
    t.notRegex(piece.stderr, /CAIRN_COMMP_PORTABLE/)

    const addon = join(home, 'proofs', 'native', 'build', 'Release', 'cairn_commp.node')
    if (!hasCompiler) {
      t.log('no C compiler: the native engine is not expected here')
      return
    }
    // the packed addon is native and loads
    const forced = run(bin, ['piece', sample, '--json'], { env: { ...env, CAIRN_COMMP_ENGINE: 'native' } })
    t.is(forced.status, 0, forced.stderr)
    t.true(existsSync(addon))

    // without one (as after installing on another platform), the first use builds it, once
    rmSync(addon)
    const first = run(bin, ['piece', sample, '--json'], { env })
    t.is(first.status, 0, first.stderr)
    t.regex(first.stderr, /building the native CommP addon/)
    t.notRegex(first.stderr, /CAIRN_COMMP_PORTABLE/)
    t.true(existsSync(addon))
    const second = run(bin, ['piece', sample, '--json'], { env: { ...env, CAIRN_COMMP_ENGINE: 'native' } })
    t.is(second.status, 0, second.stderr)
    t.notRegex(second.stderr, /building/)

    // no compiler: the portable engine, announced once, same piece CID
    rmSync(addon)
    const portable = run(bin, ['piece', sample, '--json'], { env: { ...env, CC: '/bin/false' } })
    t.is(portable.status, 0, portable.stderr)
    t.is(portable.stderr.split('\n').filter(l => l.includes('CAIRN_COMMP_PORTABLE')).length, 1, portable.stderr)
    t.is((JSON.parse(portable.stdout) as { pieceCid: string }).pieceCid, expected)
    t.deepEqual(readdirSync(join(home, 'proofs', 'native', 'build', 'Release')).filter(f => f.endsWith('.tmp')), [])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
