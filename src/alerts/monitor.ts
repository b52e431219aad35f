/**
 * What `cairn watch` raises alerts about, turned into incidents with one
 * 'open' and one 'resolved' alert each (docs/monitoring.md):
 *   - audit: a deal failed or missed an audit; resolved by its next pass, by
 *     a repair that replaced it, or when it stops being audited (it failed
 *     for good, was terminated or ended);
 *   - anomaly: the online detector (src/reputation/anomaly.ts) over each
 *     provider's proof latency, misses and failures; its state is kept in the
 *     repo so a restart neither forgets a baseline nor an open incident;
 *   - forecast: the fault predictor (src/reputation/predictor.ts) puts a
 *     provider's next pass below a threshold; resolved once it is back above
 *     it by a margin, so a forecast hovering at the threshold does not flap;
 *   - expiry: a piece whose last active deal ends within a window, with no
 *     later deal to keep it; resolved when one is made, or when it has ended;
 *   - repair: a repair was needed and could not be made; resolved by a later
 *     repair or when the deal is no longer audited.
 * Work is done in arrival order on one queue, so alerts leave in the order
 * things happened and the audits never wait for a slow receiver.
 */
import type { AuditDeal, AuditResult } from '../client/audit.js'
import type { Ledger } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'
import { AnomalyDetector, type DetectorOptions, type DetectorSnapshot, type IncidentEvent } from '../reputation/anomaly.js'
import type { ModelParams, Reputation } from '../reputation/interface.js'
import { reputationsFromLedger } from '../reputation/ledger.js'
import { DEFAULT_PARAMS, emptyReputation, update } from '../reputation/model.js'
import { predictAudit } from '../reputation/predictor.js'
import { DEFAULT_POLICY } from '../reputation/repair.js'
import { isCairnError } from '../errors.js'
import { alertId, IncidentBook } from './incidents.js'
import type { Alert, AlertLog, AlertSink } from './interface.js'

export const DEFAULT_EXPIRING_MS = 7 * 86_400_000
/** a forecast resolves once the predicted pass is this far back above the threshold */
export const FORECAST_MARGIN = 0.05

const DETECTOR_KEY = 'alerts!detector'

export interface MonitorOptions {
  sinks: readonly AlertSink[]
  log?: AlertLog
  /** unix ms */
  now?: () => number
  /** forecast incidents below this predicted pass probability (default: the repair threshold); −Infinity: none */
  forecastBelow?: number
  /** audits of a provider before its forecast is alerted on (default: as repair) */
  forecastMinAudits?: number
  /** expiry incidents for pieces whose last deal ends within this, ms; 0: none */
  expiringMs?: number
  detector?: Partial<DetectorOptions>
  params?: ModelParams
}

/** What opens an incident: the alert's own fields, its evidence, and when it began. */
interface Opening extends Pick<Alert, 'source' | 'kind' | 'provider' | 'deal' | 'piece' | 'summary'> {
  evidence: Record<string, unknown>
  /** unix ms; the incident's id is derived from it unless given */
  startedAt: number
  id?: string
}

export class AlertMonitor {
  /** incidents announced open and resolved; deliveries (one per alert and sink) made and failed */
  readonly counts = { opened: 0, resolved: 0, sent: 0, failed: 0 }
  private queue: Promise<void> = Promise.resolve()
  private latestDeals: { deals: readonly AuditDeal[], at: number } | undefined
  private readonly now: () => number
  private readonly log: AlertLog

  private constructor (
    private readonly db: Database,
    private readonly book: IncidentBook,
    private readonly detector: AnomalyDetector,
    private readonly reputations: Map<string, Reputation>,
    private readonly options: MonitorOptions
  ) {
    this.now = options.now ?? Date.now
    this.log = options.log ?? (() => {})
  }

  static async open (db: Database, ledger: Pick<Ledger, 'log'>, options: MonitorOptions): Promise<AlertMonitor> {
    const book = await IncidentBook.load(db, { now: options.now })
    const saved = await db.get(DETECTOR_KEY)
    let detector: AnomalyDetector
    try {
      detector = saved === undefined ? new AnomalyDetector(options.detector) : AnomalyDetector.restore(JSON.parse(new TextDecoder().decode(saved)) as DetectorSnapshot, options.detector)
    } catch {
      // a snapshot from another version: the baselines are learnt again
      detector = new AnomalyDetector(options.detector)
    }
    const reputations = await reputationsFromLedger(ledger, options.params ?? DEFAULT_PARAMS)
    return new AlertMonitor(db, book, detector, reputations, options)
  }

  /** An audit result, as watch records it. */
  audit (deal: AuditDeal, result: AuditResult): void {
    // the time of the result, not of its turn in the queue
    const at = this.now()
    this.enqueue(async () => { await this.onAudit(deal, result, at) })
  }

  /** A repair replaced `deal` with another. */
  repaired (deal: string, replacement: string, url: string): void {
    const how = `replaced by deal ${replacement} at ${url}`
    this.enqueue(async () => {
      await this.resolve(`audit|${deal}`, how)
      await this.resolve(`repair|${deal}`, how)
    })
  }

  /** A repair was needed and could not be made. */
  unrepaired (deal: AuditDeal, err: unknown): void {
    const code = isCairnError(err) ? err.code : 'ERR_INTERNAL'
    const message = (err as Error).message
    const at = this.now()
    this.enqueue(async () => {
      await this.raise(`repair|${deal.id.toString()}`, {
        source: 'repair',
        kind: 'unrepaired',
        provider: deal.provider,
        deal: deal.id.toString(),
        piece: deal.proposal.pieceCid.toString(),
        summary: `deal ${deal.id.toString()} needs a repair that could not be made: ${code}`,
        evidence: { code, message },
        startedAt: at
      })
    })
  }

  /** The deals watch audits now: ended deals' incidents resolve, expiring pieces open. Coalesced: only the latest list is looked at. */
  deals (deals: readonly AuditDeal[]): void {
    const pending = this.latestDeals !== undefined
    this.latestDeals = { deals, at: this.now() }
    if (pending) return
    this.enqueue(async () => {
      const latest = this.latestDeals
      this.latestDeals = undefined
      if (latest !== undefined) await this.onDeals(latest.deals, latest.at)
    })
  }

  /** Waits for every alert queued so far. */
  async flush (): Promise<void> {
    await this.queue
  }

  private enqueue (work: () => Promise<void>): void {
    this.queue = this.queue.then(work).catch((err: unknown) => {
      this.log('warn', `alerts: ${(err as Error).message}`)
    })
  }

  private async onAudit (deal: AuditDeal, r: AuditResult, at: number): Promise<void> {
    const id = deal.id.toString()
    const subject = `audit|${id}`
    if (r.outcome === 'passed') {
      await this.resolve(subject, `passed its proof for period ${r.period}`)
    } else {
      const evidence = { outcome: r.outcome, period: r.period, code: r.code, message: r.message, attempts: r.attempts.length, ms: r.ms, dealFailed: r.settlement?.dealFailed === true }
      const open = this.book.get(subject)
      if (open !== undefined) {
        // the same incident goes on: its evidence grows, nobody is paged twice
        const faults = Number(open.evidence.faults ?? 1) + 1
        await this.book.opened(subject, { ...open, evidence: { ...open.evidence, faults, last: evidence } })
      } else {
        await this.raise(subject, {
          source: 'audit',
          kind: r.outcome,
          provider: deal.provider,
          deal: id,
          piece: deal.proposal.pieceCid.toString(),
          summary: `deal ${id} ${r.outcome === 'failed' ? 'failed its proof' : 'missed its audit'} for period ${r.period}${r.code === undefined ? '' : `: ${r.code}`}`,
          evidence: { ...evidence, faults: 1 },
          startedAt: at
        })
      }
    }

    const outcome = r.outcome === 'passed' ? 'pass' : r.outcome === 'failed' ? 'fail' : 'miss'
    for (const e of this.detector.observeAudit(r.provider, at, outcome, r.outcome === 'missed' ? undefined : r.ms)) await this.onAnomaly(e)
    await this.db.put(DETECTOR_KEY, new TextEncoder().encode(JSON.stringify(this.detector.snapshot())))

    const rep = update(this.reputations.get(r.provider) ?? emptyReputation(r.provider), { provider: r.provider, at, outcome, latencyMs: r.outcome === 'missed' ? undefined : r.ms }, this.options.params ?? DEFAULT_PARAMS)
    this.reputations.set(r.provider, rep)
    await this.forecast(rep, at)
  }

  private async onAnomaly (e: IncidentEvent): Promise<void> {
    const inc = e.incident
    const subject = `anomaly|${inc.series}|${inc.provider}`
    if (e.type === 'resolved') {
      await this.resolve(subject, `${inc.series} back to its baseline after ${inc.evidence.samples} samples`, inc.endedAt)
      return
    }
    await this.raise(subject, {
      source: 'anomaly',
      kind: inc.kind,
      provider: inc.provider,
      summary: inc.summary,
      evidence: { series: inc.series, onsetAt: new Date(inc.onsetAt).toISOString(), ...inc.evidence },
      startedAt: inc.startedAt,
      id: inc.id
    })
  }

  private async forecast (rep: Reputation, at: number): Promise<void> {
    const below = this.options.forecastBelow ?? DEFAULT_POLICY.threshold
    const minAudits = this.options.forecastMinAudits ?? DEFAULT_POLICY.minAudits
    const audits = rep.passes + rep.failures + rep.misses
    if (!Number.isFinite(below) || audits < minAudits) return
    const p = predictAudit(rep, this.options.params ?? DEFAULT_PARAMS, at)
    const subject = `forecast|${rep.provider}`
    const evidence = { predicted: round(p.pass), miss: round(p.miss), fail: round(p.fail), threshold: below, audits }
    if (p.pass < below) {
      if (this.book.get(subject) !== undefined) return
      await this.raise(subject, {
        source: 'forecast',
        kind: 'below-threshold',
        provider: rep.provider,
        summary: `provider ${rep.provider} is predicted to pass its next audit with probability ${p.pass.toFixed(3)}, below ${below}`,
        evidence,
        startedAt: at
      })
    } else if (p.pass >= below + FORECAST_MARGIN) {
      await this.resolve(subject, `predicted to pass with probability ${p.pass.toFixed(3)} again`)
    }
  }

  private async onDeals (deals: readonly AuditDeal[], at: number): Promise<void> {
    const active = new Set(deals.map(d => d.id.toString()))
    for (const subject of this.book.subjects()) {
      const [source, deal] = subject.split('|')
      if ((source === 'audit' || source === 'repair') && deal !== undefined && !active.has(deal)) {
        await this.resolve(subject, 'the deal is no longer audited (it failed, was terminated or ended)')
      }
    }
    const window = this.options.expiringMs ?? DEFAULT_EXPIRING_MS
    if (!(window > 0)) return
    // the last end of each piece's active deals: a piece is safe while one deal outlives the window
    const last = new Map<string, AuditDeal>()
    for (const d of deals) {
      const piece = d.proposal.pieceCid.toString()
      const seen = last.get(piece)
      if (seen === undefined || d.proposal.end > seen.proposal.end) last.set(piece, d)
    }
    for (const [piece, d] of last) {
      const subject = `expiry|${piece}`
      const endsAt = d.proposal.end * 1000
      if (endsAt - at <= window) {
        if (this.book.get(subject) !== undefined) continue
        await this.raise(subject, {
          source: 'expiry',
          kind: 'expiring',
          provider: d.provider,
          deal: d.id.toString(),
          piece,
          summary: `piece ${piece} is held by no deal past ${new Date(endsAt).toISOString()}: its last deal ${d.id.toString()} ends then`,
          evidence: { endsAt: new Date(endsAt).toISOString(), replicas: deals.filter(x => x.proposal.pieceCid.toString() === piece).length },
          startedAt: at
        })
      } else {
        await this.resolve(subject, `deal ${d.id.toString()} holds it until ${new Date(endsAt).toISOString()}`)
      }
    }
    for (const subject of this.book.subjects()) {
      const [source, piece] = subject.split('|')
      if (source === 'expiry' && piece !== undefined && !last.has(piece)) await this.resolve(subject, 'no deal holds the piece any more: it expired')
    }
  }

  private async raise (subject: string, o: Opening): Promise<void> {
    if (this.book.get(subject) !== undefined) return
    const id = o.id ?? alertId(subject, o.startedAt)
    if (await this.book.resolved(id)) return
    const alert: Alert = {
      version: 1,
      event: 'open',
      id,
      source: o.source,
      kind: o.kind,
      ...(o.provider === undefined ? {} : { provider: o.provider }),
      ...(o.deal === undefined ? {} : { deal: o.deal }),
      ...(o.piece === undefined ? {} : { piece: o.piece }),
      summary: o.summary,
      startedAt: new Date(o.startedAt).toISOString(),
      at: new Date(this.now()).toISOString(),
      evidence: o.evidence
    }
    await this.send(alert)
    await this.book.opened(subject, alert)
  }

  private async resolve (subject: string, resolution: string, endedAt = this.now()): Promise<void> {
    const open = this.book.get(subject)
    if (open === undefined) return
    const alert: Alert = { ...open, event: 'resolved', endedAt: new Date(endedAt).toISOString(), resolution, at: new Date(this.now()).toISOString() }
    await this.send(alert)
    await this.book.closed(subject, open.id)
  }

  private async send (alert: Alert): Promise<void> {
    this.log('info', `alert ${alert.event} ${alert.id} ${alert.source}/${alert.kind}: ${alert.summary}`)
    if (alert.event === 'open') this.counts.opened++
    else this.counts.resolved++
    await Promise.all(this.options.sinks.map(async (sink) => {
      try {
        await sink.deliver(alert)
        this.counts.sent++
      } catch (err) {
        this.counts.failed++
        this.log('warn', `alert ${alert.event} ${alert.id} not delivered to ${sink.name}: ${isCairnError(err) ? `${err.code} ` : ''}${(err as Error).message}`)
      }
    }))
  }
}

function round (x: number): number {
  return Number(x.toPrecision(4))
}
