/**
 * The PostgreSQL connection layer on a real server: coded errors for each way
 * a database can fail, statement timeouts, and transactions retried on
 * serialization failures (40001) and deadlocks (40P01) — and only on those.
 */
import test from 'ava'
import { CairnError } from '../../src/errors.js'
import { Db, parseDbUrl, redact } from '../../src/postgres/db.js'
import { testDatabase, type TestDatabase } from '../helpers/postgres.js'

let database: TestDatabase
let db: Db

test.before(async () => {
  database = await testDatabase()
  db = await Db.connect({ url: database.url, backoffMs: 1, maxBackoffMs: 20 })
  // tests of one file run at once: each has its own table
  await db.query('CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)')
  await db.query('INSERT INTO counter VALUES (1, 0)')
  await db.query('CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)')
  await db.query('INSERT INTO pair VALUES (1, 0), (2, 0)')
})

test.after.always(async () => {
  await db?.close()
  await database?.cleanup()
})

/** A URL of the test server with another database, user or port. */
function variant (change: (url: URL) => void): string {
  const url = new URL(database.url)
  change(url)
  return url.toString()
}

test('a database URL is checked at the boundary', (t) => {
  t.is(parseDbUrl('postgres://cairn@db.example:5432/cairn').hostname, 'db.example')
  t.is(parseDbUrl('postgresql://localhost/cairn').protocol, 'postgresql:')
  for (const bad of ['mysql://db/cairn', 'db.example:5432', '', 'postgres:///cairn']) {
    t.throws(() => parseDbUrl(bad), { instanceOf: CairnError, code: 'ERR_DB_URL' }, bad)
  }
  t.is(redact('postgres://cairn:s3cret@db:5432/x'), 'postgres://cairn:***@db:5432/x')
  const err = t.throws(() => parseDbUrl('mysql://cairn:s3cret@db/x'))
  t.false(err?.message.includes('s3cret'))
})

test('a server that does not answer is ERR_DB_UNREACHABLE', async (t) => {
  await t.throwsAsync(Db.connect({ url: variant(u => { u.port = '1' }) }), { instanceOf: CairnError, code: 'ERR_DB_UNREACHABLE' })
})

test('a database that does not exist is ERR_DB_UNREACHABLE, naming it', async (t) => {
  const err = await t.throwsAsync(Db.connect({ url: variant(u => { u.pathname = '/no_such_database' }) }), { instanceOf: CairnError, code: 'ERR_DB_UNREACHABLE' })
  t.regex(err?.message ?? '', /no_such_database/)
})

test('an unknown role is ERR_DB_AUTH', async (t) => {
  await t.throwsAsync(Db.connect({ url: variant(u => { u.username = 'no_such_role' }) }), { instanceOf: CairnError, code: 'ERR_DB_AUTH' })
})

test('a statement longer than the statement timeout is ERR_DB_TIMEOUT', async (t) => {
  const quick = await Db.connect({ url: database.url, statementTimeoutMs: 50 })
  try {
    await t.throwsAsync(quick.query('SELECT pg_sleep(10)'), { instanceOf: CairnError, code: 'ERR_DB_TIMEOUT' })
    t.is((await quick.query('SELECT 1 AS one')).rows[0]?.one, 1)
  } finally {
    await quick.close()
  }
})

test('an SQL error is ERR_DB with its SQLSTATE', async (t) => {
  const err = await t.throwsAsync(db.query('SELECT * FROM no_such_table'), { instanceOf: CairnError, code: 'ERR_DB' })
  t.is((err as CairnError).details?.sqlstate, '42P01')
})

test('a transaction commits all its statements, or none when its function throws', async (t) => {
  await db.query('CREATE TABLE items (n int PRIMARY KEY)')
  await db.transaction(async (q) => {
    await q.query('INSERT INTO items VALUES (1)')
    await q.query('INSERT INTO items VALUES (2)')
  })
  const boom = new CairnError('ERR_INVALID_ARGUMENT', 'caller refuses')
  const err = await t.throwsAsync(db.transaction(async (q) => {
    await q.query('INSERT INTO items VALUES (3)')
    throw boom
  }))
  t.is(err, boom, 'the caller\'s own error comes back as it was')
  await t.throwsAsync(db.transaction(async (q) => {
    await q.query('INSERT INTO items VALUES (4)')
    await q.query('INSERT INTO items VALUES (1)')
  }), { instanceOf: CairnError, code: 'ERR_DB' })
  t.deepEqual((await db.query<{ n: number }>('SELECT n FROM items ORDER BY n')).rows.map(r => r.n), [1, 2])
})

test('a serialization failure (40001) runs the transaction again, and no update is lost', async (t) => {
  let attempts = 0
  let interleaved = false
  await db.transaction(async (q) => {
    attempts++
    const { rows } = await q.query<{ n: number }>('SELECT n FROM counter WHERE id = 1')
    if (!interleaved) {
      interleaved = true
      // another session changes the row after this snapshot was taken
      await db.query('UPDATE counter SET n = n + 1 WHERE id = 1')
    }
    await q.query('UPDATE counter SET n = $1 WHERE id = 1', [(rows[0]?.n ?? 0) + 1])
  }, { isolation: 'repeatable read' })
  t.is(attempts, 2)
  t.is((await db.query<{ n: number }>('SELECT n FROM counter WHERE id = 1')).rows[0]?.n, 2)
})

test('a deadlock (40P01) runs the losing transaction again; both commit', async (t) => {
  let firstRound = 0
  let release: () => void = () => {}
  const bothHoldOne = new Promise<void>((resolve) => { release = resolve })
  const attempts = [0, 0]
  const crosswise = (index: number, first: number, second: number) => db.transaction(async (q) => {
    attempts[index]++
    await q.query('UPDATE pair SET n = n + 1 WHERE id = $1', [first])
    if (++firstRound === 2) release()
    await bothHoldOne
    await q.query('UPDATE pair SET n = n + 1 WHERE id = $1', [second])
  })
  await Promise.all([crosswise(0, 1, 2), crosswise(1, 2, 1)])
  t.is((attempts[0] ?? 0) + (attempts[1] ?? 0), 3, 'exactly one of the two ran again')
  t.deepEqual((await db.query<{ n: number }>('SELECT n FROM pair ORDER BY id')).rows.map(r => r.n), [2, 2])
})

test('a transaction that keeps failing with 40001 ends in ERR_DB_CONFLICT after its attempts', async (t) => {
  const few = await Db.connect({ url: database.url, attempts: 3, backoffMs: 1 })
  try {
    let runs = 0
    const err = await t.throwsAsync(few.transaction(async (q) => {
      runs++
      await q.query("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
    }), { instanceOf: CairnError, code: 'ERR_DB_CONFLICT' })
    t.is(runs, 3)
    t.is((err as CairnError).details?.attempts, 3)
  } finally {
    await few.close()
  }
})

test('a transaction started inside another is refused', async (t) => {
  await t.throwsAsync(db.transaction(async () => await db.transaction(async () => 1)), { instanceOf: TypeError })
})

test('an idle connection killed by the server is reported, and the pool connects anew', async (t) => {
  const errors: CairnError[] = []
  const pool = await Db.connect({ url: database.url, applicationName: 'cairn-idle-test', onIdleError: (err) => { errors.push(err) } })
  try {
    await pool.query('SELECT 1')
    await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cairn-idle-test'")
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
    t.true(errors.length > 0)
    t.is(errors[0]?.code, 'ERR_DB_UNREACHABLE')
    t.is((await pool.query('SELECT 2 AS two')).rows[0]?.two, 2)
  } finally {
    await pool.close()
  }
})

test('a transaction may commit without waiting for the WAL flush, and only that transaction', async (t) => {
  // the test server runs without synchronous commit; this database's new sessions have it
  await db.query(`ALTER DATABASE ${new URL(database.url).pathname.slice(1)} SET synchronous_commit = on`)
  const single = await Db.connect({ url: database.url, max: 1 })
  try {
    const setting = async (q: { query: Db['query'] }): Promise<string> => String((await q.query('SHOW synchronous_commit')).rows[0]?.synchronous_commit)
    t.is(await single.transaction(setting, { synchronousCommit: false }), 'off')
    t.is(await single.transaction(setting), 'on', 'the same pooled connection is back to the default')
  } finally {
    await single.close()
  }
})
