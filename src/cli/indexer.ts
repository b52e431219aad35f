/**
 * `cairn indexer start`: an indexer in the foreground until SIGINT/SIGTERM
 * (docs/routing.md). Providers announce advertisements to it; clients ask it
 * who serves a CID over the Delegated Routing V1 HTTP API. The index lives in
 * the repo's LevelDB.
 */
import { stderrLogger } from '../provider/server.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { LevelIndexStore } from '../routing/level-index.js'
import { createIndexerServer } from '../routing/server.js'
import { Output, type GlobalOptions } from './output.js'
import { parseListen } from '../config/values.js'

interface StartOptions extends GlobalOptions {
  listen?: string
}

export async function start (_positional: string[], options: StartOptions): Promise<void> {
  const out = new Output(options)
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:7480')
  const repo = await Repo.open(resolveRepoPath(options.repo))
  const log = stderrLogger
  try {
    const store = await LevelIndexStore.open(await repo.db())
    const service = createIndexerServer({ store, log })
    const url = await service.listen(host, port)
    const stats = await store.stats()
    log('indexer-started', { url, repo: repo.path, providers: stats.providers, multihashes: stats.multihashes })
    out.result({ url, routing: `${url}/routing/v1`, ingest: `${url}/ingest/v1/advertisements` }, () => options.quiet === true ? url : `indexer listening on ${url} (routing: ${url}/routing/v1, ingest: ${url}/ingest/v1/advertisements)`)
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'))
      process.once('SIGTERM', () => resolve('SIGTERM'))
    })
    log('indexer-stopping', { signal })
    await service.close()
    await store.close()
    log('indexer-stopped')
  } finally {
    await repo.close()
  }
}

export default start
