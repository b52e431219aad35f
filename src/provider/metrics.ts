/**
 * Provider metrics in the Prometheus text exposition format, on prom-client:
 * its registry, counters and histograms (cumulative buckets, label escaping)
 * and the standard process metrics (CPU, resident memory, heap, open file
 * descriptors, GC), which a hand-written exporter would have to re-create and
 * keep right. Counters are kept in process; gauges are read from the
 * provider's state, through a function passed in, when /metrics is scraped.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

type Labels = Record<string, string>

/** A prom-client counter that also answers its current value synchronously (tests, the dashboard). */
class CounterMetric {
  private readonly counter: Counter
  readonly values = new Map<string, number>()
  constructor (registry: Registry, readonly name: string, help: string, labelNames: string[] = []) {
    this.counter = new Counter({ name, help, labelNames, registers: [registry] })
  }

  inc (labels: Labels = {}, by = 1): void {
    this.counter.inc(labels, by)
    const k = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1))
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }

  get (labels: Labels = {}): number {
    return this.values.get(JSON.stringify(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1))) ?? 0
  }

  /** The sum over every label set. */
  total (): number {
    let n = 0
    for (const v of this.values.values()) n += v
    return n
  }
}

/** Gauges sampled at scrape time: deals by state, bytes stored, capacity. */
export interface GaugeSnapshot {
  dealsByState?: Record<string, number>
  bytesStored?: number
  /** padded bytes */
  capacity?: { total: number, used: number, free: number }
  /** live PDP data sets */
  dataSets?: number
  /** payments accrued to this provider (deals and data sets), base units */
  earned?: bigint
}

/** One proof the provider answered (or could not), for the dashboard. */
export interface ProofRecord {
  at: string
  deal: string
  outcome: ProofOutcome
  ms: number
}

/** answered: a proof was sent; refused: a coded 4xx (wrong state, unknown deal, bad challenge); corrupt: the piece's bytes are lost or changed; error: anything else */
export type ProofOutcome = 'answered' | 'refused' | 'corrupt' | 'error'

/** Sampling interval of the event-loop delay histogram, ms. */
export const LOOP_SAMPLE_MS = 2

const RECENT_PROOFS = 50

export interface MetricsOptions {
  /** the standard process metrics (one provider per process wants them; an admin listener does not) */
  processMetrics?: boolean
}

export class Metrics {
  readonly registry = new Registry()
  readonly requests = new CounterMetric(this.registry, 'cairn_http_requests_total', 'HTTP requests answered, by route and status class', ['route', 'status'])
  readonly requestsAborted = new CounterMetric(this.registry, 'cairn_http_requests_aborted_total', 'Requests the client hung up on before the answer was complete, by route', ['route'])
  readonly uploads = new CounterMetric(this.registry, 'cairn_uploads_total', 'Piece uploads, by result', ['result'])
  readonly uploadBytes = new CounterMetric(this.registry, 'cairn_upload_bytes_total', 'Bytes received in piece uploads')
  readonly retrievals = new CounterMetric(this.registry, 'cairn_retrievals_total', 'Retrievals served, by kind (block, car, piece)', ['kind'])
  readonly retrievalBytes = new CounterMetric(this.registry, 'cairn_retrieval_bytes_total', 'Bytes sent in retrievals, by kind', ['kind'])
  readonly errors = new CounterMetric(this.registry, 'cairn_errors_total', 'Error responses, by error code', ['code'])
  readonly proofs = new CounterMetric(this.registry, 'cairn_proofs_total', 'Proof challenges, by outcome (answered, refused, corrupt, error)', ['outcome'])
  readonly proofSeconds = new Histogram({
    name: 'cairn_proof_duration_seconds',
    help: 'Time from a challenge received to its proof sent, by outcome',
    labelNames: ['outcome'],
    // docs/performance.md: a 16-challenge proof on 1 GiB takes ~20 ms warm, ~200 ms cold
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry]
  })

  /** The latest proofs, newest last. */
  readonly recentProofs: ProofRecord[] = []

  /**
   * How long the event loop was held up: hashing and verifying uploads must never
   * block other requests (docs/performance.md, ≤ 50 ms). The histogram records the time between
   * consecutive samples, so each value is a stall plus up to one sampling interval:
   * at the default 10 ms a 40 ms stall could read as 50 ms. Sampling every 2 ms
   * keeps that error small, for ~500 wake-ups a second: an idle provider uses
   * 3.4 % of a core instead of 0.9 % (measured over 10 s on the 2-core VM).
   */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS })

  private readonly deals = new Gauge({ name: 'cairn_deals', help: 'Deals by state', labelNames: ['state'], registers: [this.registry] })
  private readonly bytesStored = new Gauge({ name: 'cairn_bytes_stored', help: 'Bytes of pieces held in the piece store', registers: [this.registry] })
  private readonly capacity = new Gauge({ name: 'cairn_capacity_bytes', help: 'Padded bytes of capacity: total, used (held by deals and data sets) and free', labelNames: ['kind'], registers: [this.registry] })
  private readonly dataSets = new Gauge({ name: 'cairn_data_sets', help: 'Live PDP data sets', registers: [this.registry] })
  private readonly earned = new Gauge({ name: 'cairn_earned', help: 'Payments accrued to this provider for proven periods (deals and data sets), base units', registers: [this.registry] })

  constructor (private readonly gauges: () => Promise<GaugeSnapshot> = async () => ({}), options: MetricsOptions = {}) {
    this.loopDelay.enable()
    const loop = this.loopDelay
    new Gauge({
      name: 'cairn_event_loop_delay_max_seconds',
      help: `Longest event-loop delay since start (sampled every ${LOOP_SAMPLE_MS} ms; includes up to one interval)`,
      registers: [this.registry],
      collect () { this.set(loop.max / 1e9) }
    }).set(0)
    new Gauge({
      name: 'cairn_event_loop_delay_p99_seconds',
      help: '99th percentile event-loop delay since start',
      registers: [this.registry],
      collect () { this.set(loop.percentile(99) / 1e9) }
    }).set(0)
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry })
  }

  /** Event-loop delay since start, ms. */
  loop (): { maxMs: number, p99Ms: number } {
    return { maxMs: this.loopDelay.max / 1e6, p99Ms: this.loopDelay.percentile(99) / 1e6 }
  }

  /** Records one proof: its outcome and how long it took. */
  proof (deal: string, outcome: ProofOutcome, ms: number): void {
    this.proofs.inc({ outcome })
    this.proofSeconds.observe({ outcome }, ms / 1000)
    this.recentProofs.push({ at: new Date().toISOString(), deal, outcome, ms })
    if (this.recentProofs.length > RECENT_PROOFS) this.recentProofs.shift()
  }

  /** The gauges' current values, as the last scrape or the dashboard sees them. */
  async snapshot (): Promise<GaugeSnapshot> {
    try {
      return await this.gauges()
    } catch {
      this.errors.inc({ code: 'ERR_INTERNAL' })
      return {}
    }
  }

  get contentType (): string { return this.registry.contentType }

  async render (): Promise<string> {
    const snapshot = await this.snapshot()
    this.deals.reset()
    for (const [state, n] of Object.entries(snapshot.dealsByState ?? {})) this.deals.set({ state }, n)
    this.bytesStored.set(snapshot.bytesStored ?? 0)
    if (snapshot.capacity !== undefined) {
      for (const kind of ['total', 'used', 'free'] as const) this.capacity.set({ kind }, snapshot.capacity[kind])
    }
    if (snapshot.dataSets !== undefined) this.dataSets.set(snapshot.dataSets)
    if (snapshot.earned !== undefined) this.earned.set(Number(snapshot.earned))
    return await this.registry.metrics()
  }
}
