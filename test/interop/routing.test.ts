/**
 * Content routing against the reference client: Helia's delegated routing
 * client (@helia/delegated-routing-v1-http-api-client 5.2.1, through
 * @helia/routers 4.0.6, the Node 20 set) pointed at a cairn indexer finds a
 * cairn provider for CIDs it never heard of — the record's peer ID is the
 * provider's key as @libp2p/peer-id derives it, its address the provider's
 * http multiaddr, its protocol the Trustless Gateway — and verified-fetch,
 * whose Helia node has that router and no gateway, retrieves and verifies
 * the content from the provider. Everything stays on loopback.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { HttpService } from '../../src/provider/server.js'
import type { Database } from '../../src/repo/repo.js'
import { LevelIndexStore } from '../../src/routing/level-index.js'
import { multiaddrFromUrl } from '../../src/routing/multiaddr.js'
import { createIndexerServer } from '../../src/routing/server.js'
import { delegatedRoutingClient, routedVerifiedFetch, type Oracle } from './helia.js'
import { MiB, payload, randomBytes, startWorld, type Payload, type World } from './world.js'

let world: World
let indexer: HttpService
let indexerUrl: string
let store: LevelIndexStore
let db: Database
let dir: string
let oracle: Oracle
let file: Payload
let fileBytes: Uint8Array
let tree: Payload
const nested = new TextEncoder().encode('found through the indexer\n')

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-interop-routing-'))
  db = new Level<string, Uint8Array>(join(dir, 'index'), { valueEncoding: 'view' })
  await db.open()
  store = await LevelIndexStore.open(db)
  indexer = createIndexerServer({ store, log: () => {} })
  indexerUrl = await indexer.listen('127.0.0.1', 0)
  world = await startWorld({ announce: { indexers: [indexerUrl], initialBackoffMs: 10 } })
  fileBytes = randomBytes(3 * MiB + 4321, 77)
  file = await payload([{ content: fileBytes }], { chunkSize: MiB, maxLinks: 1024 })
  tree = await payload([
    { path: 'd/a.txt', content: new TextEncoder().encode('a\n') },
    { path: 'd/sub/found.txt', content: nested }
  ], { chunkSize: MiB, maxLinks: 1024 })
  await world.deal(file)
  await world.deal(tree)
  await world.announcer?.settled(AbortSignal.timeout(30_000))
  oracle = await routedVerifiedFetch(indexerUrl)
})

test.serial.after('the oracle reached nothing but the indexer and the provider on loopback', (t) => {
  t.deepEqual(oracle.refused, [])
})

test.after.always(async () => {
  await oracle?.stop()
  await world?.close()
  await indexer?.close()
  await store?.close()
  await db?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

const lookups = (): number => indexer.metrics.requests.get({ route: '/routing/v1/providers/:cid', status: '2xx' })
const blocksServed = (): number => world.service.metrics.retrievals.get({ kind: 'block' })

test.serial('Helia\'s delegated routing client reads the indexer\'s record: peer ID (as @libp2p/peer-id derives it), http multiaddr, gateway protocol', async (t) => {
  const client = await delegatedRoutingClient(indexerUrl)
  try {
    for (const cid of [file.root, CID.parse(file.order.at(-1) as string)]) {
      const records = []
      for await (const record of client.getProviders(cid, { signal: AbortSignal.timeout(10_000) })) records.push(record)
      t.is(records.length, 1, cid.toString())
      const expected = peerIdFromPublicKey(publicKeyFromRaw(world.repo.identity.publicKey))
      t.true(records[0]?.ID.equals(expected), `${records[0]?.ID.toString() ?? ''} is ${expected.toString()}`)
      t.deepEqual(records[0]?.Addrs.map(a => a.toString()), [multiaddrFromUrl(world.url)])
      t.deepEqual(records[0]?.Protocols, ['transport-ipfs-gateway-http'])
    }
    // a CID nobody provides: no record, no error (the indexer answers an empty 200)
    const absent = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('nobody has this')))
    const none = []
    for await (const record of client.getProviders(absent, { signal: AbortSignal.timeout(10_000) })) none.push(record)
    t.deepEqual(none, [])
  } finally {
    await client.stop()
  }
})

test.serial('verified-fetch with only the delegated router finds the provider for a file it never heard of and verifies every block', async (t) => {
  const [askedBefore, servedBefore] = [lookups(), blocksServed()]
  const res = await oracle.fetch(`ipfs://${file.root.toString()}`, { signal: AbortSignal.timeout(60_000) })
  t.is(res.status, 200)
  const got = new Uint8Array(await res.arrayBuffer())
  t.true(Buffer.from(got).equals(Buffer.from(fileBytes)))
  t.true(lookups() > askedBefore, 'the indexer was asked')
  t.true(blocksServed() - servedBefore >= file.order.length, 'every block came from the provider the indexer named')
})

test.serial('and a file by path inside a directory', async (t) => {
  const res = await oracle.fetch(`ipfs://${tree.root.toString()}/sub/found.txt`, { signal: AbortSignal.timeout(60_000) })
  t.is(res.status, 200)
  t.deepEqual(new Uint8Array(await res.arrayBuffer()), nested)
})
