/**
 * The state store on the repo's LevelDB: one machine, one process (LevelDB's
 * lock file sees to that). Each space lives where src/state/spaces.ts says,
 * so existing repos read as they are.
 *
 * Transactions run one at a time, in the order they were started: with one
 * process and no other writer, that makes every lock a given. Their writes
 * commit as one chained batch with `sync: true` — filled in time slices, since
 * thousands of operations put in one call hold the event loop for tens of
 * milliseconds (src/slice.ts) — so a crash leaves all of a transaction or none.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { Level } from 'level'
import { CairnError } from '../errors.js'
import type { Database } from '../repo/repo.js'
import { TimeSlicer } from '../slice.js'
import { BufferedTransaction, checkKey, checkRange, checkValue, WriteBuffer } from './buffer.js'
import type { Range, StateStore, StateTransaction, WriteOp } from './interface.js'
import type { Space } from './spaces.js'

function openSublevel (db: Database, path: readonly string[]) {
  return db.sublevel<string, Uint8Array>([...path], { valueEncoding: 'view' })
}
type Sublevel = ReturnType<typeof openSublevel>

function prefixOf (space: Space): string {
  if (!('prefix' in space.level)) throw new TypeError(`space ${space.name} has no prefix`)
  return space.level.prefix
}

/** The key just above every key that starts with `prefix`. */
function prefixEnd (prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

export class LevelStore implements StateStore {
  private readonly sublevels = new Map<string, Sublevel>()
  private queue: Promise<unknown> = Promise.resolve()
  private readonly inside = new AsyncLocalStorage<true>()

  /** A store on an open database; `close` leaves the database open unless the store opened it. */
  constructor (private readonly db: Database, private readonly ownsDb = false) {}

  /** A store on its own LevelDB at `path` (tests, benches). */
  static async open (path: string): Promise<LevelStore> {
    const db: Database = new Level<string, Uint8Array>(path, { valueEncoding: 'view' })
    await db.open()
    return new LevelStore(db, true)
  }

  /** The space's sublevel, or undefined for a space kept under a raw prefix. */
  private sublevel (space: Space): Sublevel | undefined {
    if (!('sublevel' in space.level)) return undefined
    let sub = this.sublevels.get(space.name)
    if (sub === undefined) {
      sub = openSublevel(this.db, space.level.sublevel)
      this.sublevels.set(space.name, sub)
    }
    return sub
  }

  async get (space: Space, key: string): Promise<Uint8Array | undefined> {
    checkKey(key)
    const sub = this.sublevel(space)
    return sub !== undefined ? await sub.get(key) : await this.db.get(prefixOf(space) + key)
  }

  async * iterate (space: Space, range: Range = {}): AsyncGenerator<[string, Uint8Array]> {
    checkRange(range)
    const limit = range.limit ?? Infinity
    if (limit <= 0) return
    const options = { reverse: range.reverse === true, limit: limit === Infinity ? -1 : limit }
    const sub = this.sublevel(space)
    if (sub !== undefined) {
      const bounds: Range = {}
      for (const b of ['gt', 'gte', 'lt', 'lte'] as const) if (range[b] !== undefined) bounds[b] = range[b]
      yield * sub.iterator({ ...bounds, ...options }) as AsyncIterable<[string, Uint8Array]>
      return
    }
    const prefix = prefixOf(space)
    const bounds: Range = {}
    for (const b of ['gt', 'gte', 'lt', 'lte'] as const) if (range[b] !== undefined) bounds[b] = prefix + range[b]
    if (bounds.gt === undefined && bounds.gte === undefined) bounds.gte = prefix
    if (bounds.lt === undefined && bounds.lte === undefined) bounds.lt = prefixEnd(prefix)
    for await (const [key, value] of this.db.iterator({ ...bounds, ...options })) yield [key.slice(prefix.length), value]
  }

  async batch (ops: Iterable<WriteOp>): Promise<void> {
    const buffer = new WriteBuffer()
    for (const op of ops) buffer.set(op.space, checkKey(op.key), op.type === 'put' ? checkValue(op.value) : null)
    // after the transactions started before it, so none of them commits over it from a stale read
    await this.exclusive(async () => { await this.write(buffer) })
  }

  async transaction<T> (fn: (tx: StateTransaction) => Promise<T>): Promise<T> {
    if (this.inside.getStore() === true) {
      throw new TypeError('a transaction was started inside another; pass the outer transaction down instead')
    }
    return await this.exclusive(async () => {
      // transactions of this store already run one at a time, so a lock has nothing left to do
      const tx = new BufferedTransaction({ get: this.get.bind(this), iterate: this.iterate.bind(this), lock: async () => {} })
      const result = await this.inside.run(true, async () => await fn(tx))
      tx.end()
      await this.write(tx.buffer)
      return result
    })
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }

  private async write (buffer: WriteBuffer): Promise<void> {
    if (buffer.size === 0) return
    const batch = this.db.batch()
    const slicer = new TimeSlicer()
    try {
      for (const op of buffer.ops()) {
        const sublevel = this.sublevel(op.space)
        if (sublevel !== undefined) {
          if (op.type === 'put') batch.put(op.key, op.value, { sublevel })
          else batch.del(op.key, { sublevel })
        } else {
          const key = prefixOf(op.space) + op.key
          if (op.type === 'put') batch.put(key, op.value)
          else batch.del(key)
        }
        if (slicer.due) await slicer.pause()
      }
      await batch.write({ sync: true })
    } catch (err) {
      await batch.close().catch(() => {})
      throw new CairnError('ERR_IO', `could not write ${buffer.size} changes to the state store: ${(err as Error).message}`, { cause: err })
    }
  }

  async close (): Promise<void> {
    await this.queue
    if (this.ownsDb) await this.db.close()
  }
}
