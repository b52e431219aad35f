/**
 * `POST /pdp/piece/pull` (Curio's `pdp/handlers_pull.go`; docs/pdp.md "Pull"):
 * the provider fetches pieces from another provider's `/piece/{cid}`, checks
 * that the bytes are the named piece (size and piece commitment, as an upload
 * is checked) and keeps them as a finalized upload would. With `extraData` it
 * then adds them to a data set (`dataSetId`) or creates one with them
 * (create-and-add), as a signed add would.
 *
 * The client polls by posting the same request again: a pull is remembered by
 * its request, answered with its status (`pending`, `inProgress`, `complete`,
 * `failed`) and forgotten an hour after it ended. Pulls run in the background,
 * a few at a time, each bounded in size (the size the piece CID declares), in
 * silence and in total time.
 */
import { createHash } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { CairnError, isCairnError } from '../errors.js'
import { readJSONBody, sendJSON, type Router } from '../provider/http.js'
import { checkPieceSize, clientOf, pieceCidV2, type PdpDeps } from './context.js'
import { parseId, type DataSets } from './datasets.js'

export interface PullOptions {
  /** pulls fetched at once (default 4) */
  concurrency: number
  /** longest silence of a source, ms (default 30 s) */
  idleTimeoutMs: number
  /** pieces one request may name (default 32) */
  maxPieces: number
  /** how long an ended pull's status is kept, ms (default one hour) */
  keepMs: number
}

export const PULL_DEFAULTS: PullOptions = { concurrency: 4, idleTimeoutMs: 30_000, maxPieces: 32, keepMs: 3_600_000 }

type PullStatus = 'pending' | 'inProgress' | 'complete' | 'failed'

interface PullPiece { pieceCid: string, sourceUrl: string, status: PullStatus, error?: { code: string, message: string } }

interface PullJob {
  pieces: PullPiece[]
  /** the data-set step, when extraData was given */
  dataSet?: { status: PullStatus, dataSetId?: number, txHash?: string, error?: { code: string, message: string } }
  endedAt?: number
}

/** A source URL must be http(s) and name the piece at `/piece/{cid}`, as Curio requires. */
function sourceUrlOf (value: unknown, pieceCid: string, label: string): string {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${label}.sourceUrl is not a URL: ${JSON.stringify(String(value).slice(0, 120))}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CairnError('ERR_INVALID_ARGUMENT', `${label}.sourceUrl must be http or https, got ${url.protocol}`)
  if (!url.pathname.endsWith(`/piece/${pieceCid}`)) throw new CairnError('ERR_INVALID_ARGUMENT', `${label}.sourceUrl must end with /piece/${pieceCid}`)
  return url.toString()
}

function errorOf (err: unknown): { code: string, message: string } {
  return isCairnError(err) ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err) }
}

function overall (job: PullJob): PullStatus {
  const states = [...job.pieces.map((p) => p.status), ...(job.dataSet === undefined ? [] : [job.dataSet.status])]
  if (states.includes('failed')) return 'failed'
  if (states.every((s) => s === 'complete')) return 'complete'
  return states.every((s) => s === 'pending') ? 'pending' : 'inProgress'
}

export function pullRoutes (router: Router, deps: PdpDeps & { dataSets: DataSets }, overrides: Partial<PullOptions> = {}): void {
  const options = { ...PULL_DEFAULTS, ...overrides }
  const { pieces, limits, log } = deps
  const jobs = new Map<string, PullJob>()
  const queue: Array<() => Promise<void>> = []
  let running = 0

  const pump = (): void => {
    while (running < options.concurrency && queue.length > 0) {
      const work = queue.shift() as () => Promise<void>
      running++
      work().finally(() => { running--; pump() }).catch(() => {})
    }
  }

  /** Fetches one piece into the store; the bytes must be the piece (size and commitment). */
  const fetchPiece = async (piece: PullPiece, client: string): Promise<void> => {
    const link = pieceCidV2(piece.pieceCid, 'pieceCid')
    const size = checkPieceSize(link)
    const held = await pieces.live(piece.pieceCid)
    if (held?.findable === true) return
    pieces.quota.check(client, size)
    const reservation = pieces.quota.reserve(client)
    const abort = new AbortController()
    try {
      let res: Dispatcher.ResponseData
      try {
        // loaded on first use: undici installs its agent as the process's fetch dispatcher when it loads
        const { request } = await import('undici')
        res = await request(piece.sourceUrl, { method: 'GET', signal: abort.signal, headersTimeout: options.idleTimeoutMs, bodyTimeout: options.idleTimeoutMs })
      } catch (err) {
        throw new CairnError('ERR_PULL_FAILED', `could not reach ${piece.sourceUrl}: ${(err as Error).message}`, { cause: err })
      }
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => {})
        throw new CairnError('ERR_PULL_FAILED', `${piece.sourceUrl} answered ${res.statusCode}`)
      }
      async function * bounded (): AsyncGenerator<Uint8Array> {
        let seen = 0
        for await (const chunk of res.body) {
          seen += chunk.length
          // more bytes than the piece has: another piece, cut at once
          if (seen > size) throw new CairnError('ERR_PIECE_CID_MISMATCH', `${piece.sourceUrl} sent more than the ${size} bytes of ${piece.pieceCid}`)
          yield chunk
        }
      }
      await pieces.put({ body: bounded(), client, reservation, expect: { cid: link.cid, size }, findable: true, signal: abort.signal })
    } catch (err) {
      abort.abort()
      throw err
    } finally {
      reservation.release()
    }
  }

  const run = async (job: PullJob, client: string, step?: () => Promise<{ dataSetId: number, txHash: string }>): Promise<void> => {
    await Promise.all(job.pieces.map(async (piece) => {
      piece.status = 'inProgress'
      try {
        await fetchPiece(piece, client)
        piece.status = 'complete'
        log('pdp-piece-pulled', { piece: piece.pieceCid, source: piece.sourceUrl })
      } catch (err) {
        piece.status = 'failed'
        piece.error = errorOf(err)
        log('pdp-pull-failed', { piece: piece.pieceCid, source: piece.sourceUrl, code: piece.error.code, message: piece.error.message })
      }
    }))
    if (step !== undefined && job.dataSet !== undefined) {
      if (job.pieces.some((p) => p.status === 'failed')) {
        job.dataSet.status = 'failed'
        job.dataSet.error = { code: 'ERR_PULL_FAILED', message: 'a piece could not be pulled, so none was added' }
      } else {
        job.dataSet.status = 'inProgress'
        try {
          Object.assign(job.dataSet, await step(), { status: 'complete' })
        } catch (err) {
          job.dataSet.status = 'failed'
          job.dataSet.error = errorOf(err)
        }
      }
    }
    job.endedAt = Date.now()
  }

  router.on('POST', '/pdp/piece/pull', async ({ req, res }) => {
    const body = await readJSONBody(req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_JSON', 'expected a JSON object {pieces: [{pieceCid, sourceUrl}], extraData?, dataSetId?, recordKeeper?}')
    const b = body as { pieces?: unknown, extraData?: unknown, dataSetId?: unknown, recordKeeper?: unknown }
    if (!Array.isArray(b.pieces) || b.pieces.length === 0) throw new CairnError('ERR_INVALID_JSON', 'pieces must be a non-empty list of {pieceCid, sourceUrl}')
    if (b.pieces.length > options.maxPieces) throw new CairnError('ERR_INVALID_ARGUMENT', `at most ${options.maxPieces} pieces may be pulled at once, got ${b.pieces.length}`)
    const list = b.pieces.map((p: unknown, i: number) => {
      const item = (p ?? {}) as { pieceCid?: unknown, sourceUrl?: unknown }
      const link = pieceCidV2(item.pieceCid, `pieces[${i}].pieceCid`)
      checkPieceSize(link)
      return { pieceCid: link.cid.toString(), sourceUrl: sourceUrlOf(item.sourceUrl, link.cid.toString(), `pieces[${i}]`) }
    })
    const extraData = b.extraData === undefined || b.extraData === null || b.extraData === '' ? undefined : b.extraData
    if (extraData !== undefined && (typeof extraData !== 'string' || !/^0x([0-9a-fA-F]{2})+$/.test(extraData))) throw new CairnError('ERR_INVALID_EXTRA_DATA', 'extraData must be 0x-prefixed hex')
    const dataSetId = b.dataSetId === undefined || b.dataSetId === null || b.dataSetId === 0 ? undefined : parseId(String(b.dataSetId), 'dataSetId')

    // a pull is known by its request: posting it again reads its status
    const key = createHash('sha256').update(JSON.stringify([list, extraData ?? null, dataSetId ?? null])).digest('hex')
    const now = Date.now()
    for (const [k, job] of jobs) if (job.endedAt !== undefined && now - job.endedAt > options.keepMs) jobs.delete(k)
    let job = jobs.get(key)
    if (job === undefined) {
      if (jobs.size >= 1024) throw new CairnError('ERR_RATE_LIMITED', 'too many pulls are remembered; try again later')
      const fresh: PullJob = { pieces: list.map((p) => ({ ...p, status: 'pending' })) }
      job = fresh
      let step: (() => Promise<{ dataSetId: number, txHash: string }>) | undefined
      if (extraData !== undefined) {
        fresh.dataSet = { status: 'pending' }
        const requests = list.map((p) => ({ pieceCid: p.pieceCid, link: pieceCidV2(p.pieceCid, 'pieceCid') }))
        const recordKeeper = typeof b.recordKeeper === 'string' ? b.recordKeeper : ''
        step = dataSetId !== undefined
          ? async () => ({ dataSetId, txHash: (await deps.dataSets.addPieces(dataSetId, { extraData, pieces: requests })).txHash })
          : async () => await deps.dataSets.create({ recordKeeper, extraData, pieces: requests })
      }
      jobs.set(key, fresh)
      const client = clientOf(req)
      queue.push(async () => { await run(fresh, client, step) })
      pump()
    }
    sendJSON(res, 200, {
      status: overall(job),
      pieces: job.pieces.map((p) => ({ pieceCid: p.pieceCid, status: p.status, ...(p.error === undefined ? {} : { error: p.error }) })),
      ...(job.dataSet === undefined ? {} : { dataSet: job.dataSet })
    }, { 'Cache-Control': 'no-store' })
  })
}
