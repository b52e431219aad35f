/**
 * The provider's web dashboard on its admin listener (loopback only): a page
 * that logs in with the admin token and draws capacity, deals by state, recent
 * proofs with their latency, earnings, retrievals and event-loop delay, polled
 * every second from `GET /admin/v1/dashboard`. Its three assets are files of
 * this package (src/provider/dashboard/), served here under a Content Security
 * Policy that allows nothing from anywhere else: no CDN, no inline script.
 */
import { readFile } from 'node:fs/promises'
import { CairnError } from '../errors.js'
import { sendJSON, type Router } from '../http/server.js'
import type { ProviderAdmin } from './interface.js'
import type { Metrics } from './metrics.js'
import type { SelfCheckReport } from './selfcheck.js'

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8'
}

// compiled: dist/src/provider/dashboard.js; the assets stay in src/ (packed with the package)
const DIR = new URL('../../../src/provider/dashboard/', import.meta.url)

const HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store'
}

/** The page and its assets need no token (the page asks for it); everything else on the admin listener does. */
export function isDashboardAsset (method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/' || path === '/dashboard' || path.startsWith('/dashboard/'))
}

export interface DashboardSources {
  admin: ProviderAdmin
  metrics: Metrics
  /** the last self-check round (`--self-check`), if any */
  selfCheck?: () => SelfCheckReport | undefined
}

export function mountDashboard (router: Router, sources: DashboardSources): void {
  const cache = new Map<string, Buffer>()
  const asset = async (name: string): Promise<Buffer> => {
    const type = ASSETS[name]
    if (type === undefined) throw new CairnError('ERR_NOT_FOUND', `no dashboard asset ${JSON.stringify(name)}`)
    let bytes = cache.get(name)
    if (bytes === undefined) {
      bytes = await readFile(new URL(name, DIR))
      cache.set(name, bytes)
    }
    return bytes
  }
  const serve = async (name: string, res: import('node:http').ServerResponse, head: boolean): Promise<void> => {
    const bytes = await asset(name)
    res.writeHead(200, { ...HEADERS, 'Content-Type': ASSETS[name] as string, 'Content-Length': String(bytes.length) })
    res.end(head ? undefined : bytes)
  }
  router.on(['GET', 'HEAD'], '/', ({ res }) => { res.writeHead(302, { Location: '/dashboard/', ...HEADERS }); res.end() })
  router.on(['GET', 'HEAD'], '/dashboard', ({ res }) => { res.writeHead(302, { Location: '/dashboard/', ...HEADERS }); res.end() })
  router.on(['GET', 'HEAD'], '/dashboard/', async ({ req, res }) => { await serve('index.html', res, req.method === 'HEAD') })
  router.on(['GET', 'HEAD'], '/dashboard/:file', async ({ req, res, params }) => { await serve(params.file ?? '', res, req.method === 'HEAD') })

  router.on('GET', '/admin/v1/dashboard', async ({ res }) => {
    const { admin, metrics } = sources
    const status = await admin.status()
    const deals = await admin.deals({})
    sendJSON(res, 200, JSON.parse(JSON.stringify({
      did: status.did,
      url: status.url,
      startedAt: status.startedAt,
      capacity: status.capacity,
      deals: status.deals,
      bytesStored: status.bytesStored,
      earnings: status.earnings,
      proofsAnswered: status.proofsAnswered,
      proofs: metrics.recentProofs,
      retrievals: { count: metrics.retrievals.total(), bytes: metrics.retrievalBytes.total() },
      uploads: { stored: metrics.uploads.get({ result: 'stored' }), failed: metrics.uploads.get({ result: 'failed' }), bytes: metrics.uploadBytes.total() },
      eventLoop: metrics.loop(),
      selfCheck: sources.selfCheck?.() ?? null,
      recentDeals: deals.slice(0, 20)
    })), { 'Cache-Control': 'no-store' })
  })
}
