/**
 * The admin API (README "Provider"): while a provider runs it holds the
 * LevelDB lock, so `cairn provider status|deals` on the same repo ask the
 * running process instead. It listens on loopback only and wants the bearer
 * token the provider writes to `admin.json` ({url, token}, mode 0600) in the
 * repo when it starts and removes when it stops.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import { CairnError, codes, type ErrorCode } from '../errors.js'
import { writeFileAtomic } from '../fs/atomic.js'
import { Router, sendJSON } from '../http/server.js'
import type { DealSummary, Logger, ProviderAdmin, ProviderStatus } from './interface.js'
import { Metrics } from './metrics.js'
import { createHttpService, defaultLimits } from '../http/service.js'
import type { HttpService } from './server.js'

export const ADMIN_FILE = 'admin.json'

export interface AdminEndpoint { url: string, token: string }

export interface RunningAdmin {
  readonly url: string
  readonly service: HttpService
  /** Removes admin.json (if it is still ours) and stops the listener. */
  close (): Promise<void>
}

function bearerMatches (req: IncomingMessage, token: string): boolean {
  const m = /^Bearer ([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '')
  if (m === null) return false
  const given = Buffer.from(m[1] as string)
  const expected = Buffer.from(token)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** Starts the admin listener on 127.0.0.1 and publishes its endpoint in the repo. */
export interface AdminOptions {
  /** more routes: the repo's read views (src/cli/reads.ts), the dashboard */
  mount?: (router: Router) => void
  /** routes that need no token (the dashboard's login page and assets) */
  isPublic?: (method: string, path: string) => boolean
}

/**
 * Starts the admin listener on 127.0.0.1 and publishes its endpoint in the
 * repo. `admin` is the running provider's view; a node that is not a provider
 * (`cairn watch`) passes none and serves only what `options.mount` adds.
 */
export async function startAdmin (repoPath: string, admin: ProviderAdmin | undefined, log: Logger, port = 0, options: AdminOptions = {}): Promise<RunningAdmin> {
  const token = randomBytes(32).toString('base64url')
  const router = new Router()
  if (admin !== undefined) {
    router.on('GET', '/admin/v1/status', async ({ res }) => { sendJSON(res, 200, await admin.status(), { 'Cache-Control': 'no-store' }) })
    router.on('GET', '/admin/v1/deals', async ({ res, url }) => {
      const state = url.searchParams.get('state') ?? undefined
      sendJSON(res, 200, await admin.deals(state === undefined ? {} : { state }), { 'Cache-Control': 'no-store' })
    })
  }
  options.mount?.(router)
  const service = createHttpService({
    router,
    limits: { ...defaultLimits, maxJSONBodyBytes: 4096 },
    log,
    metrics: new Metrics(),
    guard: (req) => {
      if (options.isPublic?.(req.method ?? 'GET', new URL(req.url ?? '/', 'http://localhost').pathname) === true) return
      if (!bearerMatches(req, token)) throw new CairnError('ERR_UNAUTHORIZED', 'the admin API wants `Authorization: Bearer <token>` from the repo\'s admin.json')
    }
  })
  const url = await service.listen('127.0.0.1', port)
  const file = join(repoPath, ADMIN_FILE)
  await writeFileAtomic(file, JSON.stringify({ url, token } satisfies AdminEndpoint) + '\n', 0o600)
  return {
    url,
    service,
    async close (): Promise<void> {
      const current = await readAdminEndpoint(repoPath).catch(() => undefined)
      if (current?.token === token) await rm(file, { force: true })
      await service.close()
    }
  }
}

export async function readAdminEndpoint (repoPath: string): Promise<AdminEndpoint> {
  let text: string
  try {
    text = await readFile(join(repoPath, ADMIN_FILE), 'utf8')
  } catch {
    throw new CairnError('ERR_PROVIDER_NOT_RUNNING', `no provider is running on the repo at ${repoPath} (start one with \`cairn provider start\`)`)
  }
  const value = JSON.parse(text) as Partial<AdminEndpoint>
  if (typeof value.url !== 'string' || typeof value.token !== 'string' || !/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d+$/.test(value.url)) {
    throw new CairnError('ERR_REPO_CORRUPT', `${ADMIN_FILE} in ${repoPath} is not {url, token} for a loopback listener`)
  }
  return { url: value.url, token: value.token }
}

/** The CLI side of the admin API. */
export class AdminClient {
  constructor (private readonly endpoint: AdminEndpoint) {}

  static async forRepo (repoPath: string): Promise<AdminClient> {
    return new AdminClient(await readAdminEndpoint(repoPath))
  }

  private async fetch (path: string, timeoutMs: number): Promise<Response> {
    let res: Response
    try {
      res = await fetch(this.endpoint.url + path, { headers: { authorization: `Bearer ${this.endpoint.token}` }, signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new CairnError('ERR_TIMEOUT', `the admin API at ${this.endpoint.url} did not answer within ${timeoutMs} ms`, { cause: err })
      throw new CairnError('ERR_PROVIDER_NOT_RUNNING', `the node's admin API at ${this.endpoint.url} does not answer (a stale admin.json?)`, { cause: err })
    }
    if (!res.ok) {
      const body = await res.json().catch(() => undefined) as { error?: { code?: string, message?: string } } | undefined
      const code = body?.error?.code
      const known = typeof code === 'string' && Object.hasOwn(codes, code)
      throw new CairnError(known ? code as ErrorCode : 'ERR_INTERNAL', body?.error?.message ?? `admin API answered ${res.status}`)
    }
    return res
  }

  async get<T> (path: string, timeoutMs = 10_000): Promise<T> {
    const res = await this.fetch(path, timeoutMs)
    return dagJSON.decode(new Uint8Array(await res.arrayBuffer())) as T
  }

  /** An NDJSON answer, line by line, once its status says it started well. */
  async linesOpened (path: string, timeoutMs = 600_000): Promise<AsyncIterable<string>> {
    const res = await this.fetch(path, timeoutMs)
    const body = res.body
    return (async function * () {
      if (body === null) return
      let rest = ''
      const decoder = new TextDecoder()
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(chunk, { stream: true })
        let at: number
        while ((at = rest.indexOf('\n')) >= 0) {
          yield rest.slice(0, at)
          rest = rest.slice(at + 1)
        }
      }
      if (rest !== '') yield rest
    })()
  }

  /** `linesOpened`, asked for when the first line is wanted. */
  lines (path: string): AsyncIterable<string> {
    const open = async (): Promise<AsyncIterable<string>> => await this.linesOpened(path)
    return (async function * () { yield * await open() })()
  }

  async status (): Promise<ProviderStatus> {
    try {
      return await this.get('/admin/v1/status')
    } catch (err) {
      // the node holding the repo is not a provider (e.g. `cairn watch`)
      if ((err as CairnError).code === 'ERR_NOT_FOUND') throw new CairnError('ERR_PROVIDER_NOT_RUNNING', 'the node holding this repo is not a provider (is `cairn watch` running on it?)')
      throw err
    }
  }

  async deals (filter: { state?: string } = {}): Promise<DealSummary[]> {
    return await this.get(`/admin/v1/deals${filter.state === undefined ? '' : `?state=${encodeURIComponent(filter.state)}`}`)
  }
}
