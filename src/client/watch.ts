/**
 * `cairn watch` (README "Client"): audit every active deal once per proving
 * period, at a random moment within it, and expire deals at their end.
 *
 * The moment is drawn uniformly from the first `window` fraction of the period
 * (default 0.8) so the proof, its retries and its deadline normally fall in
 * the period they answer for. A period already audited — by this run, an
 * earlier run, or `cairn audit` — is never audited or paid again: the last
 * audited period of each deal is kept beside the ledger's indexes
 * (src/client/accounting.ts). A period during which nobody watched is skipped:
 * no proof was asked, so nothing is paid and nothing is slashed.
 */
import { CairnError } from '../errors.js'
import { auditState, expireIfEnded, periodCount, periodOf, serialByDeal, settle } from './accounting.js'
import { activeDeals, auditDeal, type AuditContext, type AuditDeal, type AuditOptions, type AuditResult } from './audit.js'
import { DataSetSchedule, type DataSetAuditRecord, type DataSetWatchOptions } from './data-set-watch.js'

export interface WatchOptions extends AuditOptions {
  /** audit every deal whose current period is not yet audited, right away, then return */
  once?: boolean
  /** stop at this unix time, ms */
  until?: number
  /** stop once every deal watched has been audited this many times in this run (or has ended) */
  maxPeriods?: number
  /** how often the schedule is looked at, ms */
  tickMs?: number
  /** how often the list of active deals is re-read from the ledger, ms */
  refreshMs?: number
  /** fraction of the period the audit moment is drawn from */
  window?: number
  /** most audits in flight at once */
  concurrency?: number
  signal?: AbortSignal
  random?: () => number
  onResult?: (result: AuditResult) => void
  onExpired?: (deal: string) => void
  /** an audit that could not be recorded (e.g. the ledger failed); the deal is tried again next period */
  onError?: (deal: string, err: unknown) => void
  /** runs after each recorded result, in the deal's turn: predictive repair (src/reputation/repair-deal.ts); a throw goes to onError */
  afterResult?: (deal: AuditDeal, result: AuditResult) => Promise<void>
  /** the deals audited now, every tick: alerts resolve the incidents of deals that left it (src/alerts/monitor.ts) */
  onDeals?: (deals: readonly AuditDeal[]) => void
  /** also audit the PDP data sets the client recorded (src/client/data-set-watch.ts), each once per its period */
  dataSets?: DataSetWatchOptions
  onDataSet?: (result: DataSetAuditRecord | { dataSet: number, endpoint: string, error: unknown }) => void
}

export interface WatchSummary {
  audits: number
  passed: number
  failed: number
  missed: number
  expired: number
  dealsFailed: number
}

interface Slot { period: number, at: number }

export async function watch (ctx: AuditContext, options: WatchOptions = {}): Promise<WatchSummary> {
  const window = options.window ?? 0.8
  if (!(window > 0 && window <= 1)) throw new CairnError('ERR_INVALID_ARGUMENT', `the audit window must be a fraction of the period in (0, 1], got ${window}`)
  const random = options.random ?? Math.random
  const nowMs = (): number => Date.now()
  const summary: WatchSummary = { audits: 0, passed: 0, failed: 0, missed: 0, expired: 0, dealsFailed: 0 }
  const slots = new Map<string, Slot>()
  const runs = new Map<string, number>()
  const inFlight = new Map<string, Promise<void>>()
  const finished = new Set<string>()
  const concurrency = options.concurrency ?? 8
  const started = new Set<string>()
  const refreshMs = options.refreshMs ?? 10_000
  let deals: AuditDeal[] | undefined
  let listedAt = 0
  const dataSets = options.dataSets === undefined ? undefined : new DataSetSchedule(ctx.ledger, { ...options.dataSets, window, random, once: options.once })
  let dataSetRound: Promise<void> | undefined
  let dataSetRounds = 0

  // a proof result whose settlement did not commit before a stop is settled now
  for (const deal of await activeDeals(ctx.ledger)) await serialByDeal(deal.id, async () => await settle(ctx, deal))

  const run = (deal: AuditDeal, period: number): void => {
    const key = deal.id.toString()
    const work = (async () => {
      let result: AuditResult
      try {
        result = await auditDeal(ctx, deal, { ...options, period })
      } catch (err) {
        options.onError?.(key, err)
        return
      }
      summary.audits++
      summary[result.outcome]++
      if (result.settlement?.dealFailed === true) { summary.dealsFailed++; finished.add(key) }
      runs.set(key, (runs.get(key) ?? 0) + 1)
      options.onResult?.(result)
      if (options.afterResult !== undefined) {
        try {
          await options.afterResult(deal, result)
        } catch (err) {
          options.onError?.(key, err)
        }
        // a repair ends this deal and starts another: list the deals again
        listedAt = 0
      }
    })().finally(() => { inFlight.delete(key) })
    inFlight.set(key, work)
  }

  while (options.signal?.aborted !== true) {
    const now = nowMs()
    if (options.until !== undefined && now >= options.until) break
    // the deal list is re-read from the log now and then; states come from the deal index every tick
    if (deals === undefined || now - listedAt >= refreshMs) {
      deals = await activeDeals(ctx.ledger)
      listedAt = now
    }
    const active: AuditDeal[] = []
    for (const deal of deals) if ((await ctx.ledger.deal(deal.id))?.state === 'active') active.push(deal)
    deals = active
    options.onDeals?.(deals)
    // data sets are audited on their own schedule beside the deals; `once`: one round
    if (dataSets !== undefined && dataSetRound === undefined && !(options.once === true && dataSetRounds > 0)) {
      dataSetRounds++
      dataSetRound = dataSets.tick(now).then((results) => { for (const r of results) options.onDataSet?.(r) }).finally(() => { dataSetRound = undefined })
    }
    for (const deal of deals) {
      const key = deal.id.toString()
      if (inFlight.has(key) || (options.once === true && started.has(key))) continue
      const p = deal.proposal
      const t = Math.floor(now / 1000)
      if (t >= p.end) {
        if (await expireIfEnded(ctx, deal, t)) {
          summary.expired++
          options.onExpired?.(key)
        }
        finished.add(key)
        continue
      }
      const period = periodOf(p, t)
      if (period < 0 || period >= periodCount(p)) continue
      if ((await auditState(ctx.db, deal.id)).audited >= period) continue
      let slot = slots.get(key)
      if (slot === undefined || slot.period !== period) {
        const periodStart = (p.start + period * p.provingPeriod) * 1000
        slot = { period, at: options.once === true ? now : periodStart + Math.floor(random() * window * p.provingPeriod * 1000) }
        slots.set(key, slot)
      }
      if (now >= slot.at && inFlight.size < concurrency) {
        started.add(key)
        run(deal, period)
      }
    }
    if (options.once === true) {
      if (inFlight.size === 0) { await dataSetRound; break }
      await Promise.race(inFlight.values())
      continue
    }
    if (options.maxPeriods !== undefined && inFlight.size === 0) {
      const watched = deals.map(d => d.id.toString())
      const done = watched.every(id => finished.has(id) || (runs.get(id) ?? 0) >= (options.maxPeriods as number))
      if (done) break
    }
    await pause(options.tickMs ?? 1000, options.signal)
  }
  await Promise.allSettled([...inFlight.values(), dataSetRound])
  return summary
}

async function pause (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}
