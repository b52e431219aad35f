/** Every rejection of the importer, with its exact code. */
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { chmod, writeFile, utimes, stat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import { resolveProfile, MAX_CHUNK_SIZE, MAX_LINKS } from '../../src/unixfs/profile.js'
import { cairn } from '../helpers/cli.js'
import { collect, tempDir, writeTree } from './helpers.js'
import { rejectionCodeOf as codeOf } from '../helpers/errors.js'

test('invalid profile, chunk size and max links', async t => {
  t.is(await codeOf(planImport(['.'], { profile: 'unixfs-v9' as never })), 'ERR_INVALID_PROFILE')
  for (const chunkSize of [0, -1, 1.5, MAX_CHUNK_SIZE + 1, Number.NaN]) {
    t.is(await codeOf(planImport(['.'], { chunkSize })), 'ERR_INVALID_CHUNK_SIZE', String(chunkSize))
  }
  for (const maxLinks of [0, 1, MAX_LINKS + 1, 2.5]) {
    t.is(await codeOf(planImport(['.'], { maxLinks })), 'ERR_INVALID_MAX_LINKS', String(maxLinks))
  }
  t.is(resolveProfile({ chunkSize: MAX_CHUNK_SIZE, maxLinks: 2 }).chunkSize, MAX_CHUNK_SIZE)
  t.is(await codeOf(planImport([])), 'ERR_INVALID_ARGUMENT')
})

test('missing path, FIFO, duplicate wrapped names', async t => {
  const dir = await tempDir()
  try {
    t.is(await codeOf(planImport([join(dir.path, 'nope')])), 'ERR_PATH_NOT_FOUND')
    const fifo = join(dir.path, 'fifo')
    execFileSync('mkfifo', [fifo])
    t.is(await codeOf(planImport([fifo])), 'ERR_UNSUPPORTED_FILE_TYPE')
    await writeTree(join(dir.path, 'tree'), { a: 'a' })
    execFileSync('mkfifo', [join(dir.path, 'tree', 'pipe')])
    t.is(await codeOf(planImport([join(dir.path, 'tree')])), 'ERR_UNSUPPORTED_FILE_TYPE')
    await writeTree(join(dir.path, 'x', 'same'), 'a')
    await writeTree(join(dir.path, 'y', 'same'), 'b')
    t.is(await codeOf(planImport([join(dir.path, 'x', 'same'), join(dir.path, 'y', 'same')])), 'ERR_INVALID_ARGUMENT')
  } finally {
    await dir.cleanup()
  }
})

// chmod 000 does not stop root, and the tests may run as root
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
(asRoot ? test.skip : test)('an unreadable file or directory is ERR_PERMISSION_DENIED', async t => {
  const dir = await tempDir()
  try {
    await writeTree(join(dir.path, 'd'), { secret: 'x', sub: { y: 'y' } })
    await chmod(join(dir.path, 'd', 'secret'), 0o000)
    t.is(await codeOf(planImport([join(dir.path, 'd')])), 'ERR_PERMISSION_DENIED')
    await chmod(join(dir.path, 'd', 'secret'), 0o644)
    await chmod(join(dir.path, 'd', 'sub'), 0o000)
    t.is(await codeOf(planImport([join(dir.path, 'd')])), 'ERR_PERMISSION_DENIED')
    await chmod(join(dir.path, 'd', 'sub'), 0o755)
  } finally {
    await dir.cleanup()
  }
})

test('a file that changes between the passes is ERR_FILE_CHANGED', async t => {
  const dir = await tempDir()
  try {
    const file = join(dir.path, 'f')
    // grows
    await writeFile(file, 'a'.repeat(1000))
    let plan = await planImport([file], { chunkSize: 100 })
    await writeFile(file, 'a'.repeat(1001))
    t.is(await codeOf(collect(carStream(plan))), 'ERR_FILE_CHANGED')
    // same size and mtime, different bytes: caught by the leaf hash
    await writeFile(file, 'a'.repeat(1000))
    const before = await stat(file)
    plan = await planImport([file], { chunkSize: 100 })
    await writeFile(file, 'a'.repeat(999) + 'b')
    await utimes(file, before.atime, before.mtime)
    t.is(await codeOf(collect(carStream(plan))), 'ERR_FILE_CHANGED')
    // removed
    plan = await planImport([file], { chunkSize: 100 })
    const { rm } = await import('node:fs/promises')
    await rm(file)
    t.is(await codeOf(collect(carStream(plan))), 'ERR_FILE_CHANGED')
  } finally {
    await dir.cleanup()
  }
})

test('cairn pack: coded errors and exit statuses, nothing partial left', async t => {
  const dir = await tempDir()
  try {
    await writeTree(join(dir.path, 'in'), { a: 'a' })
    execFileSync('mkfifo', [join(dir.path, 'in', 'pipe')])
    const out = join(dir.path, 'out.car')
    let r = await cairn(['pack', join(dir.path, 'in'), '-o', out])
    t.is(r.code, 2)
    t.regex(r.stderr, /ERR_UNSUPPORTED_FILE_TYPE/)
    r = await cairn(['pack', join(dir.path, 'missing'), '-o', out])
    t.is(r.code, 4)
    t.regex(r.stderr, /ERR_PATH_NOT_FOUND/)
    r = await cairn(['pack', join(dir.path, 'in', 'a'), '-o', out, '--chunk-size', '0'])
    t.is(r.code, 2)
    t.regex(r.stderr, /ERR_INVALID_CHUNK_SIZE/)
    r = await cairn(['pack', join(dir.path, 'in', 'a'), '-o', out, '--max-links', '1'])
    t.is(r.code, 2)
    t.regex(r.stderr, /ERR_INVALID_MAX_LINKS/)
    r = await cairn(['pack', join(dir.path, 'in', 'a'), '-o', out, '--profile', 'nope'])
    t.is(r.code, 2)
    t.deepEqual((await readdir(dir.path)).sort(), ['in'])
    r = await cairn(['pack', join(dir.path, 'in', 'a'), '-o', out, '--json'])
    t.is(r.code, 0)
    const result = JSON.parse(r.stdout) as { root: string, bytes: number, output: string }
    t.is(result.root, 'bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm')
    t.is(result.bytes, 1)
    t.is(result.output, out)
    t.deepEqual((await readdir(dir.path)).sort(), ['in', 'out.car'])
  } finally {
    await dir.cleanup()
  }
})
