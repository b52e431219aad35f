/**
 * Taking the bytes of a PDP upload (classic or streaming PUT): the body behind
 * the same guard as a deal upload (idle timeout, minimum rate, size cap), its
 * bytes counted against the park quota as they arrive, stored atomically by
 * the piece registry. A failed PUT leaves its session open for another try.
 */
import type { IncomingMessage } from 'node:http'
import type { CID } from 'multiformats/cid'
import { isCairnError } from '../errors.js'
import { guardedBody, toCairnError, type Context } from '../http/server.js'
import { MAX_PIECE_BYTES } from './pieces.js'
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

/** Refusals after which the rest of the body is not read: the client is gone, too slow, or sending too much. */
const CUT = new Set(['ERR_PAYLOAD_TOO_LARGE', 'ERR_TIMEOUT', 'ERR_UPLOAD_TOO_SLOW', 'ERR_SHUTTING_DOWN', 'ERR_CONTENT_LENGTH'])

/**
 * Reads and drops what is left of a refused body, at most `limit` bytes and
 * until it idles for `idleMs`. A client that streams its body (fetch with
 * `duplex: 'half'`, as synapse-core does) reads no answer until it has sent
 * the body, so an answer before the end of the body reaches it only as a cut
 * connection; once the body is read, the coded answer reaches it.
 */
export async function drain (req: IncomingMessage, limit: number, idleMs: number): Promise<void> {
  if (req.complete || req.destroyed) return
  await new Promise<void>((resolve) => {
    let seen = 0
    const done = (): void => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', done)
      req.off('close', done)
      req.pause()
      resolve()
    }
    const onData = (chunk: Buffer): void => {
      seen += chunk.length
      if (seen > limit) done()
      else timer.refresh()
    }
    const timer = setTimeout(done, idleMs)
    req.on('data', onData)
    req.once('end', done)
    req.once('close', done)
    req.resume()
  })
}

/** Runs a PUT's work; on a refusal that leaves the body unread, reads the rest of it (bounded) so the client gets the coded answer. */
export async function answeringCleanly (ctx: Context, idleMs: number, work: () => Promise<void>): Promise<void> {
  try {
    await work()
  } catch (thrown) {
    const err = toCairnError(thrown)
    if (!CUT.has(err.code) && err.code !== 'ERR_INTERNAL') await drain(ctx.req, MAX_PIECE_BYTES, idleMs)
    throw err
  }
}
