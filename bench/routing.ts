/**
 * Content routing (docs/routing.md): provider lookups at an indexer holding
 * a million multihashes, and announcing one 1 GiB DAG's blocks end to end.
 *
 * - The index is built through the indexer's real ingest path (advertisement
 *   CARs verified block by block, signatures checked, each applied in one
 *   batch), in-process: one deal of 4,100 multihashes per advertisement, as a
 *   1 GiB DAG of 256 KiB chunks has, spread over 16 providers.
 * - Lookups: `cairn indexer start` runs in its own process on that repo and
 *   is asked `GET /routing/v1/providers/{cid}` over keep-alive HTTP by
 *   `--concurrency` callers, 90 % for indexed CIDs, 10 % for CIDs nobody
 *   provides; lookups/s and latency percentiles per request.
 * - Announce: a provider's announcer (real chain on LevelDB, real HTTP) is
 *   handed a deal of 4,100 blocks; the time until the indexer has taken the
 *   advertisement, then a lookup confirms it.
 *
 * - PostgreSQL: the same build and lookups with the index in PostgreSQL
 *   (`cairn indexer start --db`), on a durable throwaway server (or
 *   CAIRN_BENCH_PG_URL), at a smaller count by default (`--pg-multihashes`,
 *   100k; 0 skips it).
 *
 *   node dist/bench/routing.js [--multihashes 1M] [--lookups 20000] [--concurrency 16] [--rounds 5] [--pg-multihashes 100k]
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { Agent, request } from 'undici'
import { sha256 } from '../src/car/hash.js'
import { Repo } from '../src/repo/repo.js'
import { generateSecretKey, identityFromSecret, type Identity } from '../src/repo/identity.js'
import { encodeMetadata, entryChunks, signAdvertisement, TRANSPORT_IPFS_GATEWAY_HTTP } from '../src/routing/advertisement.js'
import { Announcer } from '../src/routing/announcer.js'
import { encodeFramePrefix, encodeHeader } from '../src/car/index.js'
import { Db } from '../src/postgres/db.js'
import { migrate } from '../src/postgres/migrate.js'
import { Ingester } from '../src/routing/ingest.js'
import type { IndexStore } from '../src/routing/interface.js'
import { LevelIndexStore } from '../src/routing/level-index.js'
import { PgIndexStore } from '../src/routing/pg-index.js'
import { testDatabase } from '../test/helpers/postgres.js'
import type { Database } from '../src/repo/repo.js'
import type { SectionContext } from './plan.js'

const BIN = fileURLToPath(new URL('../../bin/cairn.js', import.meta.url))
/** blocks of a 1 GiB file in 256 KiB chunks: 4,096 leaves and their parents */
const DAG_BLOCKS = 4100
const PROVIDERS = 16

export interface RoutingBench extends LookupFigures {
  multihashes: number
  providers: number
  advertisements: number
  buildSeconds: number
  buildMultihashesPerSec: number
  /** bytes of the LevelDB directory after the build */
  indexBytes: number
  announce: { multihashes: number, rounds: number, p50Ms: number, minMs: number, maxMs: number }
  /** the index in PostgreSQL (`indexer start --db`); absent when skipped */
  pg?: PgRoutingBench
}

export interface PgRoutingBench extends LookupFigures {
  multihashes: number
  advertisements: number
  buildSeconds: number
  buildMultihashesPerSec: number
}

/** Lookups against a built index: how many, from how many callers, how fast, and whether each found its provider. */
export interface LookupFigures {
  lookups: number
  concurrency: number
  lookupsPerSec: number
  lookupP50Ms: number
  lookupP99Ms: number
  lookupMaxMs: number
  /** share of the indexed CIDs asked for that came back with a provider (must be 1) */
  foundRatio: number
}

export interface RoutingBenchOptions {
  multihashes?: number
  lookups?: number
  concurrency?: number
  rounds?: number
  /** multihashes of the PostgreSQL run (default 100,000; 0 skips it) */
  pgMultihashes?: number
}

function randomCid (): CID {
  return CID.createV1(0x55, Digest.create(0x12, sha256(randomBytes(32))))
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN
}

async function directoryBytes (dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size
  return total
}

/** Builds the index through the ingest path; returns a sample of the indexed CIDs. */
async function build (store: IndexStore, multihashes: number): Promise<{ sample: CID[], advertisements: number, seconds: number }> {
  const ingester = new Ingester(store)
  const providers: Array<{ id: Identity, head: CID | null }> = Array.from({ length: PROVIDERS }, () => ({ id: identityFromSecret(generateSecretKey()), head: null }))
  const metadata = encodeMetadata([TRANSPORT_IPFS_GATEWAY_HTTP])
  const sample: CID[] = []
  let advertisements = 0
  const started = performance.now()
  for (let done = 0; done < multihashes; advertisements++) {
    const provider = providers[advertisements % PROVIDERS] as { id: Identity, head: CID | null }
    const n = Math.min(DAG_BLOCKS, multihashes - done)
    const cids = Array.from({ length: n }, randomCid)
    if (sample.length < 20_000) sample.push(...cids.slice(0, 100))
    const chunks = entryChunks(cids.map(c => c.multihash.bytes))
    const { block } = signAdvertisement(provider.id, {
      previous: provider.head,
      addresses: [`/ip4/127.0.0.1/tcp/${7000 + advertisements % PROVIDERS}/http`],
      contextId: randomCid().bytes,
      metadata,
      entries: chunks[0]?.cid ?? null,
      isRm: false,
      at: Date.now()
    })
    const parts: Uint8Array[] = [encodeHeader([block.cid]), encodeFramePrefix(block.cid, block.bytes.length), block.bytes]
    for (const c of chunks) parts.push(encodeFramePrefix(c.cid, c.bytes.length), c.bytes)
    await ingester.ingest((async function * () { yield Buffer.concat(parts) })())
    provider.head = block.cid
    done += n
  }
  const seconds = (performance.now() - started) / 1000
  await store.close()
  return { sample, advertisements, seconds }
}

/** `cairn indexer start` (on a repo, or with `--db`) in its own process; resolves to its URL and a stop function. */
async function startIndexer (where: string[]): Promise<{ url: string, stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, '--json', 'indexer', 'start', '--listen', '127.0.0.1:0', ...where], { stdio: ['ignore', 'pipe', 'ignore'] })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { url: string }).url)
    })
    child.once('exit', (code) => reject(new Error(`indexer exited with ${String(code)}`)))
  })
  return {
    url,
    stop: async () => {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGINT')
      await exited
    }
  }
}

async function providersOf (url: string, agent: Agent, cid: CID): Promise<number> {
  const res = await request(`${url}/routing/v1/providers/${cid.toString()}`, { dispatcher: agent })
  const body = await res.body.json() as { Providers: unknown[] }
  return body.Providers.length
}

/** `lookups` lookups from `concurrency` keep-alive callers, 90 % for indexed CIDs (from `sample`), 10 % for CIDs nobody provides. */
async function lookupRun (url: string, agent: Agent, sample: CID[], lookups: number, concurrency: number): Promise<LookupFigures> {
  // warm the connections and the process
  for (let i = 0; i < 200; i++) await providersOf(url, agent, sample[i % sample.length] as CID)
  const latencies: number[] = []
  let found = 0
  let indexed = 0
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < lookups) {
      const i = next++
      const hit = i % 10 !== 9
      const cid = hit ? sample[(i * 7919) % sample.length] as CID : randomCid()
      const t0 = performance.now()
      const n = await providersOf(url, agent, cid)
      latencies.push(performance.now() - t0)
      if (hit) { indexed++; if (n > 0) found++ }
    }
  }))
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    lookups,
    concurrency,
    lookupsPerSec: Math.round(lookups / seconds),
    lookupP50Ms: percentile(latencies, 0.5),
    lookupP99Ms: percentile(latencies, 0.99),
    lookupMaxMs: latencies.at(-1) ?? NaN,
    foundRatio: found / indexed
  }
}

/** The index in PostgreSQL: built through the ingest path, then asked through `cairn indexer start --db`. */
export async function benchRoutingPg (multihashes: number, lookups: number, concurrency: number): Promise<PgRoutingBench> {
  const database = await testDatabase({ durable: true })
  try {
    const db = await Db.connect({ url: database.url, max: 4 })
    let built: { sample: CID[], advertisements: number, seconds: number }
    try {
      await migrate(db)
      built = await build(await PgIndexStore.open(db), multihashes)
    } finally {
      await db.close()
    }
    process.stderr.write(`  routing (PostgreSQL): indexed ${multihashes} multihashes in ${built.advertisements} advertisements, ${built.seconds.toFixed(1)} s\n`)
    const indexer = await startIndexer(['--db', database.url])
    const agent = new Agent({ connections: concurrency, pipelining: 1 })
    try {
      return {
        multihashes,
        advertisements: built.advertisements,
        buildSeconds: built.seconds,
        buildMultihashesPerSec: Math.round(multihashes / built.seconds),
        ...await lookupRun(indexer.url, agent, built.sample, lookups, concurrency)
      }
    } finally {
      await agent.close()
      await indexer.stop()
    }
  } finally {
    await database.cleanup()
  }
}

export async function benchRouting (work: string, options: RoutingBenchOptions = {}): Promise<RoutingBench> {
  const multihashes = options.multihashes ?? 1_000_000
  const lookups = options.lookups ?? 20_000
  const concurrency = options.concurrency ?? 16
  const rounds = options.rounds ?? 5
  const pgMultihashes = options.pgMultihashes ?? 100_000
  const dir = await mkdtemp(join(work, 'routing-'))
  try {
    const repoPath = join(dir, 'indexer')
    const repo = await Repo.init(repoPath)
    const built = await build(await LevelIndexStore.open(await repo.db()), multihashes)
    await repo.close()
    const indexBytes = await directoryBytes(join(repoPath, 'db'))
    process.stderr.write(`  routing: indexed ${multihashes} multihashes in ${built.advertisements} advertisements, ${built.seconds.toFixed(1)} s\n`)

    const indexer = await startIndexer(['--repo', repoPath])
    const agent = new Agent({ connections: concurrency, pipelining: 1 })
    try {
      const ask = async (cid: CID): Promise<number> => await providersOf(indexer.url, agent, cid)
      const looked = await lookupRun(indexer.url, agent, built.sample, lookups, concurrency)

      // announcing a 1 GiB DAG's blocks, end to end, to the same indexer
      const db: Database = new Level<string, Uint8Array>(join(dir, 'provider'), { valueEncoding: 'view' })
      await db.open()
      const announcer = await Announcer.start(db, identityFromSecret(generateSecretKey()), { indexers: [indexer.url], addresses: ['/ip4/127.0.0.1/tcp/7470/http'], reconcileIntervalMs: 0 })
      const times: number[] = []
      try {
        await announcer.settled()
        for (let r = 0; r < rounds; r++) {
          const blocks = Array.from({ length: DAG_BLOCKS }, randomCid)
          const t0 = performance.now()
          announcer.dealActive(randomCid().toString(), blocks)
          await announcer.settled(AbortSignal.timeout(120_000))
          times.push(performance.now() - t0)
          if (await ask(blocks[DAG_BLOCKS - 1] as CID) !== 1) throw new Error('an announced block is not found at the indexer')
        }
      } finally {
        await announcer.close()
        await db.close()
      }
      times.sort((a, b) => a - b)
      return {
        multihashes,
        providers: PROVIDERS,
        advertisements: built.advertisements,
        buildSeconds: built.seconds,
        buildMultihashesPerSec: Math.round(multihashes / built.seconds),
        indexBytes,
        ...looked,
        announce: { multihashes: DAG_BLOCKS, rounds, p50Ms: percentile(times, 0.5), minMs: times[0] ?? NaN, maxMs: times.at(-1) ?? NaN },
        ...(pgMultihashes > 0 ? { pg: await benchRoutingPg(pgMultihashes, lookups, concurrency) } : {})
      }
    } finally {
      await agent.close()
      await indexer.stop()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The `routing` section of `npm run bench` (`--routing-multihashes 1M`, `--no-routing`). */
export async function routingSection (ctx: SectionContext): Promise<{ result: RoutingBench, lines: string[] }> {
  const result = await benchRouting(ctx.work, { multihashes: parseCount(ctx.opt('--routing-multihashes') ?? '1M'), pgMultihashes: parseCount(ctx.opt('--routing-pg-multihashes') ?? '100k') })
  const r = result
  const pg = r.pg
  return {
    result,
    lines: [
      `routing, an indexer holding ${r.multihashes} multihashes from ${r.providers} providers (${r.advertisements} advertisements, built in ${r.buildSeconds.toFixed(1)} s, ${r.buildMultihashesPerSec} multihashes/s, ${(r.indexBytes / 1048576).toFixed(0)} MiB): ` +
        `${r.lookupsPerSec} lookups/s from ${r.concurrency} callers, p50 ${r.lookupP50Ms.toFixed(2)} ms, p99 ${r.lookupP99Ms.toFixed(2)} ms, max ${r.lookupMaxMs.toFixed(1)} ms, ${(r.foundRatio * 100).toFixed(1)} % of indexed CIDs found`,
      `routing, announcing ${r.announce.multihashes} blocks end to end (${r.announce.rounds} rounds): p50 ${r.announce.p50Ms.toFixed(0)} ms (${r.announce.minMs.toFixed(0)}–${r.announce.maxMs.toFixed(0)})`,
      ...(pg === undefined
        ? []
        : [`routing on PostgreSQL (indexer start --db), ${pg.multihashes} multihashes (${pg.advertisements} advertisements, built in ${pg.buildSeconds.toFixed(1)} s, ${pg.buildMultihashesPerSec} multihashes/s): ` +
          `${pg.lookupsPerSec} lookups/s from ${pg.concurrency} callers, p50 ${pg.lookupP50Ms.toFixed(2)} ms, p99 ${pg.lookupP99Ms.toFixed(2)} ms, max ${pg.lookupMaxMs.toFixed(1)} ms, ${(pg.foundRatio * 100).toFixed(1)} % of indexed CIDs found`])
    ]
  }
}

/** `1M`, `250k` or a plain number. */
export function parseCount (text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim())
  if (m === null) throw new Error(`not a count: ${text}`)
  return Math.round(Number(m[1]) * ({ k: 1e3, m: 1e6 }[(m[2] ?? '').toLowerCase()] ?? 1))
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const opt = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined }
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-routing-'))
  try {
    const result = await benchRouting(work, {
      multihashes: parseCount(opt('--multihashes') ?? '1M'),
      lookups: parseCount(opt('--lookups') ?? '20000'),
      concurrency: Number(opt('--concurrency') ?? 16),
      rounds: Number(opt('--rounds') ?? 5),
      pgMultihashes: parseCount(opt('--pg-multihashes') ?? '100k')
    })
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main()
