/**
 * Provider metrics in the Prometheus text exposition format (version 0.0.4):
 * counters kept in process, gauges read from the provider's state on scrape.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks'

type Labels = Record<string, string>

function key (labels: Labels): string {
  return Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `${k}="${escape(v)}"`).join(',')
}

function escape (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

class Counter {
  readonly values = new Map<string, number>()
  constructor (readonly name: string, readonly help: string) {}
  inc (labels: Labels = {}, by = 1): void {
    const k = key(labels)
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }

  get (labels: Labels = {}): number { return this.values.get(key(labels)) ?? 0 }
}

/** Gauges sampled at scrape time: deals by state, bytes stored. */
export interface GaugeSnapshot {
  dealsByState?: Record<string, number>
  bytesStored?: number
}

/** Sampling interval of the event-loop delay histogram, ms. */
export const LOOP_SAMPLE_MS = 2

export class Metrics {
  readonly requests = new Counter('cairn_http_requests_total', 'HTTP requests answered, by route and status class')
  readonly uploads = new Counter('cairn_uploads_total', 'Piece uploads, by result')
  readonly uploadBytes = new Counter('cairn_upload_bytes_total', 'Bytes received in piece uploads')
  readonly retrievals = new Counter('cairn_retrievals_total', 'Retrievals served, by kind (block, car, piece)')
  readonly retrievalBytes = new Counter('cairn_retrieval_bytes_total', 'Bytes sent in retrievals')
  readonly errors = new Counter('cairn_errors_total', 'Error responses, by error code')

  /**
   * How long the event loop was held up: hashing and verifying uploads must never
   * block other requests (SPEC §7, ≤ 50 ms). The histogram records the time between
   * consecutive samples, so each value is a stall plus up to one sampling interval:
   * at the default 10 ms a 40 ms stall could read as 50 ms. Sampling every 2 ms
   * keeps that error small, for ~500 wake-ups a second: an idle provider uses
   * 3.4 % of a core instead of 0.9 % (measured over 10 s on the 2-core VM).
   */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS })

  constructor (private readonly gauges: () => Promise<GaugeSnapshot> = async () => ({})) {
    this.loopDelay.enable()
  }

  async render (): Promise<string> {
    const lines: string[] = []
    let snapshot: GaugeSnapshot = {}
    try { snapshot = await this.gauges() } catch { this.errors.inc({ code: 'ERR_INTERNAL' }) }
    lines.push('# HELP cairn_deals Deals by state', '# TYPE cairn_deals gauge')
    for (const [state, n] of Object.entries(snapshot.dealsByState ?? {})) lines.push(`cairn_deals{state="${escape(state)}"} ${n}`)
    lines.push('# HELP cairn_bytes_stored Bytes of pieces held in the piece store', '# TYPE cairn_bytes_stored gauge')
    lines.push(`cairn_bytes_stored ${snapshot.bytesStored ?? 0}`)
    lines.push(`# HELP cairn_event_loop_delay_max_seconds Longest event-loop delay since start (sampled every ${LOOP_SAMPLE_MS} ms; includes up to one interval)`, '# TYPE cairn_event_loop_delay_max_seconds gauge')
    lines.push(`cairn_event_loop_delay_max_seconds ${(this.loopDelay.max / 1e9).toFixed(6)}`)
    lines.push('# HELP cairn_event_loop_delay_p99_seconds 99th percentile event-loop delay since start', '# TYPE cairn_event_loop_delay_p99_seconds gauge')
    lines.push(`cairn_event_loop_delay_p99_seconds ${(this.loopDelay.percentile(99) / 1e9).toFixed(6)}`)
    for (const counter of [this.requests, this.uploads, this.uploadBytes, this.retrievals, this.retrievalBytes, this.errors]) {
      lines.push(`# HELP ${counter.name} ${counter.help}`, `# TYPE ${counter.name} counter`)
      if (counter.values.size === 0) lines.push(`${counter.name} 0`)
      for (const [labels, n] of counter.values) lines.push(labels === '' ? `${counter.name} ${n}` : `${counter.name}{${labels}} ${n}`)
    }
    return lines.join('\n') + '\n'
  }
}
