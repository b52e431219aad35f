/**
 * Date-named SQL migrations: applied once, recorded, safe when several nodes
 * start at the same moment, refused when the database is ahead of the code,
 * and shipped in the package.
 */
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { CairnError } from '../../src/errors.js'
import { Db } from '../../src/postgres/db.js'
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../src/postgres/migrate.js'
import { testDatabase, type TestDatabase } from '../helpers/postgres.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const cleanups: Array<() => Promise<void>> = []
test.after.always(async () => { for (const c of cleanups.reverse()) await c() })

async function fresh (): Promise<{ database: TestDatabase, db: Db }> {
  const database = await testDatabase()
  const db = await Db.connect({ url: database.url })
  cleanups.push(async () => { await db.close(); await database.cleanup() })
  return { database, db }
}

/** Migrations that fail if run twice: a plain CREATE TABLE and an insert. */
async function strictMigrations (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-migrations-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, '20260101-first.sql'), 'CREATE TABLE first (n int PRIMARY KEY);\nINSERT INTO first VALUES (1);\n')
  await writeFile(join(dir, '20260102-second.sql'), 'CREATE TABLE second (n int PRIMARY KEY);\nINSERT INTO first VALUES (2);\n')
  await writeFile(join(dir, 'README.txt'), 'not a migration')
  return dir
}

test('the project\'s migrations apply once and are recorded with their hashes', async (t) => {
  const { db } = await fresh()
  const all = await readMigrations()
  t.true(all.length >= 2)
  t.deepEqual(await migrate(db), all.map(m => m.name))
  t.deepEqual(await migrate(db), [], 'a second run has nothing to do')
  const rows = (await db.query<{ name: string, sha256: string }>('SELECT name, sha256 FROM cairn_migrations ORDER BY name')).rows
  t.deepEqual(rows, all.map(m => ({ name: m.name, sha256: m.sha256 })))
  for (const table of ['state_kv', 'state_locks', 'cluster_machines', 'cluster_tasks', 'cluster_task_history', 'indexer_providers', 'indexer_entries', 'indexer_context_parts']) {
    t.is((await db.query('SELECT to_regclass($1) AS t', [table])).rows[0]?.t, table)
  }
})

test('nodes starting at the same moment apply each migration exactly once', async (t) => {
  const { database } = await fresh()
  const dir = await strictMigrations()
  const nodes = await Promise.all(Array.from({ length: 4 }, async () => await Db.connect({ url: database.url, max: 2 })))
  try {
    const applied = await Promise.all(nodes.map(async (node) => await migrate(node, { dir })))
    t.deepEqual(applied.flat().sort(), ['20260101-first.sql', '20260102-second.sql'], 'each applied by one node only')
    t.deepEqual((await nodes[0]!.query<{ n: number }>('SELECT n FROM first ORDER BY n')).rows.map(r => r.n), [1, 2])
  } finally {
    for (const node of nodes) await node.close()
  }
})

test('a database migrated by a newer cairn, or with a changed migration, is ERR_DB_SCHEMA', async (t) => {
  const { db } = await fresh()
  const dir = await strictMigrations()
  await migrate(db, { dir })
  await db.query("INSERT INTO cairn_migrations (name, sha256) VALUES ('20990101-future.sql', 'x')")
  const err = await t.throwsAsync(migrate(db, { dir }), { instanceOf: CairnError, code: 'ERR_DB_SCHEMA' })
  t.regex(err?.message ?? '', /20990101-future\.sql/)
  await db.query("DELETE FROM cairn_migrations WHERE name = '20990101-future.sql'")
  await writeFile(join(dir, '20260102-second.sql'), 'CREATE TABLE second (n int PRIMARY KEY); -- edited\n')
  await t.throwsAsync(migrate(db, { dir }), { instanceOf: CairnError, code: 'ERR_DB_SCHEMA' })
})

test('a failing migration leaves nothing applied', async (t) => {
  const { db } = await fresh()
  const dir = await strictMigrations()
  await writeFile(join(dir, '20260103-broken.sql'), 'CREATE TABLE third (n int);\nSELECT * FROM no_such_table;\n')
  await t.throwsAsync(migrate(db, { dir }), { instanceOf: CairnError, code: 'ERR_DB' })
  t.is((await db.query('SELECT count(*)::int AS n FROM cairn_migrations')).rows[0]?.n, 0)
  t.is((await db.query("SELECT to_regclass('first') AS t")).rows[0]?.t, null)
})

test('a migration file with another name pattern is a programmer mistake', async (t) => {
  const dir = await strictMigrations()
  await writeFile(join(dir, 'init.sql'), 'SELECT 1;')
  await t.throwsAsync(readMigrations(dir), { instanceOf: TypeError })
})

test('the packed package carries every migration where the compiled code reads them', async (t) => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 64 << 20 })
  const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map(f => f.path))
  const expected = (await readMigrations()).map(m => join(MIGRATIONS_DIR, m.name).slice(ROOT.length))
  t.true(expected.length > 0)
  for (const path of expected) t.true(files.has(path), `${path} is in the package`)
})
