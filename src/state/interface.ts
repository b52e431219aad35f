/**
 * The state store: the seam between what a node keeps (ledger, indexes,
 * deals, nonces, pieces and their locations) and where it keeps it. Two
 * backends implement it — LevelDB for one machine (src/state/level.ts) and
 * PostgreSQL for a cluster of nodes (src/state/pg.ts) — and one conformance
 * suite (test/state/suite.ts) holds both to the same behaviour.
 *
 * Data lives in named key spaces (src/state/spaces.ts, the one list of them).
 * Keys are strings ordered by their UTF-8 bytes (LevelDB's bytewise order and
 * PostgreSQL's bytea order agree); values are bytes, encoded by the caller.
 */
import type { LockName, Space } from './spaces.js'

/** Bounds of an ordered walk over one space; like abstract-level's iterator options. */
export interface Range {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  /** walk from the highest key down */
  reverse?: boolean
  /** most entries yielded */
  limit?: number
}

export type WriteOp =
  | { type: 'put', space: Space, key: string, value: Uint8Array }
  | { type: 'del', space: Space, key: string }

export interface StateReader {
  get (space: Space, key: string): Promise<Uint8Array | undefined>
  /** Entries of `space` within `range`, in key order (UTF-8 bytes). */
  iterate (space: Space, range?: Range): AsyncIterable<[string, Uint8Array]>
}

/**
 * A read-modify-write unit. Writes are held until the transaction commits and
 * are seen by its own reads (`get` and `iterate`) at once. Taking a lock
 * (`lock`) makes every other transaction that takes the same lock wait until
 * this one ends: on PostgreSQL this is a row lock inside the transaction, so it
 * orders transactions of different nodes (the ledger head of a cluster).
 */
export interface StateTransaction extends StateReader {
  /**
   * Holds `name` until the transaction ends. Take locks first, before reading
   * what they protect: a read made before the lock may be stale.
   */
  lock (name: LockName): Promise<void>
  /**
   * Reads `keys` of `space` now, in one round trip where the backend can (on
   * LevelDB it does nothing: reads are local); later `get`s of them are
   * answered from memory. For a group of items whose reads are known before
   * they are processed, as the ledger's group commit knows its entries' indexes.
   */
  prefetch (space: Space, keys: readonly string[]): Promise<void>
  put (space: Space, key: string, value: Uint8Array): void
  del (space: Space, key: string): void
  /**
   * Runs `fn`; if it throws, every write it made is undone (the transaction
   * goes on without them) and the error is rethrown. For a group of items of
   * which a bad one must fail alone, as the ledger's group commit does.
   */
  atomically<T> (fn: () => Promise<T>): Promise<T>
}

export interface StateStore extends StateReader {
  /** Writes every op or none, durably (synced) before it resolves. */
  batch (ops: Iterable<WriteOp>): Promise<void>
  /**
   * Runs `fn` in a transaction and commits its writes durably, all or none.
   * `fn` may run more than once (PostgreSQL retries serialization failures and
   * deadlocks), so it must not have effects outside the transaction; an error
   * it throws rolls the transaction back and is rethrown.
   */
  transaction<T> (fn: (tx: StateTransaction) => Promise<T>): Promise<T>
  close (): Promise<void>
}
