/**
 * Three `cairn provider start --db` processes on one PostgreSQL database, as
 * an operator runs a cluster (docs/cluster.md "Running a cluster"): deals made
 * through different nodes, each piece copied to a second node, every piece
 * served by every node byte for byte, a node killed with SIGKILL (once in the
 * middle of an upload, once outright) while the others go on, the
 * interrupted deal resumed at another node, audits answered by nodes the
 * deals were not made with, the killed node's start-up recovery, and one
 * ledger chain that verifies. Also: a node with another key is refused.
 */
import test from 'ava'
import { createHash } from 'node:crypto'
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { cairn, tempDir } from '../helpers/cli.js'
import { testDatabase } from '../helpers/postgres.js'
import { startProviderCli, type RunningProvider } from '../helpers/provider.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

interface Status {
  identity: string
  machines: Array<{ name: string, pieces: number }>
  pieces: { total: number, underCopied: number }
  tasks: Array<{ type: string, state: string, count: number }>
}

async function init (dir: string, name: string, identityFrom?: string): Promise<string> {
  const repo = join(dir, name)
  const made = await cairn(['init', '--repo', repo])
  if (made.code !== 0) throw new Error(made.stderr)
  if (identityFrom !== undefined) {
    // the same identity in every node's repo (docs/cluster.md): its key and the config naming it
    await copyFile(join(identityFrom, 'identity.key'), join(repo, 'identity.key'))
    await copyFile(join(identityFrom, 'config.json'), join(repo, 'config.json'))
  }
  return repo
}

async function status (db: string): Promise<Status> {
  const r = await cairn(['cluster', 'status', '--db', db, '--json', '--repo', '/nonexistent-cairn-repo'])
  if (r.code !== 0) throw new Error(`cluster status: ${r.stderr}`)
  return JSON.parse(r.stdout) as Status
}

/** Waits (bounded) until `check` holds for the cluster's status. */
async function until (db: string, what: string, check: (s: Status) => boolean, tries = 120): Promise<Status> {
  let last: Status | undefined
  for (let i = 0; i < tries; i++) {
    last = await status(db)
    if (check(last)) return last
    await sleep(500)
  }
  throw new Error(`${what}: never happened; last status ${JSON.stringify(last)}`)
}

async function fetchBytes (url: string): Promise<Uint8Array> {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`)
  return new Uint8Array(await res.arrayBuffer())
}

/** The deal ids in `cairn deals --json` output (an array, or one object per line). */
function pendingDealIds (stdout: string): string[] {
  const text = stdout.trim()
  if (text === '') return []
  const rows = text.startsWith('[') ? JSON.parse(text) as Array<{ id: string }> : text.split('\n').map(line => JSON.parse(line) as { id: string })
  return rows.map(r => r.id)
}

async function deal (client: string, file: string, provider: string): Promise<{ root: string, pieceCid: string, id: string }> {
  const root = (await cairn(['add', file, '-Q', '--repo', client])).stdout.trim()
  const made = await cairn(['deal', root, '--repo', client, '--provider', provider, '--json', '--duration', '30d'], { timeoutMs: 120_000 })
  if (made.code !== 0) throw new Error(`deal through ${provider}: ${made.stderr}`)
  const result = JSON.parse(made.stdout.trim().split('\n').at(-1) as string) as { id: string, pieceCid: string }
  return { root, pieceCid: result.pieceCid, id: result.id }
}

test('three nodes on one database: deals through any node, pieces on two nodes, a node killed mid-upload and outright, everything still served, one chain', async (t) => {
  const dir = await tempDir('cairn-cluster-')
  const database = await testDatabase()
  const running: RunningProvider[] = []
  t.teardown(async () => {
    for (const p of running) await p.stop().catch(() => {})
    await database.cleanup()
    await dir.cleanup()
  })
  const db = database.url
  const a = await init(dir.path, 'a')
  const b = await init(dir.path, 'b', a)
  const c = await init(dir.path, 'c', a)
  const cluster = ['--db', db, '--dead-after', '3s', '--copies', '2', '--retention-grace', '0']
  const start = async (repo: string, name: string, env: Record<string, string> = {}): Promise<RunningProvider> => {
    const p = await startProviderCli(repo, [...cluster, '--node', name], env)
    running.push(p)
    return p
  }
  const nodeA = await start(a, 'a')
  const nodeB = await start(b, 'b')
  const nodeC = await start(c, 'c')
  t.is(nodeA.did, nodeB.did)

  // a node with a key of its own is refused, and says why
  const stranger = await init(dir.path, 'stranger')
  const refused = await cairn(['provider', 'start', '--repo', stranger, '--listen', '127.0.0.1:0', '--node', 'x', '--db', db], { timeoutMs: 60_000 })
  t.is(refused.code, 5, refused.stderr)
  t.regex(refused.stderr, /^error ERR_CLUSTER_IDENTITY: /m)

  const client = await init(dir.path, 'client')
  const files: Record<string, string> = {}
  for (const name of ['one', 'two', 'three']) {
    files[name] = join(dir.path, `${name}.bin`)
    await writeFile(files[name], Buffer.concat([Buffer.from(`${name}\n`), Buffer.alloc(300_000, name.charCodeAt(0))]))
  }
  const one = await deal(client, files.one as string, nodeA.url)
  const two = await deal(client, files.two as string, nodeB.url)

  // each piece reaches a second node through a copy task
  const copied = await until(db, 'two copies of each piece', s => s.pieces.total === 2 && s.pieces.underCopied === 0)
  t.is(copied.machines.reduce((n, m) => n + m.pieces, 0), 4)

  // A dies in the middle of an upload: its piece renamed into its store, the deal not yet recorded
  await nodeA.stop()
  running.splice(running.indexOf(nodeA), 1)
  const dying = await start(a, 'a', { CAIRN_TEST_CRASH_AT: 'committed' })
  const rootThree = (await cairn(['add', files.three as string, '-Q', '--repo', client])).stdout.trim()
  const interrupted = await cairn(['deal', rootThree, '--repo', client, '--provider', dying.url, '--json', '--duration', '30d'], { timeoutMs: 120_000 })
  t.not(interrupted.code, 0)
  t.is(await dying.stop(), null, 'A was killed by SIGKILL')
  running.splice(running.indexOf(dying), 1)
  // …and the client resumes the interrupted deal at C, which takes the upload from its start
  const pending = await cairn(['deals', '--state', 'accepted', '--json', '--repo', client])
  t.is(pending.code, 0, pending.stderr)
  const pendingIds = pendingDealIds(pending.stdout)
  t.is(pendingIds.length, 1, pending.stdout)
  const resumed = await cairn(['deal', '--resume', pendingIds[0] as string, '--provider', nodeC.url, '--json', '--repo', client], { timeoutMs: 120_000 })
  t.is(resumed.code, 0, resumed.stderr)
  const resumedDeal = JSON.parse(resumed.stdout.trim().split('\n').at(-1) as string) as { id: string, pieceCid: string, state: string }
  t.is(resumedDeal.id, pendingIds[0])
  t.is(resumedDeal.state, 'active')
  const three = { root: rootThree, pieceCid: resumedDeal.pieceCid, id: resumedDeal.id }

  // A is declared dead by the others, and its claims go with its row
  await until(db, 'A reaped', s => !s.machines.some(m => m.name === 'a'))
  const sql = new pg.Client({ connectionString: db })
  await sql.connect()
  t.teardown(async () => { await sql.end() })
  const orphans = await sql.query('SELECT count(*)::int AS n FROM cluster_tasks WHERE owner IS NOT NULL AND owner NOT IN (SELECT id FROM cluster_machines)')
  t.is(orphans.rows[0].n, 0)

  // A starts again: its start-up recovery quarantines the piece it renamed but never recorded
  // (the resumed deal's piece, stored through C since), and it serves nothing from it
  const again = await start(a, 'a')
  t.true(again.log().includes(`recovery-quarantined file=${three.pieceCid}.car reason="not recorded on this node"`), again.log())
  t.true((await readdir(join(a, 'quarantine'))).some(name => name.startsWith(`${three.pieceCid}.car.`)))
  await again.stop()
  running.splice(running.indexOf(again), 1)

  // every piece is served, byte for byte, by both live nodes: /piece and the gateway's CAR
  for (const [name, d] of [['one', one], ['two', two], ['three', three]] as const) {
    const carFile = join(dir.path, `${name}.car`)
    const packed = await cairn(['pack', files[name] as string, '-o', carFile])
    t.is(packed.code, 0, packed.stderr)
    const expected = await readFile(carFile)
    for (const node of [nodeB, nodeC]) {
      t.is(sha256(await fetchBytes(`${node.url}/piece/${d.pieceCid}`)), sha256(expected), `${d.pieceCid} from ${node.url}`)
      const car = await fetchBytes(`${node.url}/ipfs/${d.root}?format=car`)
      t.true(car.length > 0)
    }
  }
  // the piece first held only by A (dead now) was copied before: B and C still hold two copies between them
  await until(db, 'every piece on two live nodes', s => s.pieces.underCopied === 0)

  // audits through nodes the deals were not made with: `one` was made through A (gone), `three` resumed at C
  for (const d of [one, three]) {
    const audited = await cairn(['audit', d.id, '--provider', nodeB.url, '--json', '--repo', client], { timeoutMs: 60_000 })
    t.is(audited.code, 0, audited.stderr)
    t.like(JSON.parse(audited.stdout.trim().split('\n').at(-1) as string), { deal: d.id, outcome: 'passed' })
  }

  // one chain: verified through B's and C's running providers
  for (const repo of [b, c]) {
    const verified = await cairn(['ledger', 'verify', '--repo', repo, '--json'])
    t.is(verified.code, 0, verified.stderr)
    t.true((JSON.parse(verified.stdout) as { entries: number }).entries >= 7)
  }

  // drain B: it takes no more tasks, and its pieces are copied to C (the one other live node)
  const drained = await cairn(['cluster', 'drain', 'b', '--db', db, '--json', '--repo', '/nonexistent-cairn-repo'])
  t.is(drained.code, 0, drained.stderr)
  const after = await until(db, 'B drained', s => (s.machines.find(m => m.name === 'c')?.pieces ?? 0) === 3)
  t.true(after.machines.some(m => m.name === 'b'))
  const unknown = await cairn(['cluster', 'drain', 'nobody', '--db', db, '--repo', '/nonexistent-cairn-repo'])
  t.is(unknown.code, 4)
  t.regex(unknown.stderr, /ERR_NOT_FOUND/)
})
