/**
 * The streaming upload of the PDP API (Curio's `handleStreamingUploadURL`,
 * `handleStreamingUpload`, `handleFinalizeStreamingUpload`; docs/pdp.md): open
 * a session, stream the bytes of unknown length while their piece commitment is
 * computed, then name the piece CID they must have.
 */
import { CairnError } from '../errors.js'
import { readJSONBody, sendJSON, type Router } from '../http/server.js'
import { clientOf, pieceBody, pieceCidOfBody, type PdpDeps } from './context.js'
import { MAX_PIECE_BYTES, MIN_PIECE_BYTES } from './pieces.js'
import { answeringCleanly, receive } from './receive.js'

const NO_STORE = { 'Cache-Control': 'no-store' }

export function streamingRoutes (router: Router, deps: PdpDeps): void {
  const { pieces, sessions, limits } = deps

  router.on('POST', '/pdp/piece/uploads', ({ req, res }) => {
    // a client whose quota cannot take even the smallest piece is refused before it sends anything
    pieces.quota.check(clientOf(req), MIN_PIECE_BYTES)
    const session = sessions.create('streaming', clientOf(req))
    sendJSON(res, 201, { uploadId: session.id }, { ...NO_STORE, Location: `/pdp/piece/uploads/${session.id}` })
  })

  router.on('PUT', '/pdp/piece/uploads/:id', async (ctx) => {
    await answeringCleanly(ctx, limits.idleTimeoutMs, async () => {
      const session = sessions.begin(ctx.params.id ?? '', 'streaming')
      await receive(deps, ctx, session, sessions, { max: MAX_PIECE_BYTES, findable: false })
    })
    ctx.res.writeHead(204, NO_STORE)
    ctx.res.end()
  })

  router.on('POST', '/pdp/piece/uploads/:id', async ({ req, res, params }) => {
    const session = sessions.get(params.id ?? '', 'streaming')
    if (session.state !== 'received' || session.piece === undefined) throw new CairnError('ERR_UPLOAD_PENDING', `upload ${session.id} has no bytes yet; PUT them before finalizing`)
    const link = pieceCidOfBody(await readJSONBody(req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs))
    if (link.cid.toString() !== session.piece) {
      throw new CairnError('ERR_PIECE_CID_MISMATCH', `the uploaded bytes have piece CID ${session.piece}, not ${link.cid.toString()}`)
    }
    if (!await pieces.announce(session.piece)) throw new CairnError('ERR_UPLOAD_NOT_FOUND', `the piece of upload ${session.id} expired before it was finalized`)
    sessions.delete(session)
    sendJSON(res, 200, pieceBody(link.cid), NO_STORE)
  })
}
