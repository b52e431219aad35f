/**
 * `provider start --self-check 10m`: on a schedule the provider challenges
 * itself, as a client would, over a random sample of the pieces its active
 * deals hold, and checks each proof with the verifier a client runs
 * (proofs/verify.ts) — so lost or changed bytes show on the operator's
 * dashboard and in /metrics before a client's audit fails, and a proof path
 * that signs something unverifiable is caught too.
 *
 * The work is bounded: `sample` pieces per round, `challenges` leaves each
 * (reads of 32 bytes plus the sibling path, not whole pieces), one piece at a
 * time, and a round never starts while the last one runs.
 *
 * With a round-trip target (every node started with `--self-check` has one),
 * each round first stores a small synthetic piece through the provider's own
 * public ingest path, fetches it back through `/ipfs` and `/piece` on its own
 * listener, verifies and proves it, and removes it (selfcheck-roundtrip.ts).
 *
 * Results go to prom-client metrics on the provider's registry, in units a
 * scraper expects (seconds, unix seconds):
 *   cairn_selfcheck_pieces_total{outcome="ok|corrupt|error"}  pieces checked
 *   cairn_selfcheck_runs_total{result="ok|failed"}             rounds
 *   cairn_selfcheck_last_success_timestamp_seconds              last round where every piece was ok
 *   cairn_selfcheck_failing_pieces                              pieces that failed in the last round
 *   cairn_selfcheck_duration_seconds{outcome}                   prove + verify time per piece
 *   cairn_selfcheck_roundtrip_total{result="ok|failed"}         synthetic round trips
 *   cairn_selfcheck_roundtrip_failures_total{step}              failed ones, by the step that failed
 *   cairn_selfcheck_roundtrip_success_ratio                     ok round trips / all, since start
 *   cairn_selfcheck_roundtrip_seconds{phase}                    ingest, {ipfs,piece}_first_byte, {ipfs,piece}_last_byte, prove
 *   cairn_selfcheck_roundtrip_milliseconds{phase}               the last round trip's figures in ms (the units of
 *                                                               Filecoin's retrieval checks)
 * and each failure to the log as `self-check-failed` (a round trip's as
 * `self-check-roundtrip-failed`).
 */
import { randomBytes } from 'node:crypto'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { verifyPieceProof } from '../../proofs/index.js'
import { parseDealId } from '../protocol/proposal.js'
import type { DealSummary, Logger } from './interface.js'
import type { PieceProver } from './proofs.js'
import { roundTrip, type RoundTripReport, type RoundTripTarget } from './selfcheck-roundtrip.js'

export type SelfCheckOutcome = 'ok' | 'corrupt' | 'error'

export interface PieceCheck {
  deal: string
  pieceCid: string
  outcome: SelfCheckOutcome
  ms: number
  code?: string
  message?: string
}

export interface SelfCheckReport {
  at: string
  /** active pieces there were to sample from */
  pieces: number
  checked: PieceCheck[]
  /** the synthetic round trip, when the check has a target for it */
  roundTrip?: RoundTripReport
  ok: boolean
}

export interface SelfCheckOptions {
  /** between the end of one round and the start of the next, ms */
  intervalMs: number
  /** pieces per round */
  sample?: number
  /** leaves challenged per piece */
  challenges?: number
  log?: Logger
  random?: () => number
  /** where the synthetic round trip stores and fetches (none: pieces only) */
  roundTrip?: RoundTripTarget
}

/** What the self-check needs of the deal service. */
export interface SelfCheckSource {
  readonly prover: PieceProver
  deals: (filter: { state?: string }) => Promise<DealSummary[]>
}

export const DEFAULT_SELF_CHECK_SAMPLE = 4
export const DEFAULT_SELF_CHECK_CHALLENGES = 16

export class SelfCheck {
  last: SelfCheckReport | undefined
  private timer: NodeJS.Timeout | undefined
  private running: Promise<SelfCheckReport> | undefined
  private stopped = true
  private halted = false
  /** aborts a round trip in flight when the check stops */
  private halt = new AbortController()
  private readonly pieces: Counter
  private readonly runs: Counter
  private readonly lastSuccess: Gauge
  private readonly failing: Gauge
  private readonly seconds: Histogram
  private readonly trips: Counter
  private readonly tripFailures: Counter
  private readonly tripRatio: Gauge
  private readonly tripSeconds: Histogram
  private readonly tripMs: Gauge
  private tripCount = { ok: 0, all: 0 }

  constructor (private readonly source: SelfCheckSource, registry: Registry, private readonly options: SelfCheckOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${options.intervalMs}`)
    const registers = [registry]
    this.pieces = new Counter({ name: 'cairn_selfcheck_pieces_total', help: 'Pieces the self-check proved and verified, by outcome (ok, corrupt, error)', labelNames: ['outcome'], registers })
    this.runs = new Counter({ name: 'cairn_selfcheck_runs_total', help: 'Self-check rounds, by result (ok: every piece sampled was ok)', labelNames: ['result'], registers })
    this.lastSuccess = new Gauge({ name: 'cairn_selfcheck_last_success_timestamp_seconds', help: 'Unix time of the last self-check round in which every piece sampled was ok (0: none yet)', registers })
    this.failing = new Gauge({ name: 'cairn_selfcheck_failing_pieces', help: 'Pieces that failed in the last self-check round', registers })
    this.seconds = new Histogram({ name: 'cairn_selfcheck_duration_seconds', help: 'Time to prove and verify one sampled piece, by outcome', labelNames: ['outcome'], buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30], registers })
    this.lastSuccess.set(0)
    this.failing.set(0)
    for (const outcome of ['ok', 'corrupt', 'error']) this.pieces.inc({ outcome }, 0)
    this.trips = new Counter({ name: 'cairn_selfcheck_roundtrip_total', help: 'Synthetic round trips (store through the ingest path, fetch through /ipfs and /piece, prove, remove), by result', labelNames: ['result'], registers })
    this.tripFailures = new Counter({ name: 'cairn_selfcheck_roundtrip_failures_total', help: 'Failed synthetic round trips, by the step that failed (ingest, ipfs, piece, prove, cleanup)', labelNames: ['step'], registers })
    this.tripRatio = new Gauge({ name: 'cairn_selfcheck_roundtrip_success_ratio', help: 'Synthetic round trips that succeeded, over all since the provider started (1 before the first)', registers })
    this.tripSeconds = new Histogram({ name: 'cairn_selfcheck_roundtrip_seconds', help: 'Synthetic round trip figures: ingest, first and last byte per route, prove', labelNames: ['phase'], buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30], registers })
    this.tripMs = new Gauge({ name: 'cairn_selfcheck_roundtrip_milliseconds', help: 'The last successful synthetic round trip\'s figures in milliseconds (ingest, first and last byte per route, prove)', labelNames: ['phase'], registers })
    this.tripRatio.set(1)
    for (const result of ['ok', 'failed']) this.trips.inc({ result }, 0)
  }

  /** One round now: sample, prove, verify, record. */
  async run (): Promise<SelfCheckReport> {
    if (this.running !== undefined) return await this.running
    this.running = this.round().finally(() => { this.running = undefined })
    return await this.running
  }

  private async round (): Promise<SelfCheckReport> {
    const random = this.options.random ?? Math.random
    // one entry per piece: a piece several deals hold is checked once
    const byPiece = new Map<string, string>()
    for (const d of await this.source.deals({ state: 'active' })) {
      if (typeof d.pieceCid === 'string' && !byPiece.has(d.pieceCid)) byPiece.set(d.pieceCid, d.id)
    }
    const all = [...byPiece]
    const sample = Math.min(all.length, this.options.sample ?? DEFAULT_SELF_CHECK_SAMPLE)
    // a partial Fisher–Yates shuffle: `sample` distinct pieces, uniformly
    for (let i = 0; i < sample; i++) {
      const j = i + Math.floor(random() * (all.length - i))
      const t = all[i] as [string, string]
      all[i] = all[j] as [string, string]
      all[j] = t
    }
    const trip = this.options.roundTrip === undefined || this.halted ? undefined : await this.trip(this.options.roundTrip)
    const checked: PieceCheck[] = []
    for (const [pieceCid, deal] of all.slice(0, sample)) {
      // a stop does not wait for the rest of the sample
      if (this.halted) break
      checked.push(await this.check(deal, pieceCid))
    }
    const ok = checked.every(c => c.outcome === 'ok') && trip?.ok !== false
    const report: SelfCheckReport = { at: new Date().toISOString(), pieces: all.length, checked, ...(trip === undefined ? {} : { roundTrip: trip }), ok }
    this.runs.inc({ result: ok ? 'ok' : 'failed' })
    this.failing.set(checked.filter(c => c.outcome !== 'ok').length)
    if (ok) this.lastSuccess.set(Math.floor(Date.now() / 1000))
    this.last = report
    return report
  }

  private async check (deal: string, pieceCid: string): Promise<PieceCheck> {
    const challenge = { dealId: parseDealId(deal), seed: new Uint8Array(randomBytes(32)), count: this.options.challenges ?? DEFAULT_SELF_CHECK_CHALLENGES }
    const started = performance.now()
    let result: PieceCheck
    try {
      const proof = await this.source.prover.prove(pieceCid, challenge)
      verifyPieceProof(pieceCid, challenge, proof)
      result = { deal, pieceCid, outcome: 'ok', ms: 0 }
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERR_INTERNAL'
      // a proof that does not verify is bytes the provider would sign wrongly: as bad as lost ones
      const corrupt = code === 'ERR_PIECE_CORRUPT' || code.startsWith('ERR_PROOF_')
      result = { deal, pieceCid, outcome: corrupt ? 'corrupt' : 'error', ms: 0, code, message: (err as Error).message }
    }
    result.ms = Math.round((performance.now() - started) * 1000) / 1000
    this.pieces.inc({ outcome: result.outcome })
    this.seconds.observe({ outcome: result.outcome }, result.ms / 1000)
    if (result.outcome !== 'ok') this.options.log?.('self-check-failed', { deal, pieceCid, outcome: result.outcome, code: result.code, message: result.message })
    return result
  }

  private async trip (target: RoundTripTarget): Promise<RoundTripReport> {
    const report = await roundTrip(target, this.halt.signal)
    this.tripCount.all++
    if (report.ok) this.tripCount.ok++
    this.tripRatio.set(this.tripCount.ok / this.tripCount.all)
    this.trips.inc({ result: report.ok ? 'ok' : 'failed' })
    if (!report.ok) {
      this.tripFailures.inc({ step: report.step ?? 'ingest' })
      this.options.log?.('self-check-roundtrip-failed', { pieceCid: report.pieceCid, step: report.step, code: report.code, message: report.message })
      return report
    }
    const phases: Array<[string, number | undefined]> = [
      ['ingest', report.ingestMs],
      ['ipfs_first_byte', report.ipfs?.firstByteMs],
      ['ipfs_last_byte', report.ipfs?.lastByteMs],
      ['piece_first_byte', report.piece?.firstByteMs],
      ['piece_last_byte', report.piece?.lastByteMs],
      ['prove', report.proveMs]
    ]
    for (const [phase, value] of phases) {
      if (value === undefined) continue
      this.tripSeconds.observe({ phase }, value / 1000)
      this.tripMs.set({ phase }, value)
    }
    return report
  }

  /** A round now, then one every `intervalMs` after the last ended. */
  start (): void {
    this.stopped = false
    this.halted = false
    this.halt = new AbortController()
    const round = (): void => {
      this.run().catch((err: unknown) => {
        this.options.log?.('self-check-error', { code: (err as { code?: string }).code, message: (err as Error).message })
      }).finally(() => {
        if (this.stopped) return
        this.timer = setTimeout(() => { this.timer = undefined; round() }, this.options.intervalMs)
        this.timer.unref()
      })
    }
    round()
  }

  /** Stops the schedule and waits for a round in flight. */
  async stop (): Promise<void> {
    this.stopped = true
    this.halted = true
    this.halt.abort()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    await this.running?.catch(() => {})
  }
}
