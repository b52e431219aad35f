/**
 * The provider's announcer (docs/routing.md, "Announcing"): advertisements
 * reach every indexer without holding the provider up, survive unreachable
 * indexers (back-off), restarts (resume from the last acknowledgement),
 * indexers that lost their state (resend from the chain start), and a chain
 * restored from an older backup (a fork: the chain restarts); a full queue
 * falls back to reconciling with the deal source.
 */
import test from 'ava'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import type { CID } from 'multiformats/cid'
import { CairnError } from '../../src/errors.js'
import type { Database } from '../../src/repo/repo.js'
import { Announcer, type AnnouncerOptions, type DealSource } from '../../src/routing/announcer.js'
import { announce } from '../../src/routing/http-client.js'
import { LevelIndexStore } from '../../src/routing/level-index.js'
import { peerIdFromPublicKey } from '../../src/routing/peer-id.js'
import { createIndexerServer } from '../../src/routing/server.js'
import type { HttpService } from '../../src/provider/server.js'
import { newIdentity, randomCids } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

const ADDRESS = '/ip4/127.0.0.1/tcp/7470/http'

interface Indexer { url: string, store: LevelIndexStore, service: HttpService, close: () => Promise<void> }

async function startIndexer (): Promise<Indexer> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-indexer-'))
  const db: Database = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  const store = await LevelIndexStore.open(db)
  const service = createIndexerServer({ store, log: () => {} })
  const url = await service.listen('127.0.0.1', 0)
  return { url, store, service, close: async () => { await service.close(); await store.close(); await db.close(); await rm(dir, { recursive: true, force: true }) } }
}

/** Providers of `cid` at the indexer, by peer ID. */
async function providersOf (indexer: Indexer, cid: CID): Promise<string[]> {
  const out: string[] = []
  for await (const hit of indexer.store.find(cid.multihash.bytes, 100)) out.push(hit.provider.peerId)
  return out
}

/** A deal source over an in-memory table of deal id → blocks. */
function memorySource (deals: Map<string, CID[]>): DealSource & { reads: string[] } {
  const reads: string[] = []
  return {
    reads,
    async * activeDeals () { yield * deals.keys() },
    async * blocks (id: string) {
      reads.push(id)
      const blocks = deals.get(id)
      if (blocks === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${id}`)
      yield * blocks
    }
  }
}

const dealId = (): string => (randomCids(1)[0] as CID).toString()

interface ProviderSide { dir: string, db: Database, open: () => Promise<Database>, cleanup: () => Promise<void> }

async function providerDb (): Promise<ProviderSide> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-announcer-'))
  const side: ProviderSide = {
    dir,
    db: undefined as unknown as Database,
    open: async () => {
      side.db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
      await side.db.open()
      return side.db
    },
    cleanup: async () => { await side.db.close(); await rm(dir, { recursive: true, force: true }) }
  }
  await side.open()
  return side
}

const quick: Partial<AnnouncerOptions> = { initialBackoffMs: 10, maxBackoffMs: 50, reconcileIntervalMs: 0 }

test('active deals are found at every indexer; an ended one is withdrawn; the provider is named by its peer ID', async (t) => {
  const [a, b] = [await startIndexer(), await startIndexer()]
  const side = await providerDb()
  const identity = newIdentity()
  const announcer = await Announcer.start(side.db, identity, { ...quick, indexers: [a.url, b.url + '/'], addresses: [ADDRESS] })
  try {
    const id = dealId()
    const blocks = randomCids(100)
    announcer.dealActive(id, blocks)
    await announcer.settled(AbortSignal.timeout(30_000))
    const peerId = peerIdFromPublicKey(identity.publicKey)
    for (const indexer of [a, b]) {
      t.deepEqual(await providersOf(indexer, blocks[0] as CID), [peerId])
      t.deepEqual(await providersOf(indexer, blocks[99] as CID), [peerId])
      t.deepEqual((await indexer.store.provider(peerId))?.addresses, [ADDRESS])
    }
    // announcing it again changes nothing
    const before = (await announcer.status()).head?.seq
    announcer.dealActive(id, blocks)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is((await announcer.status()).head?.seq, before)
    announcer.dealEnded(id)
    await announcer.settled(AbortSignal.timeout(30_000))
    for (const indexer of [a, b]) t.deepEqual(await providersOf(indexer, blocks[0] as CID), [])
    const status = await announcer.status()
    t.deepEqual(status.indexers.map(i => i.acked), [status.head?.seq, status.head?.seq])
  } finally {
    await announcer.close()
    await side.cleanup()
    await a.close()
    await b.close()
  }
})

test('an unreachable indexer is retried with back-off until it answers; the provider is never held up', async (t) => {
  const indexer = await startIndexer()
  const side = await providerDb()
  let failuresLeft = 3
  const logged: string[] = []
  const announcer = await Announcer.start(side.db, newIdentity(), {
    ...quick,
    indexers: [indexer.url],
    addresses: [ADDRESS],
    log: (event) => { logged.push(event) },
    send: async (url, car, signal) => {
      if (failuresLeft-- > 0) throw new CairnError('ERR_UNREACHABLE', `cannot reach indexer ${url}: ECONNREFUSED`)
      return await announce(url, car, { signal })
    }
  })
  try {
    const blocks = randomCids(3)
    const started = performance.now()
    announcer.dealActive(dealId(), blocks)
    t.true(performance.now() - started < 1000, 'dealActive only queues')
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is((await providersOf(indexer, blocks[1] as CID)).length, 1)
    t.true(logged.filter(e => e === 'announce-retry').length >= 3)
    t.true(logged.includes('announce-resumed'))
    t.is((await announcer.status()).indexers[0]?.failures, 0)
  } finally {
    await announcer.close()
    await side.cleanup()
    await indexer.close()
  }
})

test('after a restart each indexer is sent only what it had not acknowledged', async (t) => {
  const indexer = await startIndexer()
  const side = await providerDb()
  const identity = newIdentity()
  let down = false
  const sent: string[] = []
  const send: AnnouncerOptions['send'] = async (url, car, signal) => {
    if (down) throw new CairnError('ERR_UNREACHABLE', 'indexer down')
    const ack = await announce(url, car, { signal })
    sent.push(ack.head)
    return ack
  }
  const first = await Announcer.start(side.db, identity, { ...quick, indexers: [indexer.url], addresses: [ADDRESS], send })
  const early = randomCids(2)
  const late = randomCids(2)
  try {
    first.dealActive(dealId(), early)
    await first.settled(AbortSignal.timeout(30_000))
    const acked = sent.length
    down = true
    first.dealActive(dealId(), late)
    // the advertisement is in the chain, the indexer has not taken it
    for (let i = 0; i < 200 && ((await first.status()).indexers[0]?.failures ?? 0) === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    t.true(((await first.status()).indexers[0]?.failures ?? 0) > 0)
    await first.close()
    t.deepEqual(await providersOf(indexer, late[0] as CID), [])

    down = false
    const second = await Announcer.start(side.db, identity, { ...quick, indexers: [indexer.url], addresses: [ADDRESS], send })
    try {
      await second.settled(AbortSignal.timeout(30_000))
      t.is(sent.length, acked + 1, 'only the advertisement it lacked')
      t.is((await providersOf(indexer, late[0] as CID)).length, 1)
      t.is((await providersOf(indexer, early[0] as CID)).length, 1)
    } finally {
      await second.close()
    }
  } finally {
    await side.cleanup()
    await indexer.close()
  }
})

test('an indexer that lost its state is sent the chain again from its start', async (t) => {
  let current = await startIndexer()
  const side = await providerDb()
  const announcer = await Announcer.start(side.db, newIdentity(), {
    ...quick,
    indexers: ['http://indexer.invalid'],
    addresses: [ADDRESS],
    // one indexer URL; behind it, the indexer is replaced by an empty one
    send: async (_url, car, signal) => await announce(current.url, car, { signal })
  })
  try {
    const early = randomCids(3)
    announcer.dealActive(dealId(), early)
    await announcer.settled(AbortSignal.timeout(30_000))
    await current.close()
    current = await startIndexer()
    const late = randomCids(3)
    announcer.dealActive(dealId(), late)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is((await providersOf(current, early[0] as CID)).length, 1)
    t.is((await providersOf(current, late[0] as CID)).length, 1)
  } finally {
    await announcer.close()
    await side.cleanup()
    await current.close()
  }
})

test('a chain restored from an older backup: the indexer is ahead on a chain the provider lost, so the chain restarts and holds what the provider serves now', async (t) => {
  const indexer = await startIndexer()
  const side = await providerDb()
  const identity = newIdentity()
  const deals = new Map<string, CID[]>()
  const kept = dealId()
  deals.set(kept, randomCids(4))
  const options: AnnouncerOptions = { ...quick, indexers: [indexer.url], addresses: [ADDRESS], source: memorySource(deals) }
  let announcer = await Announcer.start(side.db, identity, options)
  const backup = join(side.dir, 'backup')
  const lost = dealId()
  try {
    await announcer.settled(AbortSignal.timeout(30_000))
    await announcer.close()
    await side.db.close()
    await cp(join(side.dir, 'db'), backup, { recursive: true })
    await side.open()
    // after the backup: another deal, advertised and taken by the indexer
    deals.set(lost, randomCids(4))
    announcer = await Announcer.start(side.db, identity, options)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is((await providersOf(indexer, deals.get(lost)?.[0] as CID)).length, 1)
    await announcer.close()
    await side.db.close()

    // the repo comes back from the backup: that deal is gone, and so are its advertisements
    await rm(join(side.dir, 'db'), { recursive: true })
    await cp(backup, join(side.dir, 'db'), { recursive: true })
    await side.open()
    const lostBlocks = deals.get(lost) as CID[]
    deals.delete(lost)
    const logged: string[] = []
    announcer = await Announcer.start(side.db, identity, { ...options, log: (e) => { logged.push(e) } })
    const fresh = dealId()
    deals.set(fresh, randomCids(4))
    announcer.dealActive(fresh, deals.get(fresh))
    await announcer.settled(AbortSignal.timeout(30_000))
    t.true(logged.includes('announce-chain-fork'))
    t.true(logged.includes('announce-chain-restarted'))
    t.is((await providersOf(indexer, deals.get(kept)?.[0] as CID)).length, 1, 'a deal from before the backup')
    t.is((await providersOf(indexer, deals.get(fresh)?.[0] as CID)).length, 1, 'a deal from after the restore')
    t.deepEqual(await providersOf(indexer, lostBlocks[0] as CID), [], 'the deal the restored repo never had is gone from the index')
    const peerId = peerIdFromPublicKey(identity.publicKey)
    t.is((await indexer.store.provider(peerId))?.head.toString(), (await announcer.status()).head?.cid)
  } finally {
    await announcer.close()
    await side.cleanup()
    await indexer.close()
  }
})

test('past its limits the queue drops events and reconciles with the deal source instead; nothing is lost', async (t) => {
  const indexer = await startIndexer()
  const side = await providerDb()
  const deals = new Map<string, CID[]>()
  const source = memorySource(deals)
  const logged: string[] = []
  const announcer = await Announcer.start(side.db, newIdentity(), { ...quick, indexers: [indexer.url], addresses: [ADDRESS], source, maxQueuedEvents: 2, maxQueuedMultihashes: 5, log: (e) => { logged.push(e) } })
  try {
    await announcer.settled(AbortSignal.timeout(30_000))
    const ids = Array.from({ length: 8 }, dealId)
    for (const id of ids) {
      deals.set(id, randomCids(4))
      announcer.dealActive(id, deals.get(id))
    }
    await announcer.settled(AbortSignal.timeout(30_000))
    t.true(logged.includes('announce-queue-full'))
    for (const id of ids) t.is((await providersOf(indexer, deals.get(id)?.[3] as CID)).length, 1, id)
    t.true(source.reads.length > 0, 'blocks of dropped events were read back from the source')
    // a deal that is no longer active is withdrawn by the next reconciliation
    const gone = ids[0] as string
    const goneBlocks = deals.get(gone) as CID[]
    deals.delete(gone)
    for (let i = 0; i < 3; i++) announcer.dealEnded(dealId())
    announcer.dealEnded(gone)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.deepEqual(await providersOf(indexer, goneBlocks[0] as CID), [])
  } finally {
    await announcer.close()
    await side.cleanup()
    await indexer.close()
  }
})

test('without a deal source, events past the queue\'s limit are logged as dropped and the announcer still settles', async (t) => {
  const indexer = await startIndexer()
  const side = await providerDb()
  const logged: Array<[string, Record<string, unknown> | undefined]> = []
  const announcer = await Announcer.start(side.db, newIdentity(), { ...quick, indexers: [indexer.url], addresses: [ADDRESS], maxQueuedEvents: 1, log: (e, f) => { logged.push([e, f]) } })
  try {
    const first = randomCids(2)
    announcer.dealActive(dealId(), first)
    for (let i = 0; i < 5; i++) announcer.dealActive(dealId(), randomCids(2))
    await announcer.settled(AbortSignal.timeout(30_000))
    const full = logged.find(([e]) => e === 'announce-queue-full')
    t.truthy(full)
    t.is(full?.[1]?.dropped, 'active')
    t.is((await providersOf(indexer, first[0] as CID)).length, 1, 'what was queued is announced')
  } finally {
    await announcer.close()
    await side.cleanup()
    await indexer.close()
  }
})

test('announcing needs an http(s) address and at least one', async (t) => {
  const side = await providerDb()
  try {
    await rejectsCode(t, Announcer.start(side.db, newIdentity(), { indexers: ['http://127.0.0.1:1'], addresses: [] }), 'ERR_INVALID_ARGUMENT')
    await rejectsCode(t, Announcer.start(side.db, newIdentity(), { indexers: ['http://127.0.0.1:1'], addresses: ['/ip4/1.2.3.4/tcp/4001'] }), 'ERR_INVALID_MULTIADDR')
    await rejectsCode(t, Announcer.start(side.db, newIdentity(), { indexers: ['ftp://x'], addresses: [ADDRESS] }), 'ERR_INVALID_ARGUMENT')
  } finally {
    await side.cleanup()
  }
})
