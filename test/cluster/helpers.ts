/** A migrated test database, and node processes to run against it. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Db } from '../../src/postgres/db.js'
import { migrate } from '../../src/postgres/migrate.js'
import { testDatabase } from '../helpers/postgres.js'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { tempDir } from '../helpers/cli.js'
import type { ProviderTerms } from '../../src/provider/terms.js'
import { testTerms } from '../provider/fixtures.js'

export interface Cluster {
  url: string
  db: Db
  cleanup (): Promise<void>
}

export async function clusterDatabase (): Promise<Cluster> {
  const database = await testDatabase()
  const db = await Db.connect({ url: database.url })
  await migrate(db)
  return { url: database.url, db, cleanup: async () => { await db.close(); await database.cleanup() } }
}

export interface NodeProcess {
  child: ChildProcess
  output (): string
  /** resolves once the output matches; rejects if the process exits first, or after `timeoutMs` */
  waitFor (pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

const TASK_NODE = fileURLToPath(new URL('./task-node.js', import.meta.url))

export function startTaskNode (url: string, name: string, options: { workers: number, deadAfterMs: number, mode: 'noop' | 'hold' }): NodeProcess {
  const child = spawn(process.execPath, [TASK_NODE, url, name, String(options.workers), String(options.deadAfterMs), options.mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  // a test that fails must not leave a node behind
  process.once('exit', () => { child.kill('SIGKILL') })
  return {
    child,
    output: () => out,
    exited,
    async waitFor (pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      let gone = false
      void exited.then(() => { gone = true })
      for (;;) {
        const m = pattern.exec(out)
        if (m !== null) return m
        if (gone) throw new Error(`node ${name} exited before printing ${String(pattern)}: ${out.slice(-500)}`)
        if (Date.now() > deadline) throw new Error(`node ${name} did not print ${String(pattern)} within ${timeoutMs} ms`)
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    }
  }
}

/** Polls `check` until it returns true (every 50 ms, for at most `timeoutMs`). */
export async function until (check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/**
 * Two provider nodes `a` and `b` in this process, on a fresh database, with
 * one identity (b's repo gets a's key); `close` stops them and removes it all.
 */
export async function twoProviderNodes (prefix: string, copies: number, terms: Partial<ProviderTerms> = {}): Promise<{ a: ProviderNode, b: ProviderNode, close (): Promise<void> }> {
  const dir = await tempDir(prefix)
  const database = await testDatabase()
  const paths = [join(dir.path, 'a'), join(dir.path, 'b')] as const
  for (const path of paths) await Repo.init(path).then(async r => { await r.close() })
  for (const file of ['identity.key', 'config.json']) await copyFile(join(paths[0], file), join(paths[1], file))
  const repos = [await Repo.open(paths[0]), await Repo.open(paths[1])]
  const nodes: ProviderNode[] = []
  const close = async (): Promise<void> => {
    for (const n of nodes) await n.close().catch(() => {})
    for (const r of repos) await r.close().catch(() => {})
    await database.cleanup()
    await dir.cleanup()
  }
  try {
    for (const [i, name] of ['a', 'b'].entries()) {
      nodes.push(await startProviderNode(repos[i] as Repo, testTerms(terms), { lifecycle: false, cluster: { db: database.url, name, copies, pollMs: 50, maintainEveryMs: 0 } }))
    }
  } catch (err) {
    await close()
    throw err
  }
  const [a, b] = nodes as [ProviderNode, ProviderNode]
  return { a, b, close }
}
