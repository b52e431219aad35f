/**
 * Upload sessions of the PDP API (docs/pdp.md): the `{uuid}` a client gets in
 * `Location` and then PUTs to (and, streaming, finalizes). Sessions live in
 * memory only: they hold no bytes (an upload's bytes are stored by the time its
 * PUT answers), so a restart only makes a client start its upload again. They
 * are bounded in number, in total and per client, and forgotten when unused.
 */
import { randomUUID } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'

export interface UploadSession {
  readonly id: string
  readonly kind: 'classic' | 'streaming'
  readonly client: string
  /** classic: the piece the client announced, and its payload size */
  readonly expect?: { cid: CID, size: number }
  /** open: waiting for bytes; busy: a PUT is running; received: bytes stored (streaming: waiting for finalize) */
  state: 'open' | 'busy' | 'received'
  /** streaming, once received: the piece the bytes hash to */
  piece?: string
  /** ms since the epoch: when created, then when its bytes were received */
  touched: number
}

export interface SessionLimits {
  max: number
  maxPerClient: number
  /** a session that gets no bytes for this long is forgotten */
  idleMs: number
  /** a received streaming upload that is not finalized within this long is forgotten (its piece stays parked) */
  receivedMs: number
}

export const defaultSessionLimits: SessionLimits = { max: 4096, maxPerClient: 256, idleMs: 3600_000, receivedMs: 24 * 3600_000 }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>()

  constructor (private readonly limits: SessionLimits = defaultSessionLimits, private readonly now: () => number = Date.now) {}

  private expired (s: UploadSession, now: number): boolean {
    if (s.state === 'busy') return false
    return now - s.touched > (s.state === 'received' ? this.limits.receivedMs : this.limits.idleMs)
  }

  private prune (): void {
    const now = this.now()
    for (const [id, s] of this.sessions) if (this.expired(s, now)) this.sessions.delete(id)
  }

  create (kind: UploadSession['kind'], client: string, expect?: UploadSession['expect']): UploadSession {
    this.prune()
    if (this.sessions.size >= this.limits.max) throw new CairnError('ERR_TOO_MANY_UPLOADS', `${this.sessions.size} uploads are open at this provider; the limit is ${this.limits.max}`)
    let mine = 0
    for (const s of this.sessions.values()) if (s.client === client) mine++
    if (mine >= this.limits.maxPerClient) throw new CairnError('ERR_TOO_MANY_UPLOADS', `${client} has ${mine} uploads open; the limit is ${this.limits.maxPerClient}`)
    const session: UploadSession = { id: randomUUID(), kind, client, expect, state: 'open', touched: this.now() }
    this.sessions.set(session.id, session)
    return session
  }

  /** The session of `id` and `kind`, or ERR_UPLOAD_NOT_FOUND (unknown, malformed, expired, or of the other kind). */
  get (id: string, kind: UploadSession['kind']): UploadSession {
    const s = UUID.test(id) ? this.sessions.get(id) : undefined
    if (s === undefined || s.kind !== kind || this.expired(s, this.now())) {
      throw new CairnError('ERR_UPLOAD_NOT_FOUND', `no ${kind === 'classic' ? 'piece upload' : 'streaming upload'} ${JSON.stringify(id.slice(0, 64))} at this provider (unknown or expired)`)
    }
    return s
  }

  /** Takes an open session for a PUT: ERR_UPLOAD_DONE if its bytes were taken, ERR_UPLOAD_IN_PROGRESS while another PUT runs. */
  begin (id: string, kind: UploadSession['kind']): UploadSession {
    const s = this.get(id, kind)
    if (s.state === 'received') throw new CairnError('ERR_UPLOAD_DONE', `upload ${id} has its bytes already`)
    if (s.state === 'busy') throw new CairnError('ERR_UPLOAD_IN_PROGRESS', `an upload to ${id} is already in progress`)
    s.state = 'busy'
    return s
  }

  /** Ends a PUT: received with the piece, or open again after a failure (the client may try again). */
  end (s: UploadSession, piece?: string): void {
    s.state = piece === undefined ? 'open' : 'received'
    if (piece !== undefined) s.piece = piece
    s.touched = this.now()
  }

  delete (s: UploadSession): void {
    this.sessions.delete(s.id)
  }
}
