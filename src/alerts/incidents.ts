/**
 * The incidents `cairn watch` has alerted, kept in the repo's database so
 * that a restarted watch neither announces an incident again nor forgets to
 * announce its end. One incident at most is open per subject (a deal's
 * audits, a provider's forecast, a piece's expiry …); its open alert is
 * stored after it was delivered (or given up on), and removed when the
 * resolved one was. A crash between the delivery and the write sends that
 * alert once more after the restart: at least once, never silently lost.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { Database } from '../repo/repo.js'
import type { Alert } from './interface.js'

const OPEN_PREFIX = 'alerts!open!'
const DONE_PREFIX = 'alerts!done!'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** An incident's id: a hash of what it is about and when it opened, so a replay names it alike. */
export function alertId (subject: string, startedAt: number): string {
  return bytesToHex(sha256(encoder.encode(`${subject}\n${startedAt}`))).slice(0, 16)
}

export class IncidentBook {
  private constructor (private readonly db: Database, private readonly open: Map<string, Alert>) {}

  static async load (db: Database): Promise<IncidentBook> {
    const open = new Map<string, Alert>()
    for await (const [key, value] of db.iterator({ gte: OPEN_PREFIX, lt: OPEN_PREFIX + '\uffff' })) {
      open.set(key.slice(OPEN_PREFIX.length), JSON.parse(decoder.decode(value)) as Alert)
    }
    return new IncidentBook(db, open)
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
      { type: 'put', key: DONE_PREFIX + id, value: encoder.encode(new Date().toISOString()) }
    ], { sync: true })
  }
}
