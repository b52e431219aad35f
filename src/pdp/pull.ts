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
 * silence and in total time. Only public addresses are fetched from unless
 * the operator allows any (pull-source.ts).
 *
 * Every pull is kept in the store (`pdp/pulls`, src/state/spaces.ts) as its
 * status changes, so a restart loses none: at start the pieces not yet pulled
 * are fetched again, and a data-set step the restart cut short is failed with
 * ERR_PULL_INTERRUPTED (it may or may not have been recorded, and running it
 * again would be refused as a replay; the data set itself says which).
 */
import { createHash } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { CairnError, isCairnError } from '../errors.js'
import { readJSONBody, sendJSON, type Router } from '../http/server.js'
import type { Logger } from '../provider/interface.js'
import type { ServerLimits } from '../provider/server.js'
import type { StateStore } from '../state/interface.js'
import { spaces } from '../state/spaces.js'
import { checkPieceSize, clientOf, pieceCidV2 } from './context.js'
import { parseId, type DataSets } from './datasets.js'
import type { PdpPieces } from './pieces.js'
import { checkSource, pinnedLookup, type PullSources, type Resolve } from './pull-source.js'

export interface PullOptions {
  /** pulls fetched at once (default 4) */
  concurrency: number
  /** longest silence of a source, ms (default 30 s) */
  idleTimeoutMs: number
  /** pieces one request may name (default 32) */
  maxPieces: number
  /** how long an ended pull's status is kept, ms (default one hour) */
  keepMs: number
  /** which addresses a source may have (`provider start --pull-sources`, default public) */
  sources: PullSources
  /** how a source's host is resolved (default dns.lookup; tests name their own) */
  resolve?: Resolve
}

export const PULL_DEFAULTS: PullOptions = { concurrency: 4, idleTimeoutMs: 30_000, maxPieces: 32, keepMs: 3_600_000, sources: 'public' }

/** pulls remembered at once (running, or ended within keepMs) */
const MAX_JOBS = 1024

type PullStatus = 'pending' | 'inProgress' | 'complete' | 'failed'
interface Failure { code: string, message: string }

interface PullPiece { pieceCid: string, sourceUrl: string, status: PullStatus, error?: Failure }

/** A pull as the store keeps it (JSON): the request, who made it, and where it is. */
interface PullJob {
  pieces: PullPiece[]
  extraData?: string
  dataSetId?: number
  recordKeeper?: string
  /** the quota's client (context.ts clientOf) */
  client: string
  /** the data-set step, when extraData was given */
  dataSet?: { status: PullStatus, dataSetId?: number, txHash?: string, error?: Failure }
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

function errorOf (err: unknown): Failure {
  return isCairnError(err) ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err) }
}

function overall (job: PullJob): PullStatus {
  const states = [...job.pieces.map((p) => p.status), ...(job.dataSet === undefined ? [] : [job.dataSet.status])]
  if (states.includes('failed')) return 'failed'
  if (states.every((s) => s === 'complete')) return 'complete'
  return states.every((s) => s === 'pending') ? 'pending' : 'inProgress'
}

const encode = (job: PullJob): Uint8Array => new TextEncoder().encode(JSON.stringify(job))
const decode = (value: Uint8Array): PullJob => JSON.parse(new TextDecoder().decode(value)) as PullJob

/** The pulls of one provider: remembered in its store, run a few at a time. */
export class Pulls {
  private readonly options: PullOptions
  private readonly jobs = new Map<string, PullJob>()
  /** each job's writes, one after another, so the last status is the one kept */
  private readonly saving = new Map<string, Promise<void>>()
  private readonly queue: Array<() => Promise<void>> = []
  private readonly aborts = new Set<AbortController>()
  private running = 0
  private closed = false

  constructor (
    private readonly state: StateStore,
    private readonly pieces: PdpPieces,
    private readonly dataSets: DataSets,
    overrides: Partial<PullOptions> = {},
    private readonly log: Logger = () => {}
  ) {
    this.options = { ...PULL_DEFAULTS, ...overrides }
  }

  /** Reads the kept pulls: forgets the long-ended ones, runs again the unfinished ones. Returns how many were resumed. */
  async load (): Promise<number> {
    const now = Date.now()
    const stale: string[] = []
    let resumed = 0
    for await (const [key, value] of this.state.iterate(spaces.pdpPulls)) {
      let job: PullJob
      try {
        job = decode(value)
      } catch {
        stale.push(key)
        continue
      }
      if (job.endedAt !== undefined) {
        if (now - job.endedAt > this.options.keepMs) stale.push(key)
        else this.jobs.set(key, job)
        continue
      }
      this.jobs.set(key, job)
      if (job.dataSet?.status === 'inProgress') {
        job.dataSet.status = 'failed'
        job.dataSet.error = { code: 'ERR_PULL_INTERRUPTED', message: 'the provider restarted while the pieces were being added; read the data set to see whether they were' }
        job.endedAt = now
        this.save(key)
        continue
      }
      for (const piece of job.pieces) if (piece.status === 'inProgress') piece.status = 'pending'
      this.start(key, job)
      resumed++
    }
    if (stale.length > 0) await this.state.batch(stale.map((key) => ({ type: 'del' as const, space: spaces.pdpPulls, key })))
    if (resumed > 0) this.log('pdp-pulls-resumed', { pulls: resumed })
    return resumed
  }

  /** Stops: fetches under way are cut and nothing more is written; the store keeps them for the next start. */
  close (): void {
    this.closed = true
    this.queue.length = 0
    for (const abort of this.aborts) abort.abort()
  }

  /** Mounts `POST /pdp/piece/pull`. */
  routes (router: Router, limits: ServerLimits): void {
    router.on('POST', '/pdp/piece/pull', async ({ req, res }) => {
      const body = await readJSONBody(req, limits.maxJSONBodyBytes, limits.bodyTimeoutMs)
      const request = this.requestOf(body)
      // a pull is known by its request: posting it again reads its status
      const key = createHash('sha256').update(JSON.stringify([request.pieces, request.extraData ?? null, request.dataSetId ?? null])).digest('hex')
      this.forgetEnded()
      let job = this.jobs.get(key)
      if (job === undefined) {
        if (this.jobs.size >= MAX_JOBS) throw new CairnError('ERR_RATE_LIMITED', 'too many pulls are remembered; try again later')
        // refused before anything is kept: a source this provider may not reach (the fetch checks again, and connects to what it checked)
        await Promise.all(request.pieces.map(async (p) => await checkSource(p.sourceUrl, this.options.sources, this.options.resolve)))
        job = this.jobs.get(key)
        if (job === undefined) {
          job = { ...request, pieces: request.pieces.map((p) => ({ ...p, status: 'pending' })), client: clientOf(req), ...(request.extraData === undefined ? {} : { dataSet: { status: 'pending' } }) }
          this.jobs.set(key, job)
          try {
            await this.saved(key)
          } catch (err) {
            // not kept, so not started: the client may post it again
            this.jobs.delete(key)
            throw err
          }
          this.start(key, job)
        }
      }
      sendJSON(res, 200, {
        status: overall(job),
        pieces: job.pieces.map((p) => ({ pieceCid: p.pieceCid, status: p.status, ...(p.error === undefined ? {} : { error: p.error }) })),
        ...(job.dataSet === undefined ? {} : { dataSet: job.dataSet })
      }, { 'Cache-Control': 'no-store' })
    })
  }

  /** The request's pieces, extraData, dataSetId and recordKeeper, checked. */
  private requestOf (body: unknown): Pick<PullJob, 'extraData' | 'dataSetId' | 'recordKeeper'> & { pieces: Array<{ pieceCid: string, sourceUrl: string }> } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_JSON', 'expected a JSON object {pieces: [{pieceCid, sourceUrl}], extraData?, dataSetId?, recordKeeper?}')
    const b = body as { pieces?: unknown, extraData?: unknown, dataSetId?: unknown, recordKeeper?: unknown }
    if (!Array.isArray(b.pieces) || b.pieces.length === 0) throw new CairnError('ERR_INVALID_JSON', 'pieces must be a non-empty list of {pieceCid, sourceUrl}')
    if (b.pieces.length > this.options.maxPieces) throw new CairnError('ERR_INVALID_ARGUMENT', `at most ${this.options.maxPieces} pieces may be pulled at once, got ${b.pieces.length}`)
    const pieces = b.pieces.map((p: unknown, i: number) => {
      const item = (p ?? {}) as { pieceCid?: unknown, sourceUrl?: unknown }
      const link = pieceCidV2(item.pieceCid, `pieces[${i}].pieceCid`)
      checkPieceSize(link)
      return { pieceCid: link.cid.toString(), sourceUrl: sourceUrlOf(item.sourceUrl, link.cid.toString(), `pieces[${i}]`) }
    })
    const extraData = b.extraData === undefined || b.extraData === null || b.extraData === '' ? undefined : b.extraData
    if (extraData !== undefined && (typeof extraData !== 'string' || !/^0x([0-9a-fA-F]{2})+$/.test(extraData))) throw new CairnError('ERR_INVALID_EXTRA_DATA', 'extraData must be 0x-prefixed hex')
    const dataSetId = b.dataSetId === undefined || b.dataSetId === null || b.dataSetId === 0 ? undefined : parseId(String(b.dataSetId), 'dataSetId')
    return {
      pieces,
      ...(extraData === undefined ? {} : { extraData, recordKeeper: typeof b.recordKeeper === 'string' ? b.recordKeeper : '' }),
      ...(dataSetId === undefined ? {} : { dataSetId })
    }
  }

  private forgetEnded (): void {
    const now = Date.now()
    const ended = [...this.jobs].filter(([, job]) => job.endedAt !== undefined && now - job.endedAt > this.options.keepMs).map(([key]) => key)
    if (ended.length === 0) return
    for (const key of ended) this.jobs.delete(key)
    this.state.batch(ended.map((key) => ({ type: 'del' as const, space: spaces.pdpPulls, key }))).catch((err) => {
      this.log('pdp-pull-store-failed', { message: (err as Error).message })
    })
  }

  /** Writes the job's present state after the writes before it. */
  private async saved (key: string): Promise<void> {
    const previous = this.saving.get(key) ?? Promise.resolve()
    const next = previous.then(async () => {
      const job = this.jobs.get(key)
      if (job === undefined || this.closed) return
      await this.state.batch([{ type: 'put', space: spaces.pdpPulls, key, value: encode(job) }])
    })
    const settled = next.catch(() => {})
    this.saving.set(key, settled)
    void settled.then(() => { if (this.saving.get(key) === settled) this.saving.delete(key) })
    await next
  }

  /** saved, in the background: a failed write is logged (the pull goes on; a restart would run it again) */
  private save (key: string): void {
    this.saved(key).catch((err) => { this.log('pdp-pull-store-failed', { message: (err as Error).message }) })
  }

  private start (key: string, job: PullJob): void {
    this.queue.push(async () => { await this.run(key, job) })
    this.pump()
  }

  private pump (): void {
    while (!this.closed && this.running < this.options.concurrency && this.queue.length > 0) {
      const work = this.queue.shift() as () => Promise<void>
      this.running++
      work().finally(() => { this.running--; this.pump() }).catch(() => {})
    }
  }

  private async run (key: string, job: PullJob): Promise<void> {
    await Promise.all(job.pieces.map(async (piece) => {
      if (piece.status === 'complete' || piece.status === 'failed') return
      piece.status = 'inProgress'
      this.save(key)
      try {
        await this.fetchPiece(piece, job.client)
        piece.status = 'complete'
        this.log('pdp-piece-pulled', { piece: piece.pieceCid, source: piece.sourceUrl })
      } catch (err) {
        // cut by close(): left as it was kept, for the next start
        if (this.closed) return
        piece.status = 'failed'
        piece.error = errorOf(err)
        this.log('pdp-pull-failed', { piece: piece.pieceCid, source: piece.sourceUrl, code: piece.error.code, message: piece.error.message })
      }
      this.save(key)
    }))
    if (this.closed) return
    const step = job.dataSet
    if (step !== undefined && job.extraData !== undefined) {
      if (job.pieces.some((p) => p.status === 'failed')) {
        step.status = 'failed'
        step.error = { code: 'ERR_PULL_FAILED', message: 'a piece could not be pulled, so none was added' }
      } else {
        step.status = 'inProgress'
        // kept before the step runs: a restart from here on fails it rather than running it twice
        try {
          await this.saved(key)
          const requests = job.pieces.map((p) => ({ pieceCid: p.pieceCid, link: pieceCidV2(p.pieceCid, 'pieceCid') }))
          const done = job.dataSetId !== undefined
            ? { dataSetId: job.dataSetId, txHash: (await this.dataSets.addPieces(job.dataSetId, { extraData: job.extraData, pieces: requests })).txHash }
            : await this.dataSets.create({ recordKeeper: job.recordKeeper ?? '', extraData: job.extraData, pieces: requests })
          Object.assign(step, { dataSetId: done.dataSetId, txHash: done.txHash, status: 'complete' })
        } catch (err) {
          step.status = 'failed'
          step.error = errorOf(err)
        }
      }
    }
    job.endedAt = Date.now()
    this.save(key)
  }

  /** Fetches one piece into the store; the bytes must be the piece (size and commitment). */
  private async fetchPiece (piece: PullPiece, client: string): Promise<void> {
    const link = pieceCidV2(piece.pieceCid, 'pieceCid')
    const size = checkPieceSize(link)
    const held = await this.pieces.live(piece.pieceCid)
    if (held?.findable === true) return
    const source = await checkSource(piece.sourceUrl, this.options.sources, this.options.resolve)
    // loaded on first use: undici installs its agent as the process's fetch dispatcher when it loads
    const { Agent, request } = await import('undici')
    this.pieces.quota.check(client, size)
    const reservation = this.pieces.quota.reserve(client)
    const abort = new AbortController()
    this.aborts.add(abort)
    // connects to the address checked above, whatever the name resolves to now
    const agent = new Agent({ connect: { lookup: pinnedLookup(source) } })
    try {
      let res: Dispatcher.ResponseData
      try {
        res = await request(piece.sourceUrl, { method: 'GET', dispatcher: agent, signal: abort.signal, headersTimeout: this.options.idleTimeoutMs, bodyTimeout: this.options.idleTimeoutMs })
      } catch (err) {
        throw new CairnError('ERR_PULL_FAILED', `could not reach ${piece.sourceUrl}: ${(err as Error).message}`, { cause: err })
      }
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => {})
        // not followed: the next hop could be anywhere, this provider's own network included
        if (res.statusCode >= 300 && res.statusCode < 400) throw new CairnError('ERR_PULL_FAILED', `${piece.sourceUrl} answered ${res.statusCode}, a redirect; redirects are not followed`)
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
      await this.pieces.put({ body: bounded(), client, reservation, expect: { cid: link.cid, size }, findable: true, signal: abort.signal })
    } catch (err) {
      abort.abort()
      throw err
    } finally {
      this.aborts.delete(abort)
      reservation.release()
      agent.destroy().catch(() => {})
    }
  }
}
