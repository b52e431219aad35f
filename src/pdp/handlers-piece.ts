/**
 * The piece routes of the PDP API (Curio's `pdp/handlers_upload.go`;
 * docs/pdp.md): announce a piece (`POST /pdp/piece`), upload its bytes
 * (`PUT /pdp/piece/upload/{uuid}`), find it (`GET /pdp/piece?pieceCid=`) and
 * read its status (`GET /pdp/piece/{cid}/status`).
 */
import { CairnError } from '../errors.js'
import { readJSONBody, sendJSON, type Router } from '../http/server.js'
import { parsePieceCidParam } from '../provider/piece.js'
import { checkPieceSize, clientOf, pieceBody, pieceCidOfBody, pieceCidV2, type PdpDeps } from './context.js'
import { answeringCleanly, receive } from './receive.js'
import type { CID } from 'multiformats/cid'

const NO_STORE = { 'Cache-Control': 'no-store' }

export function pieceRoutes (router: Router, deps: PdpDeps): void {
  const { pieces, sessions, limits } = deps

  router.on('POST', '/pdp/piece', async ({ req, res }) => {
    const link = pieceCidOfBody(await readJSONBody(req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs))
    const size = checkPieceSize(link)
    const piece = link.cid.toString()
    const held = await pieces.live(piece)
    if (held !== undefined) {
      // held already: a client naming it restarts its park TTL and may find it from now on
      if (held.findable) await pieces.touch(piece)
      else await pieces.announce(piece)
      sendJSON(res, 200, pieceBody(link.cid), NO_STORE)
      return
    }
    pieces.quota.check(clientOf(req), size)
    const session = sessions.create('classic', clientOf(req), { cid: link.cid, size })
    sendJSON(res, 201, { uploadId: session.id }, { ...NO_STORE, Location: `/pdp/piece/upload/${session.id}` })
  })

  router.on('PUT', '/pdp/piece/upload/:id', async (ctx) => {
    await answeringCleanly(ctx, limits.idleTimeoutMs, async () => {
      const session = sessions.begin(ctx.params.id ?? '', 'classic')
      const expect = session.expect as { cid: CID, size: number }
      await receive(deps, ctx, session, sessions, { max: expect.size, expect, findable: true })
    })
    ctx.res.writeHead(204, NO_STORE)
    ctx.res.end()
  })

  router.on('GET', '/pdp/piece', async ({ res, url }) => {
    const param = url.searchParams.get('pieceCid')
    if (param === null) throw new CairnError('ERR_INVALID_CID', 'the pieceCid query parameter is missing')
    const link = pieceCidV2(param, 'pieceCid')
    const held = await pieces.live(link.cid.toString())
    if (held === undefined || !held.findable) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${link.cid.toString()} is not held by this provider (or its upload is not complete yet)`)
    sendJSON(res, 200, pieceBody(link.cid), NO_STORE)
  })

  router.on('GET', '/pdp/piece/:cid/status', async ({ res, params }) => {
    const cid = parsePieceCidParam(params.cid ?? '')
    const piece = await pieces.v2Of(cid)
    const held = piece === undefined ? undefined : await pieces.live(piece)
    if (piece === undefined || held === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${cid.toString()} is not held by this provider`)
    sendJSON(res, 200, {
      pieceCid: piece,
      status: held.expiresAt === 0 ? 'stored' : 'parked',
      findable: held.findable,
      indexed: held.car !== undefined,
      advertised: false,
      retrieved: false,
      size: held.size,
      parked: held.expiresAt !== 0,
      ...(held.expiresAt === 0 ? {} : { expiresAt: new Date(held.expiresAt * 1000).toISOString() })
    }, NO_STORE)
  })
}
