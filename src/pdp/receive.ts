/**
 * Taking the bytes of a PDP upload (classic or streaming PUT): the body behind
 * the same guard as a deal upload (idle timeout, minimum rate, size cap), its
 * bytes counted against the park quota as they arrive, stored atomically by
 * the piece registry. A failed PUT leaves its session open for another try.
 */
import type { CID } from 'multiformats/cid'
import { isCairnError } from '../errors.js'
import { guardedBody, toCairnError, type Context } from '../provider/http.js'
import { clientOf, contentLength, uploadLimitsOf, type PdpDeps } from './context.js'
import type { UploadSession, UploadSessions } from './uploads.js'

export interface ReceiveOptions {
  /** most bytes the body may have */
  max: number
  expect?: { cid: CID, size: number }
  findable: boolean
}

export async function receive (deps: PdpDeps, ctx: Context, session: UploadSession, sessions: UploadSessions, options: ReceiveOptions): Promise<{ cid: CID, size: number }> {
  const { pieces, log, metrics, limits } = deps
  const client = clientOf(ctx.req)
  const reservation = pieces.quota.reserve(client)
  const started = Date.now()
  let guard: ReturnType<typeof guardedBody> | undefined
  try {
    const declared = contentLength(ctx.req, options.max)
    // a classic upload's size is known: a full quota refuses it before a byte is read
    if (options.expect !== undefined) pieces.quota.check(client, options.expect.size)
    guard = declared === undefined ? guardedBody(ctx, options.max, uploadLimitsOf(limits), 'at-most') : guardedBody(ctx, declared, uploadLimitsOf(limits))
    const stored = await pieces.put({ body: guard, client, reservation, expect: options.expect, findable: options.findable, signal: ctx.signal })
    sessions.end(session, stored.cid.toString())
    metrics.uploads.inc({ result: 'stored' })
    metrics.uploadBytes.inc({}, stored.size)
    log('pdp-piece-stored', { upload: session.id, kind: session.kind, piece: stored.cid.toString(), bytes: stored.size, ms: Date.now() - started })
    return stored
  } catch (thrown) {
    const err = isCairnError(guard?.errored) ? guard.errored : toCairnError(thrown)
    sessions.end(session)
    metrics.uploads.inc({ result: 'failed' })
    log('pdp-upload-failed', { upload: session.id, kind: session.kind, bytes: guard?.bytes ?? 0, code: err.code, message: err.message })
    if (guard !== undefined) {
      ctx.req.unpipe(guard)
      guard.destroy()
    }
    throw err
  } finally {
    reservation.release()
  }
}
