/**
 * The state store on PostgreSQL, shared by every node of a cluster: one table
 * `state_kv (space, key bytea, value bytea)` for all spaces, and `state_locks`
 * for named locks (src/postgres/sql/20261130-state.sql, docs/cluster.md).
 *
 * A transaction keeps its writes in memory, where its own reads see them,
 * and sends them at commit in a few set-based statements (unnest arrays, 500
 * rows each), so an upload's 4,100 block-index puts cost a handful of round
 * trips rather than 4,100. `lock` upserts the lock's row, which holds the row
 * lock to the end of the transaction: under READ COMMITTED a second taker
 * waits and then reads what the first committed; under snapshot isolation
 * (YugabyteDB without read committed) it fails with 40001 and the whole
 * transaction runs again (src/postgres/db.ts).
 *
 * Walks outside a transaction page through the range by key (256 rows a
 * query), each page a statement of its own: a key present throughout the walk
 * is seen exactly once, in order; writes made meanwhile may or may not be.
 */
import type { QueryResultRow } from 'pg'
import type { Db, Queryable } from '../postgres/db.js'
import { BufferedTransaction, checkKey, checkRange, checkValue, WriteBuffer } from './buffer.js'
import type { Range, StateStore, StateTransaction, WriteOp } from './interface.js'
import type { LockName, Space } from './spaces.js'

const PAGE = 256
const ROWS_PER_STATEMENT = 500

const bytes = (key: string): Buffer => Buffer.from(key, 'utf8')

async function getFrom (q: Queryable, space: Space, key: string): Promise<Uint8Array | undefined> {
  const { rows } = await q.query<{ value: Buffer }>('SELECT value FROM state_kv WHERE space = $1 AND key = $2', [space.name, bytes(checkKey(key))])
  return rows[0] === undefined ? undefined : toView(rows[0].value)
}

async function getManyFrom (q: Queryable, space: Space, keys: readonly string[]): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>()
  for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
    const { rows } = await q.query<{ key: Buffer, value: Buffer }>('SELECT key, value FROM state_kv WHERE space = $1 AND key = ANY($2::bytea[])',
      [space.name, keys.slice(i, i + ROWS_PER_STATEMENT).map(bytes)])
    for (const row of rows) out.set(row.key.toString('utf8'), toView(row.value))
  }
  return out
}

/** A Uint8Array over the Buffer's bytes, as LevelDB's 'view' encoding gives. */
function toView (b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

async function * walk (q: Queryable, space: Space, range: Range): AsyncGenerator<[string, Uint8Array]> {
  const reverse = range.reverse === true
  let limit = range.limit ?? Infinity
  if (limit <= 0) return
  let lower: [string, Buffer] | undefined = range.gt !== undefined ? ['>', bytes(range.gt)] : range.gte !== undefined ? ['>=', bytes(range.gte)] : undefined
  let upper: [string, Buffer] | undefined = range.lt !== undefined ? ['<', bytes(range.lt)] : range.lte !== undefined ? ['<=', bytes(range.lte)] : undefined
  for (;;) {
    const params: unknown[] = [space.name]
    let where = 'space = $1'
    if (lower !== undefined) { params.push(lower[1]); where += ` AND key ${lower[0]} $${params.length}` }
    if (upper !== undefined) { params.push(upper[1]); where += ` AND key ${upper[0]} $${params.length}` }
    const page = Math.min(PAGE, limit)
    params.push(page)
    const { rows } = await q.query<{ key: Buffer, value: Buffer } & QueryResultRow>(
      `SELECT key, value FROM state_kv WHERE ${where} ORDER BY key ${reverse ? 'DESC' : 'ASC'} LIMIT $${params.length}`, params)
    for (const row of rows) yield [row.key.toString('utf8'), toView(row.value)]
    limit -= rows.length
    if (rows.length < page || limit <= 0) return
    const last = (rows[rows.length - 1] as { key: Buffer }).key
    if (reverse) upper = ['<', last]
    else lower = ['>', last]
  }
}

/** Holds the lock's row to the end of the transaction (see the top of this file). */
async function takeLock (q: Queryable, name: LockName): Promise<void> {
  await q.query(`INSERT INTO state_locks (name, version) VALUES ($1, 1)
    ON CONFLICT (name) DO UPDATE SET version = state_locks.version + 1`, [name])
}

/** Sends a transaction's writes: upserts and deletes, a few hundred rows per statement. */
async function send (q: Queryable, ops: Iterable<WriteOp>): Promise<void> {
  let puts: [string[], Buffer[], Buffer[]] = [[], [], []]
  let dels: [string[], Buffer[]] = [[], []]
  const flushPuts = async (): Promise<void> => {
    if (puts[0].length === 0) return
    await q.query(`INSERT INTO state_kv (space, key, value)
      SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[])
      ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value`, puts)
    puts = [[], [], []]
  }
  const flushDels = async (): Promise<void> => {
    if (dels[0].length === 0) return
    await q.query('DELETE FROM state_kv WHERE (space, key) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))', dels)
    dels = [[], []]
  }
  for (const op of ops) {
    if (op.type === 'put') {
      puts[0].push(op.space.name)
      puts[1].push(bytes(op.key))
      puts[2].push(Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength))
      if (puts[0].length >= ROWS_PER_STATEMENT) await flushPuts()
    } else {
      dels[0].push(op.space.name)
      dels[1].push(bytes(op.key))
      if (dels[0].length >= ROWS_PER_STATEMENT) await flushDels()
    }
  }
  await flushPuts()
  await flushDels()
}

export class PgStore implements StateStore {
  /** A store on a connected database whose migrations have run (src/postgres/migrate.ts). */
  constructor (private readonly db: Db) {}

  async get (space: Space, key: string): Promise<Uint8Array | undefined> {
    return await getFrom(this.db, space, key)
  }

  async * iterate (space: Space, range: Range = {}): AsyncGenerator<[string, Uint8Array]> {
    yield * walk(this.db, space, checkRange(range))
  }

  async batch (ops: Iterable<WriteOp>): Promise<void> {
    // taken in hand first: a retried transaction must send the same writes again
    const buffer = new WriteBuffer()
    for (const op of ops) buffer.set(op.space, checkKey(op.key), op.type === 'put' ? checkValue(op.value) : null)
    if (buffer.size === 0) return
    await this.db.transaction(async (q) => { await send(q, buffer.ops()) })
  }

  async transaction<T> (fn: (tx: StateTransaction) => Promise<T>): Promise<T> {
    return await this.db.transaction(async (q) => {
      const tx = new BufferedTransaction({
        get: async (space, key) => await getFrom(q, space, key),
        iterate: (space, range) => walk(q, space, range ?? {}),
        getMany: async (space, keys) => await getManyFrom(q, space, keys),
        lock: async (name) => { await takeLock(q, name) }
      })
      const result = await fn(tx)
      tx.end()
      await send(q, tx.buffer.ops())
      return result
    })
  }

  /** The database belongs to whoever connected it; the store holds nothing of its own. */
  async close (): Promise<void> {}
}
