/**
 * Content routing through the real binary: `cairn indexer start` as its own
 * process, two providers announcing the same DAG to it, and `cairn routers`
 * plus `cairn get` finding them by CID alone — failing over from a provider
 * that is gone to one that answers, every block verified.
 */
import test from 'ava'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn, tempDir } from '../helpers/cli.js'
import { daemon } from '../helpers/daemon.js'
import { MiB, payload, randomBytes, startWorld, type World } from '../interop/world.js'

test('get by CID alone: the indexer names two providers, the first is gone, the second serves verified bytes', async (t) => {
  const dir = await tempDir('cairn-routing-cli-')
  const worlds: World[] = []
  const indexerRepo = join(dir.path, 'indexer')
  t.is((await cairn(['--repo', indexerRepo, 'init'])).code, 0)
  const indexer = await daemon(['--repo', indexerRepo, '--json', 'indexer', 'start', '--listen', '127.0.0.1:0'])
  try {
    const url = (JSON.parse(indexer.line) as { url: string }).url
    const content = randomBytes(3 * MiB + 77, 31)
    const file = await payload([{ content }], { chunkSize: MiB, maxLinks: 1024 })
    for (let i = 0; i < 2; i++) {
      const w = await startWorld({ announce: { indexers: [url], initialBackoffMs: 10 } })
      worlds.push(w)
      await w.deal(file)
      await w.announcer?.settled(AbortSignal.timeout(30_000))
    }
    const [gone, alive] = worlds as [World, World]
    await gone.close()

    const client = join(dir.path, 'client')
    t.is((await cairn(['--repo', client, 'init'])).code, 0)
    const added = await cairn(['--repo', client, '--json', 'routers', 'add', url + '/'])
    t.is(added.code, 0, added.stderr)
    t.is((JSON.parse(added.stdout) as { url: string }).url, url)
    const listed = await cairn(['--repo', client, '--json', 'routers', 'ls'])
    t.deepEqual((JSON.parse(listed.stdout) as Array<{ url: string }>).map(r => r.url), [url])

    const out = join(dir.path, 'out.bin')
    const got = await cairn(['--repo', client, '--json', 'get', file.root.toString(), '-o', out])
    t.is(got.code, 0, got.stderr)
    const result = JSON.parse(got.stdout) as { source: { location: string, reason: string }, failed: Array<{ source: { location: string }, code: string }> }
    t.deepEqual(result.source, { kind: 'provider', location: alive.url, reason: 'router' })
    t.deepEqual(result.failed.map(f => [f.source.location, f.code]), [[gone.url, 'ERR_UNREACHABLE']])
    t.regex(got.stderr, new RegExp(`${gone.url} failed with ERR_UNREACHABLE`))
    t.true(Buffer.from(await readFile(out)).equals(Buffer.from(content)))

    // no repo of one's own: --router alone; a router that cannot be reached is reported, the other one used
    const bare = join(dir.path, 'bare.bin')
    const routed = await cairn(['--repo', join(dir.path, 'none'), '--json', 'get', file.root.toString(), '--router', 'http://127.0.0.1:9', '--router', url, '-o', bare])
    t.is(routed.code, 0, routed.stderr)
    t.regex(routed.stderr, /router http:\/\/127\.0\.0\.1:9 failed with ERR_UNREACHABLE/)
    t.true(Buffer.from(await readFile(bare)).equals(Buffer.from(content)))

    // a CID nobody provides: not found, exit 4
    const absent = await cairn(['--repo', client, 'get', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '-o', join(dir.path, 'x')])
    t.is(absent.code, 4)
    t.regex(absent.stderr, /ERR_NOT_FOUND: .*no router knows a provider/)

    const removed = await cairn(['--repo', client, 'routers', 'rm', url])
    t.is(removed.code, 0)
    t.is((await cairn(['--repo', client, 'routers', 'ls', '-q'])).stdout, '')
  } finally {
    for (const w of worlds.slice(1)) await w.close()
    t.is(await indexer.stop(), 0, 'the indexer stops cleanly on SIGINT')
    await dir.cleanup()
  }
})

test('routers and indexer refusals carry their codes and exit statuses', async (t) => {
  const dir = await tempDir('cairn-routing-cli-')
  try {
    const repo = join(dir.path, 'client')
    t.is((await cairn(['--repo', repo, 'init'])).code, 0)
    const unreachable = await cairn(['--repo', repo, 'routers', 'add', 'http://127.0.0.1:9'])
    t.is(unreachable.code, 5)
    t.regex(unreachable.stderr, /ERR_UNREACHABLE/)
    t.is((await cairn(['--repo', repo, 'routers', 'ls', '-q'])).stdout, '', 'an unreachable router is not kept')
    const notUrl = await cairn(['--repo', repo, 'routers', 'add', 'indexer.example'])
    t.is(notUrl.code, 2)
    t.regex(notUrl.stderr, /ERR_INVALID_ARGUMENT/)
    const unknown = await cairn(['--repo', repo, 'routers', 'rm', 'http://127.0.0.1:9'])
    t.is(unknown.code, 4)
    t.regex(unknown.stderr, /ERR_NOT_FOUND/)
    const noRepo = await cairn(['--repo', join(dir.path, 'none'), 'routers', 'ls'])
    t.is(noRepo.code, 4)
    t.regex(noRepo.stderr, /ERR_REPO_NOT_FOUND/)
    const badListen = await cairn(['--repo', repo, 'indexer', 'start', '--listen', 'nowhere'])
    t.is(badListen.code, 2)
    t.regex(badListen.stderr, /ERR_INVALID_ARGUMENT/)
    const noIndexerRepo = await cairn(['--repo', join(dir.path, 'none'), 'indexer', 'start', '--listen', '127.0.0.1:0'])
    t.is(noIndexerRepo.code, 4)
    t.regex(noIndexerRepo.stderr, /ERR_REPO_NOT_FOUND/)
  } finally {
    await dir.cleanup()
  }
})
