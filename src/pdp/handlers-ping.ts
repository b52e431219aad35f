/** `GET /pdp/ping`: the service is there (Curio's answers 200 to a valid token; cairn's API needs none). */
import { sendJSON, type Router } from '../http/server.js'

export function pingRoutes (router: Router): void {
  router.on('GET', '/pdp/ping', ({ res }) => { sendJSON(res, 200, {}, { 'Cache-Control': 'no-store' }) })
}
