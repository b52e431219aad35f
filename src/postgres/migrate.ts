/**
 * The database schema as date-named SQL files (src/postgres/sql/YYYYMMDD-name.sql),
 * applied once each, in name order, and recorded in `cairn_migrations` with
 * the SHA-256 of their text (the way Curio keeps harmonydb's schema).
 *
 * Several nodes may start at the same moment: each takes the one row of
 * `cairn_migration_lock` with SELECT … FOR UPDATE before it looks at what is
 * applied, so one applies and the others then find nothing left to do. (An
 * advisory lock would be the PostgreSQL habit; YugabyteDB does not have them.)
 * On PostgreSQL the whole run is one transaction; YugabyteDB commits each DDL
 * statement on its own, so every migration is written to be safe to run again
 * (IF NOT EXISTS).
 *
 * The files are read from the package's src/ directory, which an installed
 * package carries (see `files` in package.json; a test packs the package and
 * checks).
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CairnError } from '../errors.js'
import type { Db } from './db.js'

/** src/postgres/sql of the package, seen from this module compiled to dist/src/postgres/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../src/postgres/sql/', import.meta.url))

const NAME = /^\d{8}-[a-z0-9][a-z0-9-]*\.sql$/

export interface Migration {
  name: string
  sql: string
  sha256: string
}

export async function readMigrations (dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter(n => n.endsWith('.sql')).sort()
  const out: Migration[] = []
  for (const name of names) {
    if (!NAME.test(name)) throw new TypeError(`migration ${name} is not named YYYYMMDD-name.sql`)
    const sql = await readFile(join(dir, name), 'utf8')
    out.push({ name, sql, sha256: createHash('sha256').update(sql).digest('hex') })
  }
  return out
}

const BOOTSTRAP = [
  `CREATE TABLE IF NOT EXISTS cairn_migrations (
     name text PRIMARY KEY,
     sha256 text NOT NULL,
     applied_at timestamptz NOT NULL DEFAULT now()
   )`,
  'CREATE TABLE IF NOT EXISTS cairn_migration_lock (id integer PRIMARY KEY)',
  'INSERT INTO cairn_migration_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING'
]

/**
 * Brings the schema up to date; returns the migrations this call applied.
 * ERR_DB_SCHEMA when the database holds a migration this cairn does not know
 * (a newer version migrated it) or one whose text has changed since.
 */
export async function migrate (db: Db, options: { dir?: string } = {}): Promise<string[]> {
  const migrations = await readMigrations(options.dir)
  await bootstrap(db)
  return await db.transaction(async (q) => {
    // migrations may take longer than an ordinary statement; so may the wait for another node's
    await q.query("SET LOCAL statement_timeout = '10min'")
    await q.query('SELECT id FROM cairn_migration_lock WHERE id = 1 FOR UPDATE')
    const applied = new Map<string, string>()
    for (const row of (await q.query<{ name: string, sha256: string }>('SELECT name, sha256 FROM cairn_migrations')).rows) applied.set(row.name, row.sha256)
    const known = new Map(migrations.map(m => [m.name, m]))
    for (const [name, sha256] of applied) {
      const mine = known.get(name)
      if (mine === undefined) {
        throw new CairnError('ERR_DB_SCHEMA', `the database has migration ${name}, which this version of cairn does not know: it was set up by a newer cairn; upgrade this node`, { details: { migration: name } })
      }
      if (mine.sha256 !== sha256) {
        throw new CairnError('ERR_DB_SCHEMA', `migration ${name} was applied with different contents (sha256 ${sha256}, this cairn has ${mine.sha256})`, { details: { migration: name } })
      }
    }
    const done: string[] = []
    for (const m of migrations) {
      if (applied.has(m.name)) continue
      await q.query(m.sql)
      await q.query('INSERT INTO cairn_migrations (name, sha256) VALUES ($1, $2)', [m.name, m.sha256])
      done.push(m.name)
    }
    return done
  })
}

/**
 * Creates the bookkeeping tables. Two sessions running CREATE TABLE IF NOT
 * EXISTS at the same moment can still collide in PostgreSQL's catalog
 * (unique_violation 23505, duplicate_table 42P07, or duplicate_object 42710 on
 * the table's row type); the loser just tries again.
 */
async function bootstrap (db: Db): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      for (const sql of BOOTSTRAP) await db.query(sql)
      return
    } catch (err) {
      const sqlstate = (err as CairnError).details?.sqlstate
      if (attempt >= 5 || !['23505', '42P07', '42710'].includes(String(sqlstate))) throw err
    }
  }
}
