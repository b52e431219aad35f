/**
 * The indexer's index on PostgreSQL (`cairn indexer start --db`), for an
 * indexer whose index should live beside a cluster's state or outgrow one
 * disk. Tables in src/postgres/sql/20261201-indexer.sql; the layout follows
 * the LevelDB index (level-index.ts):
 *
 *   indexer_entries        (multihash, provider, context)      lookups: one primary-key range
 *   indexer_context_parts  (context, part) → multihash[]      withdrawals: by primary key
 *
 * An advertisement is applied in one transaction, with its multihashes sent
 * as arrays (`unnest`), so an advertisement of a few thousand multihashes is a
 * handful of statements, not one per multihash. A chain restart gives the
 * provider a new number, as the LevelDB index does: lookups join on the
 * provider's current number, so the old rows vanish from answers at once, and
 * are deleted by a background sweep a few parts at a time — a restart costs
 * the same whatever the provider had indexed.
 *
 * Several indexers may share one database: each apply first takes the
 * provider's row lock (creating the row if needed), so two applies for one
 * provider run one after the other.
 */
import { CID } from 'multiformats/cid'
import type { Db, Queryable } from '../postgres/db.js'
import type { IndexChange, IndexedProvider, IndexHit, IndexStore } from './interface.js'
import { IndexWork } from './index-work.js'

/** multihashes per INSERT statement: bounds one statement's size whatever the advertisement */
const INSERT_CHUNK = 10_000
/** context parts deleted per transaction by the sweep */
const SWEEP_PARTS = 4

interface ProviderRow {
  peer_id: string
  addresses: string[]
  head: string
  updated_at: string
}

const buf = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

function publicView (r: ProviderRow): IndexedProvider {
  return { peerId: r.peer_id, addresses: r.addresses, head: CID.parse(r.head), updatedAt: Number(r.updated_at) }
}

export class PgIndexStore implements IndexStore {
  /** applies of this process run one at a time (other processes wait on the row lock) */
  private readonly work = new IndexWork()

  private constructor (private readonly db: Db) {}

  /**
   * The index on `db`, whose schema is already migrated (src/postgres/migrate.ts);
   * resumes sweeping the rows of any retired provider numbers. The caller keeps
   * `db` and closes it after the store.
   */
  static async open (db: Db): Promise<PgIndexStore> {
    const store = new PgIndexStore(db)
    store.sweep()
    return store
  }

  async provider (peerId: string): Promise<IndexedProvider | undefined> {
    const { rows } = await this.db.query<ProviderRow>("SELECT peer_id, addresses, head, updated_at FROM indexer_providers WHERE peer_id = $1 AND head <> ''", [peerId])
    return rows[0] === undefined ? undefined : publicView(rows[0])
  }

  async hasAdvertisement (peerId: string, ad: CID): Promise<boolean> {
    const { rows } = await this.db.query('SELECT 1 FROM indexer_ads WHERE peer_id = $1 AND ad = $2', [peerId, ad.toString()])
    return rows.length > 0
  }

  async apply (change: IndexChange): Promise<void> {
    await this.work.serial(async () => { await this.db.transaction(async (q) => { await applyIn(q, change) }) })
    if (change.reset) this.sweep()
  }

  async * find (multihash: Uint8Array, limit: number): AsyncIterable<IndexHit> {
    // joining on the provider's current number skips the rows of a retired one
    const { rows } = await this.db.query<ProviderRow & { metadata: Buffer }>(
      `SELECT p.peer_id, p.addresses, p.head, p.updated_at, c.metadata
         FROM indexer_entries e
         JOIN indexer_providers p ON p.n = e.provider
         JOIN indexer_contexts c ON c.c = e.context
        WHERE e.multihash = $1
        LIMIT $2`, [buf(multihash), limit])
    for (const row of rows) yield { provider: publicView(row), metadata: new Uint8Array(row.metadata) }
  }

  async stats (): Promise<{ providers: number, multihashes: number }> {
    const { rows } = await this.db.query<{ providers: string, multihashes: string }>("SELECT count(*) AS providers, coalesce(sum(entries), 0) AS multihashes FROM indexer_providers WHERE head <> ''")
    return { providers: Number(rows[0]?.providers ?? 0), multihashes: Number(rows[0]?.multihashes ?? 0) }
  }

  /** Deletes the rows of retired provider numbers, a few parts per transaction, until none is left. */
  private sweep (): void {
    this.work.sweep(async () => {
      // numbers retired while a sweep runs are found by the next pass
      for (;;) {
        const { rows } = await this.db.query<{ provider: string }>('SELECT provider FROM indexer_retired')
        if (rows.length === 0) return
        for (const row of rows) {
          while (!this.work.closed && await this.db.transaction(async (q) => await sweepSlice(q, row.provider)));
          if (this.work.closed) return
        }
      }
    })
  }

  /** Resolves when no sweep is running (tests, bench). */
  async swept (): Promise<void> {
    await this.work.swept()
  }

  async close (): Promise<void> {
    await this.work.close()
  }
}

async function applyIn (q: Queryable, change: IndexChange): Promise<void> {
  // the provider's row, created if new, is locked for the rest of the transaction
  await q.query(`INSERT INTO indexer_providers (peer_id, n, addresses, head, updated_at, entries)
                 VALUES ($1, nextval('indexer_numbers'), '{}', '', 0, 0) ON CONFLICT (peer_id) DO NOTHING`, [change.peerId])
  const { rows: [locked] } = await q.query<{ n: string, head: string, entries: string }>('SELECT n, head, entries FROM indexer_providers WHERE peer_id = $1 FOR UPDATE', [change.peerId])
  if (locked === undefined) throw new Error('the provider row vanished inside its transaction')
  let n = locked.n
  let entries = BigInt(locked.entries)
  if (change.reset && locked.head !== '') {
    await q.query('INSERT INTO indexer_retired (provider) VALUES ($1) ON CONFLICT DO NOTHING', [n])
    const { rows: [fresh] } = await q.query<{ n: string }>("SELECT nextval('indexer_numbers') AS n")
    n = (fresh as { n: string }).n
    entries = 0n
  }
  const context = change.context
  if (context !== undefined) {
    const { rows: [known] } = await q.query<{ c: string }>('SELECT c FROM indexer_contexts WHERE provider = $1 AND id = $2', [n, buf(context.id)])
    if (context.remove) {
      if (known !== undefined) {
        const removed = await q.query(`DELETE FROM indexer_entries WHERE provider = $1 AND context = $2
                                         AND multihash IN (SELECT unnest(multihashes) FROM indexer_context_parts WHERE context = $2)`, [n, known.c])
        entries -= BigInt(removed.rowCount ?? 0)
        await q.query('DELETE FROM indexer_context_parts WHERE context = $1', [known.c])
        await q.query('DELETE FROM indexer_contexts WHERE c = $1', [known.c])
      }
    } else {
      let c: string
      if (known !== undefined) {
        c = known.c
        await q.query('UPDATE indexer_contexts SET metadata = $2 WHERE c = $1', [c, buf(context.metadata)])
      } else {
        const { rows: [created] } = await q.query<{ c: string }>("INSERT INTO indexer_contexts (provider, id, c, metadata) VALUES ($1, $2, nextval('indexer_numbers'), $3) RETURNING c", [n, buf(context.id), buf(context.metadata)])
        c = (created as { c: string }).c
      }
      // only rows that were not there yet come back: a multihash is counted and listed once per context
      const added: Buffer[] = []
      for (let at = 0; at < context.multihashes.length; at += INSERT_CHUNK) {
        const chunk = context.multihashes.slice(at, at + INSERT_CHUNK).map(buf)
        const { rows } = await q.query<{ multihash: Buffer }>(`INSERT INTO indexer_entries (multihash, provider, context)
                                                               SELECT DISTINCT m, $2::bigint, $3::bigint FROM unnest($1::bytea[]) AS m
                                                               ON CONFLICT DO NOTHING RETURNING multihash`, [chunk, n, c])
        for (const row of rows) added.push(row.multihash)
      }
      if (added.length > 0) {
        await q.query(`INSERT INTO indexer_context_parts (context, part, multihashes)
                       SELECT $1, coalesce(max(part) + 1, 0), $2::bytea[] FROM indexer_context_parts WHERE context = $1`, [c, added])
        entries += BigInt(added.length)
      }
    }
  }
  await q.query('UPDATE indexer_providers SET n = $2, addresses = $3, head = $4, updated_at = $5, entries = $6 WHERE peer_id = $1',
    [change.peerId, n, change.addresses, change.ad.toString(), change.at, entries.toString()])
  await q.query('INSERT INTO indexer_ads (peer_id, ad) VALUES ($1, $2) ON CONFLICT DO NOTHING', [change.peerId, change.ad.toString()])
}

/** Deletes a few parts' rows of retired number `provider`; false once nothing of it is left. */
async function sweepSlice (q: Queryable, provider: string): Promise<boolean> {
  const { rows: parts } = await q.query<{ context: string, part: number }>(
    `SELECT p.context, p.part FROM indexer_context_parts p JOIN indexer_contexts c ON c.c = p.context
      WHERE c.provider = $1 LIMIT ${SWEEP_PARTS}`, [provider])
  if (parts.length === 0) {
    await q.query('DELETE FROM indexer_contexts WHERE provider = $1', [provider])
    await q.query('DELETE FROM indexer_retired WHERE provider = $1', [provider])
    return false
  }
  for (const p of parts) {
    await q.query(`DELETE FROM indexer_entries WHERE provider = $1 AND context = $2
                     AND multihash IN (SELECT unnest(multihashes) FROM indexer_context_parts WHERE context = $2 AND part = $3)`, [provider, p.context, p.part])
    await q.query('DELETE FROM indexer_context_parts WHERE context = $1 AND part = $2', [p.context, p.part])
  }
  return true
}
