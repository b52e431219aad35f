/** The state store conformance suite on PostgreSQL: every test's store shares one migrated database, through its own pool. */
import test from 'ava'
import { Db } from '../../src/postgres/db.js'
import { migrate } from '../../src/postgres/migrate.js'
import { PgStore } from '../../src/state/pg.js'
import { testDatabase, type TestDatabase } from '../helpers/postgres.js'
import { suite } from './suite.js'

let database: TestDatabase | undefined
const pools: Db[] = []

async function ready (): Promise<TestDatabase> {
  if (database === undefined) {
    database = await testDatabase()
    const db = await Db.connect({ url: database.url })
    pools.push(db)
    await migrate(db)
  }
  return database
}
const first = ready()

test.after.always(async () => {
  for (const db of pools) await db.close()
  await database?.cleanup()
})

suite({
  test,
  name: 'pg',
  factory: async () => {
    const { url } = await first
    // room for every transaction of the lock test at once: they are to queue on the lock's row, not for a connection
    const db = await Db.connect({ url, max: 32 })
    pools.push(db)
    return new PgStore(db)
  }
})
