/**
 * `cairn cluster status|drain` (docs/cluster.md "Running a cluster"): read
 * and steer a cluster through its database — the URL from `--db`, else the
 * `db` the repo's config.json gives `provider start`.
 */
import { CairnError } from '../errors.js'
import { Db } from '../postgres/db.js'
import { migrate } from '../postgres/migrate.js'
import { effectiveSettings } from '../provider/options.js'
import { resolveRepoPath } from '../repo/repo.js'
import { PgStore } from '../state/pg.js'
import { clusterStatus, drainNode, type ClusterStatus } from '../cluster/work.js'
import { Output, type GlobalOptions } from './output.js'

type ClusterOptions = GlobalOptions & { db?: string, copies?: string }

async function withCluster<T> (options: ClusterOptions, fn: (cluster: { db: Db, state: PgStore }, copies: number) => Promise<T>): Promise<T> {
  const { settings } = await effectiveSettings(resolveRepoPath(options.repo), { db: options.db, copies: options.copies })
  if (settings.db === undefined) throw new CairnError('ERR_INVALID_ARGUMENT', 'no cluster database: give --db postgres://… or set "db" in the provider section of config.json')
  const db = await Db.connect({ url: settings.db, max: 2 })
  try {
    await migrate(db)
    return await fn({ db, state: new PgStore(db) }, settings.copies)
  } finally {
    await db.close()
  }
}

function seconds (ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

function statusText (s: ClusterStatus): string {
  const lines = [`identity  ${s.identity ?? '(no node has joined yet)'}`, `pieces    ${s.pieces.total}, ${s.pieces.underCopied} on fewer nodes than wanted`, 'nodes']
  for (const m of s.machines) lines.push(`  ${m.name.padEnd(24)} ${m.address.padEnd(28)} ${String(m.pieces).padStart(6)} pieces  heartbeat ${seconds(m.silentMs)} ago${m.drained ? '  drained' : ''}`)
  if (s.machines.length === 0) lines.push('  none running')
  for (const a of s.absent) lines.push(`  ${a.name.padEnd(24)} ${'(not running)'.padEnd(28)} ${String(a.pieces).padStart(6)} pieces`)
  lines.push('tasks')
  for (const task of s.tasks) lines.push(`  ${task.type.padEnd(28)} ${task.state.padEnd(9)} ${task.count}`)
  if (s.tasks.length === 0) lines.push('  none')
  return lines.join('\n')
}

export async function status (_positional: string[], options: ClusterOptions): Promise<void> {
  const out = new Output(options)
  const s = await withCluster(options, async (cluster, copies) => await clusterStatus(cluster, copies))
  out.result(s, () => statusText(s))
}

export async function drain (positional: string[], options: ClusterOptions): Promise<void> {
  const out = new Output(options)
  const node = positional[0]
  if (node === undefined || node === '') throw new CairnError('ERR_INVALID_ARGUMENT', 'name the node to drain')
  const result = await withCluster(options, async (cluster) => await drainNode(cluster, node))
  out.result(result, () => `node ${result.node} drained: it takes no more tasks; ${result.pieces} pieces to copy elsewhere (${result.tasks} copy tasks posted)`)
}
