/** A migrated test database, and node processes to run against it. */
import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as dagJson from '@ipld/dag-json'
import { Machine } from '../../src/cluster/machines.js'
import { spaces } from '../../src/state/spaces.js'
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

/**
 * A fake cluster node named `fake` that holds `piece` as far as `asker`'s
 * cluster knows, and is heard from "later" than any real node, so it is asked
 * first: it passes every request on to `holder` as it came (same signed
 * headers) and flips a bit of the first byte of the `at`-th leaf of each
 * answer of the internal proof route; piece reads (a node scrubbing the
 * fake's copy) pass as they are. `asked()` counts the proof requests it got.
 */
export async function flippingHolder (t: ExecutionContext, holder: ProviderNode, asker: ProviderNode, piece: string, at: number): Promise<{ asked: () => number }> {
  let asked = 0
  const fake = createServer((req, res) => {
    const proofs = req.url?.startsWith('/internal/v1/proofs/') === true
    if (proofs) asked++
    const forward = httpRequest(holder.url + (req.url ?? ''), { method: 'GET', headers: req.headers }, (upstream: IncomingMessage) => {
      const parts: Buffer[] = []
      upstream.on('data', (d: Buffer) => parts.push(d))
      upstream.on('end', () => {
        const body = Buffer.concat(parts)
        if (upstream.statusCode !== 200 || !proofs) { res.writeHead(upstream.statusCode ?? 500, upstream.headers).end(body); return }
        const answer = dagJson.decode(body) as { proofs: Array<{ leaf: Uint8Array }> }
        const leaf = answer.proofs[at]?.leaf as Uint8Array
        leaf[0] = (leaf[0] as number) ^ 1
        res.writeHead(200, { 'content-type': 'application/json' }).end(dagJson.encode(answer))
      })
    })
    forward.on('error', () => { res.destroy() })
    forward.end()
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { fake.close() })
  const db = asker.cluster!.state.db
  const machine = await Machine.register(db, { name: 'fake', address: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, deadAfterMs: 3600_000 })
  machine.silence()
  await db.query("UPDATE cluster_machines SET heartbeat_at = now() + interval '1 hour' WHERE name = 'fake'")
  await asker.cluster!.state.state.batch([{ type: 'put', space: spaces.pieceLocations, key: `${piece}/fake`, value: new Uint8Array(0) }])
  return { asked: () => asked }
}
