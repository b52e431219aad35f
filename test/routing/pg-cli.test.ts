/**
 * `cairn indexer start --db`: the index in PostgreSQL through the real
 * binary — a provider announces a deal to it, a Delegated Routing V1 lookup
 * names the provider, and a second indexer process on the same database
 * answers the same without having been told anything; and the refusals of a
 * bad or unreachable database, with their codes.
 */
import test from 'ava'
import { join } from 'node:path'
import { peerIdFromPublicKey } from '../../src/routing/peer-id.js'
import { cairn, tempDir } from '../helpers/cli.js'
import { daemon } from '../helpers/daemon.js'
import { testDatabase } from '../helpers/postgres.js'
import { payload, randomBytes, startWorld } from '../interop/world.js'

interface Providers { Providers: Array<{ Schema: string, ID: string, Addrs: string[], Protocols: string[] }> }

test('indexer start --db: a provider announces, a lookup names it, another indexer on the same database knows it too', async (t) => {
  const database = await testDatabase()
  t.teardown(database.cleanup)
  const dir = await tempDir('cairn-indexer-db-')
  t.teardown(dir.cleanup)
  // no --repo: with --db the indexer needs none
  const indexer = await daemon(['--repo', join(dir.path, 'none'), '--json', 'indexer', 'start', '--listen', '127.0.0.1:0', '--db', database.url])
  const world = await startWorld({ announce: { indexers: [(JSON.parse(indexer.line) as { url: string }).url], initialBackoffMs: 10 } })
  let second: Awaited<ReturnType<typeof daemon>> | undefined
  try {
    const url = (JSON.parse(indexer.line) as { url: string }).url
    const file = await payload([{ content: randomBytes(300_000, 7) }])
    await world.deal(file)
    await world.announcer?.settled(AbortSignal.timeout(30_000))
    const expected = { Providers: [{ Schema: 'peer', ID: peerIdFromPublicKey(world.repo.identity.publicKey), Addrs: [`/ip4/127.0.0.1/tcp/${new URL(world.url).port}/http`], Protocols: ['transport-ipfs-gateway-http'] }] }
    const found = await fetch(`${url}/routing/v1/providers/${file.root.toString()}`)
    t.is(found.status, 200)
    t.deepEqual(await found.json() as Providers, expected)
    const health = await (await fetch(`${url}/healthz`)).json() as { providers: number, multihashes: number }
    t.is(health.providers, 1)
    t.true(health.multihashes >= 2, `${health.multihashes} multihashes indexed`)

    second = await daemon(['--json', 'indexer', 'start', '--listen', '127.0.0.1:0', '--db', database.url])
    const other = (JSON.parse(second.line) as { url: string }).url
    t.deepEqual(await (await fetch(`${other}/routing/v1/providers/${file.root.toString()}`)).json() as Providers, expected)
  } finally {
    await world.close()
    t.is(await indexer.stop(), 0, 'the indexer stops cleanly on SIGINT')
    if (second !== undefined) t.is(await second.stop(), 0)
  }
})

test('indexer start --db refuses a URL that is not PostgreSQL\'s (ERR_DB_URL, exit 2) and a database it cannot reach (ERR_DB_UNREACHABLE, exit 5)', async (t) => {
  const dir = await tempDir('cairn-indexer-db-')
  t.teardown(dir.cleanup)
  const bad = await cairn(['--repo', join(dir.path, 'none'), 'indexer', 'start', '--listen', '127.0.0.1:0', '--db', 'mysql://x/y'])
  t.is(bad.code, 2, bad.stderr)
  t.regex(bad.stderr, /^error ERR_DB_URL: /m)
  const down = await cairn(['indexer', 'start', '--listen', '127.0.0.1:0', '--db', 'postgres://cairn@127.0.0.1:9/cairn'], { timeoutMs: 60_000 })
  t.is(down.code, 5, down.stderr)
  t.regex(down.stderr, /^error ERR_DB_UNREACHABLE: /m)
})
