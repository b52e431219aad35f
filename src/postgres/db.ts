/**
 * The connection to a cluster's PostgreSQL database, through node-postgres:
 * a pool, statement timeouts, every failure turned into a coded error, and
 * transactions that are retried when the database gives up on them.
 *
 * Only what YugabyteDB's YSQL also runs is used (docs/cluster.md): no
 * LISTEN/NOTIFY, no advisory locks, no deferrable constraints. Mutual exclusion
 * is a row lock taken inside the transaction that needs it. Serialization
 * failures (SQLSTATE 40001) and deadlocks (40P01) are normal outcomes under
 * contention — YugabyteDB reports most of its conflicts as 40001 — so every
 * transaction is retried on them with exponential back-off and full jitter
 * ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015), a bounded
 * number of times.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { CairnError } from '../errors.js'

export interface DbOptions {
  /** postgres://user:password@host:port/database */
  url: string
  /** connections in the pool (default 10) */
  max?: number
  /** longest one statement may run, lock waits included, ms (default 30 s) */
  statementTimeoutMs?: number
  /** longest wait for a connection, ms (default 10 s) */
  connectTimeoutMs?: number
  /** a session idle inside a transaction this long is ended by the server, ms (default 60 s) */
  idleInTransactionTimeoutMs?: number
  /** attempts of a transaction that meets serialization failures or deadlocks (default 10) */
  attempts?: number
  /** first back-off and its cap, ms (default 5 and 1,000) */
  backoffMs?: number
  maxBackoffMs?: number
  /** shown in pg_stat_activity */
  applicationName?: string
  /** errors of idle pooled connections (the pool drops them and connects anew) */
  onIdleError?: (err: CairnError) => void
}

export type Isolation = 'read committed' | 'repeatable read' | 'serializable'

export interface TransactionOptions {
  /** default 'read committed'; see docs/cluster.md for what YugabyteDB makes of each */
  isolation?: Isolation
  /**
   * false: COMMIT returns before the WAL is flushed (a database crash may lose
   * the transaction, never corrupt anything), for writes that are cheap to lose.
   * Default true. YugabyteDB ignores it.
   */
  synchronousCommit?: boolean
}

/** What a statement runs on: the pool, or the connection of one transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow> (sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>
}

/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRYABLE = new Set(['40001', '40P01'])

/** Checks a database URL at the boundary: postgres:// or postgresql://, or ERR_DB_URL. */
export function parseDbUrl (text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new CairnError('ERR_DB_URL', `expected a PostgreSQL URL such as postgres://user@host:5432/cairn, got ${JSON.stringify(redact(text))}`)
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new CairnError('ERR_DB_URL', `a database URL starts with postgres:// or postgresql://, got ${JSON.stringify(redact(text))}`)
  }
  if (url.hostname === '' && url.searchParams.get('host') === null) {
    throw new CairnError('ERR_DB_URL', `the database URL names no host: ${JSON.stringify(redact(text))}`)
  }
  return url
}

/** The URL without its password, for messages. */
export function redact (text: string): string {
  try {
    const url = new URL(text)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    return text.replace(/:[^:@/]*@/, ':***@')
  }
}

export class Db implements Queryable {
  readonly where: string
  private readonly pool: pg.Pool
  private readonly attempts: number
  private readonly backoffMs: number
  private readonly maxBackoffMs: number
  private readonly inTransaction = new AsyncLocalStorage<true>()
  private closed = false

  private constructor (url: URL, options: DbOptions) {
    this.where = `${url.host}${url.pathname}`
    this.attempts = options.attempts ?? 10
    this.backoffMs = options.backoffMs ?? 5
    this.maxBackoffMs = options.maxBackoffMs ?? 1000
    this.pool = new pg.Pool({
      connectionString: url.toString(),
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 60_000,
      application_name: options.applicationName ?? 'cairn',
      keepAlive: true,
      idleTimeoutMillis: 30_000
    })
    // an idle pooled connection that breaks (server restart, network) must not crash the node
    this.pool.on('error', (err) => { options.onIdleError?.(this.error(err, 'an idle connection')) })
  }

  /** Opens a pool on `url` and checks one connection, so a wrong URL fails here with its code. */
  static async connect (options: DbOptions): Promise<Db> {
    const db = new Db(parseDbUrl(options.url), options)
    try {
      await db.query('SELECT 1')
    } catch (err) {
      await db.close()
      throw err
    }
    return db
  }

  /** One statement on a pooled connection (its own transaction), retried like a transaction. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow> (sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    return await this.retrying(async () => {
      try {
        return await this.pool.query<R>(sql, params)
      } catch (err) {
        throw this.error(err, 'a statement')
      }
    })
  }

  /**
   * Runs `fn` inside BEGIN … COMMIT on one connection. On a serialization
   * failure or deadlock — also at COMMIT — it rolls back, waits, and runs `fn`
   * again, up to `attempts` times (then ERR_DB_CONFLICT); any other error
   * rolls back and is rethrown as it is, or coded when it came from the
   * database. `fn` must therefore have no effects outside the transaction.
   */
  async transaction<T> (fn: (q: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.inTransaction.getStore() === true) {
      throw new TypeError('a transaction was started inside another; pass the outer transaction down instead')
    }
    // one round trip: a simple query may carry several statements
    const begin = `BEGIN ISOLATION LEVEL ${(options.isolation ?? 'read committed').toUpperCase()}` +
      (options.synchronousCommit === false ? '; SET LOCAL synchronous_commit = off' : '')
    return await this.retrying(async () => {
      let client: pg.PoolClient
      try {
        client = await this.pool.connect()
      } catch (err) {
        throw this.error(err, 'a connection')
      }
      let broken: Error | undefined
      const q: Queryable = {
        query: async <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => {
          try {
            return await client.query<R>(sql, params)
          } catch (err) {
            if (!(err instanceof pg.DatabaseError)) broken = err as Error
            throw this.error(err, 'a statement in a transaction')
          }
        }
      }
      try {
        await q.query(begin)
        const result = await this.inTransaction.run(true, async () => await fn(q))
        await q.query('COMMIT')
        return result
      } catch (err) {
        if (broken === undefined) {
          await client.query('ROLLBACK').catch((e: Error) => { broken = e })
        }
        throw err
      } finally {
        // a connection that failed outside the protocol is closed, not reused
        client.release(broken)
      }
    })
  }

  /** Runs `attempt` until it succeeds, fails with a code that is not a conflict, or has run `attempts` times. */
  private async retrying<T> (attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt()
      } catch (err) {
        const sqlstate = (err as CairnError).details?.sqlstate
        if (!(err instanceof CairnError) || err.code !== 'ERR_DB_CONFLICT' || typeof sqlstate !== 'string' || !RETRYABLE.has(sqlstate)) throw err
        if (n >= this.attempts) {
          throw new CairnError('ERR_DB_CONFLICT', `the database refused the same transaction ${n} times (${err.message}); the cluster is too contended or a lock is held too long`, { cause: err, details: { sqlstate, attempts: n } })
        }
        const cap = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (n - 1))
        await sleep(Math.random() * cap)
      }
    }
  }

  /** A pg or socket error as a coded error naming what was being done. */
  error (err: unknown, during: string): CairnError {
    if (err instanceof CairnError) return err
    const e = err as { code?: string, message?: string }
    const message = e.message ?? String(err)
    const where = `the database at ${this.where}`
    if (err instanceof pg.DatabaseError && typeof e.code === 'string') {
      const sqlstate = e.code
      const details = { sqlstate }
      if (RETRYABLE.has(sqlstate)) return new CairnError('ERR_DB_CONFLICT', `${where} gave up ${during}: ${message}`, { cause: err, details })
      if (sqlstate === '57014' || sqlstate === '55P03' || sqlstate === '25P03') {
        return new CairnError('ERR_DB_TIMEOUT', `${where} timed out ${during}: ${message}`, { cause: err, details })
      }
      if (sqlstate.startsWith('28')) return new CairnError('ERR_DB_AUTH', `${where} refused the credentials: ${message}`, { cause: err, details })
      if (sqlstate === '3D000' || sqlstate.startsWith('08') || sqlstate.startsWith('57P') || sqlstate === '53300') {
        return new CairnError('ERR_DB_UNREACHABLE', `cannot use ${where}: ${message}`, { cause: err, details })
      }
      return new CairnError('ERR_DB', `${where} failed ${during}: ${message} (SQLSTATE ${sqlstate})`, { cause: err, details })
    }
    if (/timeout/i.test(message)) return new CairnError('ERR_DB_TIMEOUT', `${where} did not answer in time (${during}): ${message}`, { cause: err })
    return new CairnError('ERR_DB_UNREACHABLE', `cannot reach ${where}${e.code !== undefined ? ` (${e.code})` : ''}: ${message}`, { cause: err })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.pool.end()
  }
}
