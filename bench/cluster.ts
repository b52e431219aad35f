/**
 * Cluster mode on PostgreSQL, beside LevelDB (targets: ≥ 1,000
 * chained appends/s with synchronous commit; ≥ 1,000 tasks claimed and
 * finished per second). The chained append is the
 * ledger's pattern on the state store (test/state/chain.ts): under the head
 * lock, read the last entry, link to it, commit a group of waiting appends in
 * one transaction — on PostgreSQL with its defaults (fsync, synchronous_commit
 * on), on a throwaway server unless CAIRN_BENCH_PG_URL names one.
 *
 * Tasks: no-op tasks drained by two nodes (two pools, two machines, four
 * workers each) in this process, from the first claim to the last record.
 *
 * The provider's own paths in a cluster: the real ledger (`StateLedger`:
 * signed entries, indexes, group commit under the head lock) on PostgreSQL
 * from one and two nodes beside `LevelLedger`, and `GET /piece` through a
 * node that does not hold the piece (streamed from the holder over the
 * internal endpoint) beside the same request to the holder.
 *
 * Proofs in a cluster: a piece under an active deal on one node only,
 * challenged (16 leaves) through that node and through one without it, which
 * has the holder prove it and checks the proof (target: p50 ≤ 50 ms warm on
 * 1 GiB).
 *
 *   node dist/bench/cluster.js [appends] [tasks] [piece MiB] [proof MiB]
 *   npm run bench flags: --cluster-proof-size 1G, --cluster-proof-rounds 30
 */
import { randomBytes } from 'node:crypto'
import * as dagCBOR from '@ipld/dag-cbor'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Machine } from '../src/cluster/machines.js'
import { addTasks, TaskEngine } from '../src/cluster/tasks.js'
import { Db } from '../src/postgres/db.js'
import { migrate } from '../src/postgres/migrate.js'
import type { StateStore } from '../src/state/interface.js'
import { LevelStore } from '../src/state/level.js'
import { PgStore } from '../src/state/pg.js'
import { namedLock, testSpace } from '../src/state/spaces.js'
import { copyFile } from 'node:fs/promises'
import { Level } from 'level'
import { createSigner } from '../src/protocol/signing.js'
import { LevelLedger } from '../src/ledger/level.js'
import { StateLedger } from '../src/ledger/state.js'
import type { Ledger } from '../src/ledger/interface.js'
import { startProviderNode, type ProviderNode, type ProviderNodeOptions } from '../src/provider/node.js'
import type { ProviderTerms } from '../src/provider/terms.js'
import { Repo, type Database } from '../src/repo/repo.js'
import { spaces } from '../src/state/spaces.js'
import { testDatabase } from '../test/helpers/postgres.js'
import { dealId } from '../test/ledger/helpers.js'
import { testTerms } from '../test/provider/fixtures.js'
import { ChainAppender, readChain } from '../test/state/chain.js'
import { MiB, parseSize, percentile, sizeLabel } from './measure.js'
import type { SectionContext } from './plan.js'
import { prove } from './provider-proofs.js'
import { seedPiece } from './seed.js'

/** Appends in flight at once, as in bench/ledger.ts. */
const CONCURRENCY = 256

export interface ClusterBench {
  /** the server's settings the figures were taken with */
  postgres: { version: string, fsync: string, synchronousCommit: string }
  /** chained appends/s, 256 callers, group commit, one node */
  pgAppendPerSec: number
  /** the same from two nodes (two pools, two queues) appending to one chain */
  pgTwoNodeAppendPerSec: number
  /** one caller awaiting each append: one transaction (and WAL flush) per entry */
  pgSequentialAppendPerSec: number
  /** the same chained append on LevelDB (LevelStore), 256 callers */
  levelAppendPerSec: number
  /** no-op tasks claimed, run and recorded per second by two nodes of four workers */
  tasksPerSec: number
  /** the real ledger (signed entries and their indexes), 256 callers: StateLedger on PostgreSQL, from one node and from two, and LevelLedger */
  ledger: { pgAppendPerSec: number, pgTwoNodeAppendPerSec: number, levelAppendPerSec: number }
  /** `GET /piece` of a `mib` MiB piece: from the node that holds it, and the first read through a node that does not (streamed from the holder) */
  piece: { mib: number, localMBps: number, remoteFirstReadMBps: number }
  /** proofs of 16 challenges of a `mib` MiB piece held by node A only, warm: answered by A, and through B (A proves, B checks and signs), ms client side */
  proof: { mib: number, challenges: number, rounds: number, seedSeconds: number, holder: { p50Ms: number, p99Ms: number }, remote: { p50Ms: number, p99Ms: number } }
}

async function ledgerAppends (ledgers: Ledger[], n: number, offset: number): Promise<number> {
  const started = performance.now()
  for (let done = 0; done < n;) {
    const wave: Array<Promise<unknown>> = []
    for (; wave.length < CONCURRENCY && done < n; done++) wave.push((ledgers[done % ledgers.length] as Ledger).append('deal-proposed', { deal: dealId(offset + done) }))
    await Promise.all(wave)
  }
  return n / ((performance.now() - started) / 1000)
}

/** The real ledger on PostgreSQL (a database of its own) and on LevelDB. */
async function benchLedger (dir: string, url: string, n: number): Promise<ClusterBench['ledger']> {
  const signer = createSigner(randomBytes(32))
  const pools = [await Db.connect({ url }), await Db.connect({ url })]
  const db: Database = new Level<string, Uint8Array>(join(dir, 'ledger-bench-level'), { valueEncoding: 'view' })
  try {
    const [one, two] = await Promise.all(pools.map(async p => await StateLedger.openOn(new PgStore(p), signer)))
    const pgAppendPerSec = await ledgerAppends([one as StateLedger], n, 0)
    const pgTwoNodeAppendPerSec = await ledgerAppends([one as StateLedger, two as StateLedger], n, n)
    const verified = await (two as StateLedger).verify()
    if (verified.entries !== 2 * n) throw new Error(`the PostgreSQL ledger has ${verified.entries} entries, expected ${2 * n}`)
    await db.open()
    const level = await LevelLedger.open(db, signer)
    const levelAppendPerSec = await ledgerAppends([level], n, 0)
    return { pgAppendPerSec, pgTwoNodeAppendPerSec, levelAppendPerSec }
  } finally {
    for (const p of pools) await p.close()
    await db.close()
  }
}

/**
 * Two provider nodes `a` and `b` of one identity on the cluster database at
 * `url`, repos under `dir` named by `prefix`, one copy of each piece (no copy
 * task brings A's pieces to B); `close` stops them.
 */
async function twoNodes (dir: string, url: string, prefix: string, options: Omit<ProviderNodeOptions, 'cluster'> & { terms?: ProviderTerms } = {}): Promise<{ a: ProviderNode, b: ProviderNode, close: () => Promise<void> }> {
  const repos: Repo[] = []
  const nodes: ProviderNode[] = []
  const close = async (): Promise<void> => {
    for (const node of nodes) await node.close()
    for (const repo of repos) await repo.close()
  }
  try {
    for (const name of ['a', 'b']) {
      const path = join(dir, `${prefix}-${name}`)
      await (await Repo.init(path)).close()
      if (name === 'b') for (const file of ['identity.key', 'config.json']) await copyFile(join(dir, `${prefix}-a`, file), join(path, file))
      const repo = await Repo.open(path)
      repos.push(repo)
      const { terms, ...rest } = options
      nodes.push(await startProviderNode(repo, terms ?? testTerms(), { lifecycle: false, ...rest, cluster: { db: url, name, copies: 1, maintainEveryMs: 0 } }))
    }
  } catch (err) {
    await close()
    throw err
  }
  return { a: nodes[0] as ProviderNode, b: nodes[1] as ProviderNode, close }
}

/** Two provider nodes on `url`: a piece put in A's store, read locally, then through B. */
async function benchRemotePiece (dir: string, url: string, mib: number): Promise<ClusterBench['piece']> {
  const { a, b, close } = await twoNodes(dir, url, 'piece-bench')
  try {
    const chunk = randomBytes(1 << 20)
    const staged = await a.store.stage((async function * () { for (let i = 0; i < mib; i++) yield Buffer.from(chunk) })())
    await staged.commit()
    const piece = staged.piece.cid.toString()
    await a.cluster?.state.state.batch([{ type: 'put', space: spaces.pieceLocations, key: `${piece}/a`, value: new Uint8Array(0) }])
    await a.cluster?.state.state.batch([{ type: 'put', space: spaces.pieces, key: piece, value: dagCBOR.encode({ deal: dealId(1), size: mib << 20 }) }])
    const bytes = mib * (1 << 20)
    // GET /piece as a client reads it: from the node that holds it, and from one that streams it from there
    const read = async (node: ProviderNode): Promise<number> => {
      const started = performance.now()
      const res = await fetch(`${node.url}/piece/${piece}`)
      if (res.status !== 200 || res.body === null) throw new Error(`GET /piece from ${node.url}: HTTP ${res.status}`)
      let n = 0
      for await (const part of res.body) n += part.length
      if (n !== bytes) throw new Error(`read ${n} bytes, expected ${bytes}`)
      return bytes / 1e6 / ((performance.now() - started) / 1000)
    }
    // the holder's page cache warmed first, so both reads find the file in memory
    await read(a)
    const localMBps = await read(a)
    const remoteFirstReadMBps = await read(b)
    return { mib, localMBps, remoteFirstReadMBps }
  } finally {
    await close()
  }
}

/**
 * Proofs of a `mib` MiB piece under an active deal on node A only (seeded as
 * an upload leaves it, with its layer cache: bench/seed.ts), 16 challenges
 * each, answered by A itself and by B, which has A prove it over the internal
 * endpoint and checks the proof before signing it (src/cluster/proofs.ts).
 * After a warm-up of each, `rounds` proofs from each, alternating which node
 * goes first, each verified as `cairn audit` verifies it; B must still not
 * hold the piece at the end.
 */
async function benchRemoteProof (dir: string, url: string, mib: number, rounds: number): Promise<ClusterBench['proof']> {
  const terms = testTerms({ maxPieceSize: 64n << 30n, capacity: 1n << 40n })
  // audits here come far faster than once per proving period
  const { a, b, close } = await twoNodes(dir, url, 'proof-bench', { terms, deals: { proofRate: { burst: 10_000, perSecond: 10_000 } } })
  try {
    const piece = await seedPiece({ deals: a.node, ledger: a.ledger, store: a.store }, new Uint8Array(randomBytes(32)), mib * MiB, 23,
      (cid) => [{ type: 'put', space: spaces.pieceLocations, key: `${cid}/a`, value: new Uint8Array(0) }])
    const provider = a.repo.identity.did
    for (let i = 0; i < 3; i++) {
      await prove(a.url, piece, provider)
      await prove(b.url, piece, provider)
    }
    const holder: number[] = []
    const remote: number[] = []
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? [a, b] : [b, a]
      for (const node of order) (node === a ? holder : remote).push((await prove(node.url, piece, provider)).ms)
    }
    if (await b.store.has(piece.pieceCid)) throw new Error('node B stored the piece it was asked to prove')
    await rm(a.store.path(piece.pieceCid), { force: true })
    return {
      mib,
      challenges: 16,
      rounds,
      seedSeconds: piece.seconds,
      holder: { p50Ms: percentile(holder, 0.5), p99Ms: percentile(holder, 0.99) },
      remote: { p50Ms: percentile(remote, 0.5), p99Ms: percentile(remote, 0.99) }
    }
  } finally {
    await close()
  }
}

async function appendMany (appenders: ChainAppender[], n: number): Promise<number> {
  const payload = randomBytes(100).toString('hex')
  const started = performance.now()
  for (let done = 0; done < n;) {
    const wave: Array<Promise<number>> = []
    for (; wave.length < CONCURRENCY && done < n; done++) wave.push((appenders[done % appenders.length] as ChainAppender).append(`${done} ${payload}`))
    await Promise.all(wave)
  }
  return n / ((performance.now() - started) / 1000)
}

async function check (store: StateStore, name: string, n: number): Promise<void> {
  const chain = await readChain(store, testSpace(name))
  if (chain.length !== n) throw new Error(`chain ${name} has ${chain.length} entries, expected ${n}`)
}

async function drainTasks (url: string, db: Db, n: number): Promise<number> {
  await addTasks(db, 'noop', Array.from({ length: n }, (_, i) => ({ i })))
  const nodes = await Promise.all(['a', 'b'].map(async (name) => {
    const pool = await Db.connect({ url })
    const machine = await Machine.register(pool, { name: `bench-${name}`, address: `bench://${name}` })
    const engine = new TaskEngine(pool, machine, { workers: 4, pollMs: 20 })
    engine.registerTaskType('noop', async () => {})
    return { pool, machine, engine }
  }))
  const started = performance.now()
  for (const node of nodes) node.engine.start()
  try {
    while ((await db.query('SELECT 1 FROM cluster_tasks LIMIT 1')).rowCount !== 0) await new Promise(resolve => setTimeout(resolve, 10))
    return n / ((performance.now() - started) / 1000)
  } finally {
    for (const node of nodes) {
      await node.engine.stop()
      await node.machine.stop()
      await node.pool.close()
    }
  }
}

export async function benchCluster (dir: string, n: number, tasks = 10_000, pieceMiB = 256, proofMiB = 1024, proofRounds = 30): Promise<ClusterBench> {
  const database = await testDatabase({ durable: true })
  const dbs = [await Db.connect({ url: database.url }), await Db.connect({ url: database.url })] as const
  try {
    await migrate(dbs[0])
    const show = async (setting: string): Promise<string> => String((await dbs[0].query(`SHOW ${setting}`)).rows[0]?.[setting])
    const postgres = { version: await show('server_version'), fsync: await show('fsync'), synchronousCommit: await show('synchronous_commit') }
    const stores = dbs.map(db => new PgStore(db))
    const appender = (store: StateStore, name: string): ChainAppender => new ChainAppender(store, testSpace(name), namedLock(name))

    const pgAppendPerSec = await appendMany([appender(stores[0] as PgStore, 'one-node')], n)
    await check(stores[0] as PgStore, 'one-node', n)
    const pgTwoNodeAppendPerSec = await appendMany(stores.map(s => appender(s, 'two-nodes')), n)
    await check(stores[0] as PgStore, 'two-nodes', n)
    const sequential = Math.min(500, n)
    const one = appender(stores[0] as PgStore, 'sequential')
    const started = performance.now()
    for (let i = 0; i < sequential; i++) await one.append(String(i))
    const pgSequentialAppendPerSec = sequential / ((performance.now() - started) / 1000)

    const level = await LevelStore.open(join(dir, 'cluster-bench-level'))
    let levelAppendPerSec: number
    try {
      levelAppendPerSec = await appendMany([appender(level, 'level')], n)
      await check(level, 'level', n)
    } finally {
      await level.close()
    }
    const tasksPerSec = await drainTasks(database.url, dbs[0], tasks)
    const done = (await dbs[0].query<{ n: number }>("SELECT count(*)::int AS n FROM cluster_task_history WHERE result = 'done'")).rows[0]?.n
    if (done !== tasks) throw new Error(`${String(done)} tasks recorded done, expected ${tasks}`)
    const ledgerDatabase = await testDatabase({ durable: true })
    let ledger: ClusterBench['ledger']
    try {
      const pool = await Db.connect({ url: ledgerDatabase.url })
      await migrate(pool).finally(async () => { await pool.close() })
      ledger = await benchLedger(dir, ledgerDatabase.url, Math.min(n, 5000))
    } finally {
      await ledgerDatabase.cleanup()
    }
    const pieceDatabase = await testDatabase({ durable: true })
    let piece: ClusterBench['piece']
    try {
      piece = await benchRemotePiece(dir, pieceDatabase.url, pieceMiB)
    } finally {
      await pieceDatabase.cleanup()
    }
    const proofDatabase = await testDatabase({ durable: true })
    let proof: ClusterBench['proof']
    try {
      proof = await benchRemoteProof(dir, proofDatabase.url, proofMiB, proofRounds)
    } finally {
      await proofDatabase.cleanup()
    }
    return { postgres, pgAppendPerSec, pgTwoNodeAppendPerSec, pgSequentialAppendPerSec, levelAppendPerSec, tasksPerSec, ledger, piece, proof }
  } finally {
    for (const db of dbs) await db.close()
    await database.cleanup()
  }
}

function describe (r: ClusterBench, n: number, tasks: number): string[] {
  return [
    `cluster, chained appends, ${n} entries (PostgreSQL ${r.postgres.version}, fsync ${r.postgres.fsync}, synchronous_commit ${r.postgres.synchronousCommit}): ` +
      `PostgreSQL ${r.pgAppendPerSec.toFixed(0)}/s (target ≥ 1,000), two nodes ${r.pgTwoNodeAppendPerSec.toFixed(0)}/s, ` +
      `one caller at a time ${r.pgSequentialAppendPerSec.toFixed(0)}/s; LevelDB ${r.levelAppendPerSec.toFixed(0)}/s`,
    `cluster, tasks, ${tasks} no-ops on two nodes of four workers: ${r.tasksPerSec.toFixed(0)}/s claimed, run and recorded (target ≥ 1,000)`,
    `cluster, ledger (signed entries and indexes): PostgreSQL ${r.ledger.pgAppendPerSec.toFixed(0)}/s, two nodes ${r.ledger.pgTwoNodeAppendPerSec.toFixed(0)}/s; LevelDB ${r.ledger.levelAppendPerSec.toFixed(0)}/s`,
    `cluster, GET /piece of ${r.piece.mib} MiB: from its holder ${r.piece.localMBps.toFixed(0)} MB/s; through a node without it (streamed from the holder) ${r.piece.remoteFirstReadMBps.toFixed(0)} MB/s (${(100 * r.piece.remoteFirstReadMBps / r.piece.localMBps).toFixed(0)} % of local; target ≥ 50 %)`,
    `cluster, proof of ${r.proof.challenges} challenges on ${sizeLabel(r.proof.mib * MiB)}, warm, ${r.proof.rounds} rounds: through a node without the piece (the holder proves, the node checks and signs) p50 ${r.proof.remote.p50Ms.toFixed(1)} ms, p99 ${r.proof.remote.p99Ms.toFixed(1)} ms (target p50 ≤ 50 ms); ` +
      `from the holder p50 ${r.proof.holder.p50Ms.toFixed(1)} ms, p99 ${r.proof.holder.p99Ms.toFixed(1)} ms`
  ]
}

/** The `cluster` section of `npm run bench` (`--no-cluster`). */
export async function clusterSection (ctx: SectionContext): Promise<{ result: ClusterBench, lines: string[] }> {
  const n = 20_000
  const tasks = 10_000
  const proofSize = parseSize(ctx.opt('--cluster-proof-size') ?? '1G')
  const result = await benchCluster(ctx.work, n, tasks, 256, Math.ceil(proofSize / MiB), Number(ctx.opt('--cluster-proof-rounds') ?? 30))
  return { result, lines: describe(result, n, tasks) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 20_000)
  const tasks = Number(process.argv[3] ?? 10_000)
  const pieceMiB = Number(process.argv[4] ?? 256)
  const proofMiB = Number(process.argv[5] ?? 1024)
  const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-cluster-'))
  try {
    console.log(describe(await benchCluster(dir, n, tasks, pieceMiB, proofMiB), n, tasks).join('\n'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
