/**
 * A deal's piece from the PDP piece store (docs/pdp.md "Repair by pull"):
 * `POST /v1/deals/{id}/piece/from-held` `{pieceCid}`, with the client's
 * upload signature as for `PUT /v1/deals/{id}/piece`, feeds the bytes of a
 * piece this provider already holds — typically fetched from another
 * provider's `/piece` with `POST /pdp/piece/pull` — to the deal's upload, so
 * a repair need not send the piece through the client. The upload checks the
 * bytes exactly as a client's (size, CommP, CAR), so a wrong piece fails the
 * same way.
 */
import { readJSONBody, sendJSON, type Router } from '../http/server.js'
import { CairnError } from '../errors.js'
import type { DealService } from '../provider/interface.js'
import type { ServerLimits } from '../provider/server.js'
import { pieceCidOfBody } from './context.js'
import type { PdpPieces } from './pieces.js'

export const FROM_HELD_ROUTE = '/v1/deals/:id/piece/from-held'

export function dealFromHeldRoute (router: Router, deals: Pick<DealService, 'upload'>, pieces: Pick<PdpPieces, 'open'>, limits: ServerLimits): void {
  router.on('POST', FROM_HELD_ROUTE, async (ctx) => {
    const link = pieceCidOfBody(await readJSONBody(ctx.req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs))
    const handle = await pieces.open(link.cid)
    if (handle === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${link.cid.toString()} is not held by this provider (pull it with POST /pdp/piece/pull first)`)
    const body = handle.createReadStream(0, handle.size - 1)
    try {
      const status = await deals.upload({ dealId: ctx.params.id ?? '', contentLength: handle.size, body, authorization: ctx.req.headers.authorization, signal: ctx.signal })
      sendJSON(ctx.res, 200, status)
    } finally {
      body.destroy()
    }
  })
}
