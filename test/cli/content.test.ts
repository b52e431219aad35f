/**
 * The content commands as a user runs them: `add`, `piece` and `pack` agree
 * with each other and with the oracles, and bad input gets its code with
 * nothing left behind in the repo.
 */
import test from 'ava'
import { mkdir, readdir, writeFile, readFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Piece } from '@web3-storage/data-segment'
import { CarReader } from '@ipld/car'
import { cairn, tempDir } from '../helpers/cli.js'

async function blocksOf (car: string): Promise<{ roots: string[], blocks: string[] }> {
  const reader = await CarReader.fromBytes(await readFile(car))
  const blocks: string[] = []
  for await (const { cid, bytes } of reader.blocks()) blocks.push(`${cid.toString()}:${Buffer.from(bytes).toString('base64').length}`)
  return { roots: (await reader.getRoots()).map(String), blocks }
}

async function setup (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ dir: string, repo: string }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = join(tmp.path, 'repo')
  const r = await cairn(['--repo', repo, 'init'])
  if (r.code !== 0) throw new Error(r.stderr)
  return { dir: tmp.path, repo }
}

async function repoIsClean (repo: string): Promise<{ pieces: string[], tmp: string[] }> {
  return { pieces: await readdir(join(repo, 'pieces')), tmp: await readdir(join(repo, 'tmp')) }
}

test('add stores the piece that pack writes; piece of that CAR equals data-segment', async t => {
  const { dir, repo } = await setup(t)
  const input = join(dir, 'in')
  await mkdir(join(input, 'sub', 'empty'), { recursive: true })
  await writeFile(join(input, 'a.txt'), 'hello\n')
  await writeFile(join(input, 'sub', 'b.bin'), randomBytes(1_300_000))
  const added = await cairn(['--repo', repo, '--json', 'add', input])
  t.is(added.code, 0, added.stderr)
  const result = JSON.parse(added.stdout)
  t.regex(result.root, /^bafy/)
  t.regex(result.pieceCid, /^bafkzcib/)
  t.regex(result.pieceCidV1, /^baga6ea4sea/)
  t.is(result.files, 2)
  t.is(result.bytes, 1_300_006)

  const car = join(dir, 'out.car')
  const packed = await cairn(['pack', input, '-o', car])
  t.is(packed.code, 0, packed.stderr)
  const bytes = await readFile(car)
  t.is(result.payloadSize, bytes.length)
  t.deepEqual(await readFile(join(repo, 'pieces', `${result.pieceCid}.car`)), bytes)
  t.is(Piece.fromPayload(bytes).link.toString(), result.pieceCid)

  const piece = await cairn(['--json', 'piece', car])
  t.is(piece.code, 0, piece.stderr)
  t.like(JSON.parse(piece.stdout), { pieceCid: result.pieceCid, pieceCidV1: result.pieceCidV1, pieceSize: result.pieceSize, payloadSize: bytes.length })
})

test('pack reports the piece CID of the CAR it writes, computed on the way, as add and data-segment do', async t => {
  const { dir, repo } = await setup(t)
  const input = join(dir, 'in')
  await mkdir(join(input, 'sub'), { recursive: true })
  await writeFile(join(input, 'a.txt'), 'hello\n')
  // more than one CommP chunk (1,040,384 bytes) and a partial one
  await writeFile(join(input, 'sub', 'b.bin'), randomBytes(3_300_000))
  const added = JSON.parse((await cairn(['--repo', repo, '--json', 'add', input])).stdout)

  const car = join(dir, 'out.car')
  const packed = await cairn(['--json', 'pack', input, '-o', car])
  t.is(packed.code, 0, packed.stderr)
  const result = JSON.parse(packed.stdout)
  const bytes = await readFile(car)
  t.is(result.pieceCid, Piece.fromPayload(bytes).link.toString())
  t.like(result, { root: added.root, pieceCid: added.pieceCid, pieceCidV1: added.pieceCidV1, pieceSize: added.pieceSize, payloadSize: bytes.length, output: car })

  // human mode: the root on stdout, the piece on stderr
  const human = await cairn(['pack', input, '-o', join(dir, 'human.car')])
  t.is(human.code, 0, human.stderr)
  t.is(human.stdout, `${added.root}\n`)
  t.true(human.stderr.includes(`piece ${added.pieceCid}`), human.stderr)
  t.true(human.stderr.includes(`${added.pieceCidV1} (v1)`), human.stderr)

  // to stdout: the CAR there, the same figures on stderr
  const streamed = await cairn(['--json', 'pack', input, '-o', '-'])
  t.is(streamed.code, 0, streamed.stderr)
  t.like(JSON.parse(streamed.stderr), { root: added.root, output: '-', pieceCid: added.pieceCid, pieceCidV1: added.pieceCidV1, payloadSize: bytes.length })
  const streamedHuman = await cairn(['pack', input, '-o', '-'])
  t.is(streamedHuman.code, 0, streamedHuman.stderr)
  t.true(streamedHuman.stderr.startsWith(`${added.root}\npiece ${added.pieceCid}\n`), streamedHuman.stderr)
})

test('add -Q prints the root only; --only-hash stores nothing and needs no repo', async t => {
  const { dir, repo } = await setup(t)
  const file = join(dir, 'f')
  await writeFile(file, randomBytes(5000))
  const q = await cairn(['--repo', repo, 'add', '-Q', file])
  t.is(q.code, 0, q.stderr)
  t.regex(q.stdout, /^bafk[a-z2-7]+\n$/)
  const only = await cairn(['--repo', join(dir, 'no-repo'), 'add', '-Q', '--only-hash', file])
  t.is(only.code, 0, only.stderr)
  t.is(only.stdout, q.stdout)
  t.is((await repoIsClean(repo)).pieces.length, 1)
})

// ipfs-car writes blocks in import order (leaves before their parents), so its
// CAR has the same root and blocks as ours but not the DFS order ours has.
test('pack has the root and blocks of ipfs-car pack for a single file (--no-wrap) and when wrapped', async t => {
  const { dir } = await setup(t)
  const file = join(dir, 'data.bin')
  await writeFile(file, randomBytes(2_500_000))
  const ipfsCar = join(process.cwd(), 'node_modules', '.bin', 'ipfs-car')
  for (const [ours, theirs] of [[[], ['--no-wrap']], [['--wrap'], []]]) {
    const car = join(dir, `ic${theirs.length}.car`)
    execFileSync(ipfsCar, ['pack', file, ...theirs, '-o', car], { stdio: 'ignore' })
    const oursCar = join(dir, `ours${theirs.length}.car`)
    t.is((await cairn(['pack', file, ...ours, '-o', oursCar])).code, 0)
    const [a, b] = await Promise.all([blocksOf(oursCar), blocksOf(car)])
    t.deepEqual(a.roots, b.roots, `cairn pack ${ours.join(' ')} vs ipfs-car pack ${theirs.join(' ')}`)
    t.deepEqual([...a.blocks].sort(), [...b.blocks].sort())
  }
})

test('bad content input gets its code and leaves nothing in the repo', async t => {
  const { dir, repo } = await setup(t)
  const file = join(dir, 'f')
  await writeFile(file, 'x')
  const fifo = join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const cases: Array<[string[], number, string]> = [
    [['add', join(dir, 'missing')], 4, 'ERR_PATH_NOT_FOUND'],
    [['add', fifo], 2, 'ERR_UNSUPPORTED_FILE_TYPE'],
    [['add', '--chunk-size', '0', file], 2, 'ERR_INVALID_CHUNK_SIZE'],
    [['add', '--chunk-size', 'lots', file], 2, 'ERR_INVALID_CHUNK_SIZE'],
    [['add', '--chunk-size', '999999999999', file], 2, 'ERR_INVALID_CHUNK_SIZE'],
    [['add', '--max-links', '1', file], 2, 'ERR_INVALID_MAX_LINKS'],
    [['add', '--profile', 'unixfs-v9', file], 2, 'ERR_INVALID_PROFILE'],
    [['piece', join(dir, 'missing')], 4, 'ERR_PATH_NOT_FOUND'],
    [['piece', dir], 2, 'ERR_NOT_A_FILE'],
    [['piece', fifo], 2, 'ERR_UNSUPPORTED_FILE_TYPE']
  ]
  for (const [args, status, code] of cases) {
    const r = await cairn(['--repo', repo, ...args], { timeoutMs: 20_000 })
    t.is(r.code, status, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, new RegExp(`^error ${code}: `, 'm'), args.join(' '))
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
  }
  t.deepEqual(await repoIsClean(repo), { pieces: [], tmp: [] })
})

test('add to a missing repo is ERR_REPO_NOT_FOUND before any work', async t => {
  const { dir } = await setup(t)
  const r = await cairn(['--repo', join(dir, 'nowhere'), 'add', dir])
  t.is(r.code, 4)
  t.regex(r.stderr, /ERR_REPO_NOT_FOUND/)
})
