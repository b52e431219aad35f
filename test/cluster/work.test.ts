/**
 * Cluster work inside one process: two provider nodes on one database, with
 * pieces put straight into a node's store (no deal needed): a node fetches a
 * piece it lacks and checks it, refuses bytes of another piece, a scrub finds
 * a corrupt copy and the copy task replaces it, gc removes an unindexed file,
 * and the start-up checks refuse what cannot work.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { copyFile, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { checkIdentity } from '../../src/cluster/node.js'
import { nodeTaskType } from '../../src/cluster/work.js'
import { addTask } from '../../src/cluster/tasks.js'
import type { ProviderNode } from '../../src/provider/node.js'
import { spaces } from '../../src/state/spaces.js'
import { cairn, tempDir } from '../helpers/cli.js'
import { testDatabase } from '../helpers/postgres.js'
import { twoProviderNodes } from './helpers.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

async function eventually (what: string, check: () => Promise<boolean>, tries = 300): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return
    await sleep(200)
  }
  throw new Error(`${what}: never happened`)
}

async function storePiece (node: ProviderNode, bytes: Uint8Array, name: string): Promise<string> {
  const staged = await node.store.stage((async function * () { yield bytes })())
  await staged.commit()
  const piece = staged.piece.cid.toString()
  await node.cluster!.state.state.batch([{ type: 'put', space: spaces.pieceLocations, key: `${piece}/${name}`, value: new Uint8Array(0) }])
  return piece
}

test('two nodes: fetch on a miss, a wrong copy refused, a corrupt copy scrubbed and replaced, garbage collected', async (t) => {
  const { a, b, close } = await twoProviderNodes('cairn-cluster-work-', 2)
  t.teardown(close)

  const bytes = randomBytes(70_000)
  const piece = await storePiece(a, bytes, 'a')
  t.true(await b.cluster!.work.fetch(piece))
  t.is(sha256(await readFile(b.store.path(piece))), sha256(bytes))
  t.deepEqual((await b.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`)), new Uint8Array(0))

  // bytes of another piece under this piece's name are refused and leave nothing
  const other = randomBytes(50_000)
  const otherPiece = await storePiece(a, other, 'a')
  await rm(b.store.path(otherPiece), { force: true })
  await copyFile(a.store.path(piece), a.store.path(otherPiece))
  const wrong = await t.throwsAsync(b.cluster!.work.fetch(otherPiece))
  t.is((wrong as { code?: string }).code, 'ERR_PIECE_MISMATCH')
  t.false(await b.store.has(otherPiece))

  // B's copy goes bad: a scrub of it (run by whichever node claims it) finds it, and a copy replaces it
  await writeFile(b.store.path(piece), randomBytes(70_000))
  const db = a.cluster!.state.db
  await addTask(db, 'scrub', { piece, node: 'b' })
  await eventually('scrub recorded', async () => {
    const record = await a.cluster!.state.state.get(spaces.scrubs, `${piece}/b`)
    return record !== undefined && (JSON.parse(new TextDecoder().decode(record)) as { ok: boolean }).ok === false
  })
  await eventually('B holds a good copy again', async () => {
    const held = await readFile(b.store.path(piece)).catch(() => undefined)
    return held !== undefined && sha256(held) === sha256(bytes) && (await a.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`)) !== undefined
  })

  // gc on B: its copy of a piece no deal indexes goes once it is old enough; only B runs B's gc
  const old = new Date(Date.now() - 2 * 3600_000)
  await utimes(b.store.path(piece), old, old)
  await addTask(db, nodeTaskType('b'), {})
  await eventually('B collected', async () => !(await b.store.has(piece)) && (await a.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`)) === undefined)
  t.true(await a.store.has(piece), 'A keeps its own copy: its gc did not run')
  t.is(await a.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`), undefined)

  // a node of another identity is refused by the check itself
  const refused = await t.throwsAsync(checkIdentity(a.cluster!.state.state, 'did:key:z6MkOther', 'test'))
  t.is((refused as { code?: string }).code, 'ERR_CLUSTER_IDENTITY')
})

test('provider start refuses a bad --db URL, an unreachable database, and a cluster node on port 0 without a name; cluster status needs a database', async (t) => {
  const dir = await tempDir('cairn-cluster-cli-')
  t.teardown(dir.cleanup)
  const repo = join(dir.path, 'r')
  t.is((await cairn(['init', '--repo', repo])).code, 0)
  const bad = await cairn(['provider', 'start', '--repo', repo, '--listen', '127.0.0.1:0', '--db', 'mysql://x/y'])
  t.is(bad.code, 2, bad.stderr)
  t.regex(bad.stderr, /^error ERR_DB_URL: /m)
  const down = await cairn(['provider', 'start', '--repo', repo, '--listen', '127.0.0.1:0', '--node', 'n', '--db', 'postgres://cairn@127.0.0.1:9/cairn'], { timeoutMs: 60_000 })
  t.is(down.code, 5, down.stderr)
  t.regex(down.stderr, /^error ERR_DB_UNREACHABLE: /m)
  const database = await testDatabase()
  t.teardown(database.cleanup)
  const nameless = await cairn(['provider', 'start', '--repo', repo, '--listen', '127.0.0.1:0', '--db', database.url], { timeoutMs: 60_000 })
  t.is(nameless.code, 2, nameless.stderr)
  t.regex(nameless.stderr, /^error ERR_INVALID_ARGUMENT: .*--node/m)
  const noDb = await cairn(['cluster', 'status', '--repo', repo])
  t.is(noDb.code, 2, noDb.stderr)
  t.regex(noDb.stderr, /^error ERR_INVALID_ARGUMENT: /m)
})
