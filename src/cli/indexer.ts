/**
 * `cairn indexer start`: an indexer in the foreground until SIGINT/SIGTERM
 * (docs/routing.md). Providers announce advertisements to it; clients ask it
 * who serves a CID over the Delegated Routing V1 HTTP API. The index lives in
 * the repo's LevelDB, or with `--db postgres://…` in that PostgreSQL database
 * (src/routing/pg-index.ts; its schema is migrated at start).
 */
import { stderrLogger } from '../provider/server.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import type { IndexStore } from '../routing/interface.js'
import { LevelIndexStore } from '../routing/level-index.js'
import { createIndexerServer } from '../routing/server.js'
import { Output, type GlobalOptions } from './output.js'
import { parseListen } from '../config/values.js'

interface StartOptions extends GlobalOptions {
  listen?: string
  db?: string
}

/** The PostgreSQL index on `url` (pg is loaded only when asked for); ERR_DB_URL, ERR_DB_UNREACHABLE, … on failure. */
async function openPg (url: string): Promise<{ store: IndexStore, where: string, close: () => Promise<void> }> {
  const { Db } = await import('../postgres/db.js')
  const { migrate } = await import('../postgres/migrate.js')
  const { PgIndexStore } = await import('../routing/pg-index.js')
  const db = await Db.connect({ url, max: 8, applicationName: 'cairn-indexer' })
  try {
    await migrate(db)
    const store = await PgIndexStore.open(db)
    return { store, where: db.where, close: async () => { await store.close(); await db.close() } }
  } catch (err) {
    await db.close()
    throw err
  }
}

async function openLevel (repo: Repo): Promise<{ store: IndexStore, where: undefined, close: () => Promise<void> }> {
  const store = await LevelIndexStore.open(await repo.db())
  return { store, where: undefined, close: async () => { await store.close() } }
}

export async function start (_positional: string[], options: StartOptions): Promise<void> {
  const out = new Output(options)
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:7480')
  // with --db the index is in PostgreSQL and no repo is needed
  const repo = options.db === undefined ? await Repo.open(resolveRepoPath(options.repo)) : undefined
  const log = stderrLogger
  try {
    const index = repo === undefined
      ? await openPg(options.db as string)
      : await openLevel(repo)
    const store = index.store
    const service = createIndexerServer({ store, log })
    const url = await service.listen(host, port).catch(async (err: unknown) => { await index.close(); throw err })
    const stats = await store.stats()
    log('indexer-started', { url, ...(repo !== undefined ? { repo: repo.path } : { db: index.where }), providers: stats.providers, multihashes: stats.multihashes })
    out.result({ url, routing: `${url}/routing/v1`, ingest: `${url}/ingest/v1/advertisements` }, () => options.quiet === true ? url : `indexer listening on ${url} (routing: ${url}/routing/v1, ingest: ${url}/ingest/v1/advertisements)`)
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'))
      process.once('SIGTERM', () => resolve('SIGTERM'))
    })
    log('indexer-stopping', { signal })
    await service.close()
    await index.close()
    log('indexer-stopped')
  } finally {
    await repo?.close()
  }
}

export default start
