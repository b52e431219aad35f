/**
 * The incidents `cairn watch` has alerted, kept in the repo's database so
 * that a restarted watch neither announces an incident again nor forgets to
 * announce its end. One incident at most is open per subject (a deal's
 * audits, a provider's forecast, a piece's expiry …); its open alert is
 * stored after it was delivered (or given up on), and removed when the
 * resolved one was. A crash between the delivery and the write sends that
 * alert once more after the restart: at least once, never silently lost.
 *
 * The ids of resolved incidents are kept only to stop a replayed detector
 * from opening one of them again; an id names its start time, so once it is
 * older than anything a replay reaches back to it guards nothing. They are
 * pruned to those resolved within the last 30 days and, of those, the newest
 * 10,000 — when the book is loaded and again every 256 resolutions — so a
 * watch left running for years keeps a bounded key space.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { Database } from '../repo/repo.js'
import type { Alert } from './interface.js'

const OPEN_PREFIX = 'alerts!open!'
const DONE_PREFIX = 'alerts!done!'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const DEFAULT_DONE_RETAIN_MS = 30 * 86_400_000
export const DEFAULT_DONE_RETAIN_MAX = 10_000
/** resolutions between two prunes of a running book */
const PRUNE_EVERY = 256

export interface IncidentBookOptions {
  /** resolved ids older than this are forgotten, ms (default 30 days) */
  retainMs?: number
  /** at most this many resolved ids are kept, the newest (default 10,000) */
  retainMax?: number
  /** unix ms */
  now?: () => number
}

/** An incident's id: a hash of what it is about and when it opened, so a replay names it alike. */
export function alertId (subject: string, startedAt: number): string {
  return bytesToHex(sha256(encoder.encode(`${subject}\n${startedAt}`))).slice(0, 16)
}

export class IncidentBook {
  private closings = 0
  private readonly now: () => number

  private constructor (private readonly db: Database, private readonly open: Map<string, Alert>, private readonly options: IncidentBookOptions) {
    this.now = options.now ?? Date.now
  }

  static async load (db: Database, options: IncidentBookOptions = {}): Promise<IncidentBook> {
    const open = new Map<string, Alert>()
    for await (const [key, value] of db.iterator({ gte: OPEN_PREFIX, lt: OPEN_PREFIX + '\uffff' })) {
      open.set(key.slice(OPEN_PREFIX.length), JSON.parse(decoder.decode(value)) as Alert)
    }
    const book = new IncidentBook(db, open, options)
    await book.prune()
    return book
  }

  /**
   * Forgets resolved ids past the retention (age, then count: the oldest go
   * first). One pass over the done keys, which the pruning itself bounds.
   * Returns how many went.
   */
  async prune (): Promise<number> {
    const oldest = this.now() - (this.options.retainMs ?? DEFAULT_DONE_RETAIN_MS)
    const max = this.options.retainMax ?? DEFAULT_DONE_RETAIN_MAX
    const kept: Array<{ key: string, at: number }> = []
    const drop: string[] = []
    for await (const [key, value] of this.db.iterator({ gte: DONE_PREFIX, lt: DONE_PREFIX + '\uffff' })) {
      const at = Date.parse(decoder.decode(value))
      // an unreadable time is treated as old: the id is only a guard against replays
      if (Number.isNaN(at) || at < oldest) drop.push(key)
      else kept.push({ key, at })
    }
    if (kept.length > max) {
      kept.sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : 1))
      for (const { key } of kept.slice(0, kept.length - max)) drop.push(key)
    }
    if (drop.length > 0) await this.db.batch(drop.map(key => ({ type: 'del' as const, key })), { sync: true })
    return drop.length
  }

  /** The open alert of a subject, if one was sent and not yet resolved. */
  get (subject: string): Alert | undefined {
    return this.open.get(subject)
  }

  subjects (): string[] {
    return [...this.open.keys()]
  }

  /** Whether an incident with this id was announced resolved already (a replayed detector may open it again). */
  async resolved (id: string): Promise<boolean> {
    return (await this.db.get(DONE_PREFIX + id)) !== undefined
  }

  /** Records (or updates the evidence of) the open incident of `subject`. */
  async opened (subject: string, alert: Alert): Promise<void> {
    this.open.set(subject, alert)
    await this.db.put(OPEN_PREFIX + subject, encoder.encode(JSON.stringify(alert)), { sync: true })
  }

  /** Forgets the subject's open incident and remembers its id as resolved, in one batch. */
  async closed (subject: string, id: string): Promise<void> {
    this.open.delete(subject)
    await this.db.batch([
      { type: 'del', key: OPEN_PREFIX + subject },
      { type: 'put', key: DONE_PREFIX + id, value: encoder.encode(new Date(this.now()).toISOString()) }
    ], { sync: true })
    if (++this.closings % PRUNE_EVERY === 0) await this.prune()
  }
}
