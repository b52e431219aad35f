/**
 * What both backends share: key order, key and value checks, range bounds,
 * and the write buffer of a transaction — its writes held until commit, seen by
 * its own reads, undoable in part (`atomically`).
 */
import type { Range, StateReader, StateTransaction, WriteOp } from './interface.js'
import type { LockName, Space } from './spaces.js'

/**
 * Orders keys by their UTF-8 bytes, as LevelDB and PostgreSQL's bytea do. For
 * well-formed strings that is code-point order, which differs from `<` (UTF-16
 * code units) only where a surrogate pair (U+10000 and above) meets U+E000–U+FFFF.
 */
export function compareKeys (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const sx = x >= 0xd800 && x <= 0xdfff
    const sy = y >= 0xd800 && y <= 0xdfff
    if (sx !== sy) return sx ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length - b.length
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** A key both backends store alike: a non-empty, well-formed string (it becomes UTF-8 bytes). */
export function checkKey (key: unknown): string {
  if (typeof key !== 'string') throw new TypeError(`a state key is a string, got ${typeof key}`)
  if (key.length === 0) throw new RangeError('a state key may not be empty')
  if (LONE_SURROGATE.test(key)) throw new RangeError('a state key must be well-formed Unicode (it is stored as UTF-8)')
  return key
}

export function checkValue (value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError('a state value is a Uint8Array')
  return value
}

export function checkRange (range: Range): Range {
  for (const bound of ['gt', 'gte', 'lt', 'lte'] as const) {
    if (range[bound] !== undefined && typeof range[bound] !== 'string') throw new TypeError(`range.${bound} is a string`)
  }
  if (range.limit !== undefined && (!Number.isInteger(range.limit) || range.limit < 0) && range.limit !== Infinity) {
    throw new RangeError(`range.limit is a non-negative integer, got ${String(range.limit)}`)
  }
  return range
}

export function inRange (key: string, range: Range): boolean {
  if (range.gt !== undefined && compareKeys(key, range.gt) <= 0) return false
  if (range.gte !== undefined && compareKeys(key, range.gte) < 0) return false
  if (range.lt !== undefined && compareKeys(key, range.lt) >= 0) return false
  if (range.lte !== undefined && compareKeys(key, range.lte) > 0) return false
  return true
}

/** `null` marks a key deleted in the transaction. */
type Pending = Uint8Array | null

export class WriteBuffer {
  private readonly writes = new Map<string, { space: Space, keys: Map<string, Pending> }>()
  /** one undo log per open `atomically`, innermost last: [space, key, value before (undefined: not written)] */
  private readonly undo: Array<Array<[Space, string, Pending | undefined]>> = []
  private count = 0

  get size (): number { return this.count }

  set (space: Space, key: string, value: Pending): void {
    let entry = this.writes.get(space.name)
    if (entry === undefined) {
      entry = { space, keys: new Map() }
      this.writes.set(space.name, entry)
    } else if (entry.space !== space) {
      throw new TypeError(`two different spaces are named ${space.name}`)
    }
    const log = this.undo.at(-1)
    if (log !== undefined) log.push([space, key, entry.keys.get(key)])
    if (!entry.keys.has(key)) this.count++
    entry.keys.set(key, value)
  }

  /** undefined: the transaction has not written the key; null: it deleted it. */
  lookup (space: Space, key: string): Pending | undefined {
    return this.writes.get(space.name)?.keys.get(key)
  }

  /** The transaction's writes to `space` within `range`, in walk order. */
  within (space: Space, range: Range): Array<[string, Pending]> {
    const keys = this.writes.get(space.name)?.keys
    if (keys === undefined) return []
    const out: Array<[string, Pending]> = []
    for (const entry of keys) if (inRange(entry[0], range)) out.push(entry)
    out.sort((a, b) => compareKeys(a[0], b[0]))
    if (range.reverse === true) out.reverse()
    return out
  }

  * ops (): Generator<WriteOp> {
    for (const { space, keys } of this.writes.values()) {
      for (const [key, value] of keys) {
        yield value === null ? { type: 'del', space, key } : { type: 'put', space, key, value }
      }
    }
  }

  async atomically<T> (fn: () => Promise<T>): Promise<T> {
    const log: Array<[Space, string, Pending | undefined]> = []
    this.undo.push(log)
    try {
      const result = await fn()
      this.undo.pop()
      // kept writes stay undoable by an enclosing atomically
      this.undo.at(-1)?.push(...log)
      return result
    } catch (err) {
      this.undo.pop()
      for (let i = log.length - 1; i >= 0; i--) {
        const [space, key, before] = log[i] as [Space, string, Pending | undefined]
        const keys = this.writes.get(space.name)?.keys as Map<string, Pending>
        if (before === undefined) {
          keys.delete(key)
          this.count--
        } else {
          keys.set(key, before)
        }
      }
      throw err
    }
  }
}

/**
 * The stored entries of a range merged with a transaction's writes to it:
 * written values replace stored ones, deleted keys disappear, and `limit`
 * counts what is yielded. `stored` walks the same range in the same direction.
 */
export async function * merged (stored: AsyncIterable<[string, Uint8Array]>, written: Array<[string, Pending]>, range: Range): AsyncGenerator<[string, Uint8Array]> {
  const limit = range.limit ?? Infinity
  if (limit <= 0) return
  const direction = range.reverse === true ? -1 : 1
  let i = 0
  let yielded = 0
  const emit = function * (entry: [string, Pending]): Generator<[string, Uint8Array]> {
    if (entry[1] !== null) {
      yielded++
      yield entry as [string, Uint8Array]
    }
  }
  for await (const entry of stored) {
    while (i < written.length && direction * compareKeys((written[i] as [string, Pending])[0], entry[0]) < 0) {
      yield * emit(written[i++] as [string, Pending])
      if (yielded >= limit) return
    }
    if (i < written.length && (written[i] as [string, Pending])[0] === entry[0]) {
      yield * emit(written[i++] as [string, Pending])
    } else {
      yielded++
      yield entry
    }
    if (yielded >= limit) return
  }
  while (i < written.length) {
    yield * emit(written[i++] as [string, Pending])
    if (yielded >= limit) return
  }
}

/** What a backend gives a transaction: reads of what is committed (or of its own connection) and its lock. */
export interface TransactionBase extends StateReader {
  lock (name: LockName): Promise<void>
  /** the stored values of `keys` (missing ones left out), in one round trip; absent where reads are local */
  getMany?: (space: Space, keys: readonly string[]) => Promise<Map<string, Uint8Array>>
}

/** A transaction over a backend's reads: its writes buffered, merged into its reads, sent at commit by the backend. */
export class BufferedTransaction implements StateTransaction {
  readonly buffer = new WriteBuffer()
  private ended = false
  /** values read ahead by `prefetch`, by space name (null: not stored) */
  private readonly fetched = new Map<string, Map<string, Uint8Array | null>>()

  constructor (private readonly base: TransactionBase) {}

  /** Called by the backend when the transaction's function has returned; later use is a programmer mistake. */
  end (): void { this.ended = true }

  private open (): void {
    if (this.ended) throw new TypeError('this transaction has ended (was a call inside it not awaited?)')
  }

  async lock (name: LockName): Promise<void> {
    this.open()
    await this.base.lock(name)
  }

  async get (space: Space, key: string): Promise<Uint8Array | undefined> {
    this.open()
    const written = this.buffer.lookup(space, checkKey(key))
    if (written !== undefined) return written ?? undefined
    const fetched = this.fetched.get(space.name)?.get(key)
    if (fetched !== undefined) return fetched ?? undefined
    return await this.base.get(space, key)
  }

  async prefetch (space: Space, keys: readonly string[]): Promise<void> {
    this.open()
    if (this.base.getMany === undefined) return
    let known = this.fetched.get(space.name)
    if (known === undefined) {
      known = new Map()
      this.fetched.set(space.name, known)
    }
    const wanted = [...new Set(keys.map(checkKey))].filter(k => !known.has(k) && this.buffer.lookup(space, k) === undefined)
    if (wanted.length === 0) return
    const values = await this.base.getMany(space, wanted)
    for (const key of wanted) known.set(key, values.get(key) ?? null)
  }

  iterate (space: Space, range: Range = {}): AsyncIterable<[string, Uint8Array]> {
    this.open()
    checkRange(range)
    const written = this.buffer.within(space, range)
    // deleted keys may hide stored ones, so the stored walk cannot stop at the limit by itself
    const { limit: _limit, ...unlimited } = range
    return merged(this.base.iterate(space, written.length === 0 ? range : unlimited), written, range)
  }

  put (space: Space, key: string, value: Uint8Array): void {
    this.open()
    this.buffer.set(space, checkKey(key), checkValue(value))
  }

  del (space: Space, key: string): void {
    this.open()
    this.buffer.set(space, checkKey(key), null)
  }

  async atomically<T> (fn: () => Promise<T>): Promise<T> {
    this.open()
    return await this.buffer.atomically(fn)
  }
}
