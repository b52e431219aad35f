/**
 * The provider's deal lifecycle over time (docs/protocol.md "Deal lifecycle"):
 * a tick expires every deal the ledger's schedule says is due — an accepted
 * deal not uploaded by its deadline, an active deal past its end — and then
 * removes piece files no active deal has held for the retention grace.
 *
 * Each tick does bounded work (`batch` deals and `batch` pieces) and the
 * schedule lives in the ledger's indexes and the repo, not in memory: after a
 * restart the first ticks catch up with whatever fell due meanwhile.
 */
import type { DealLogFields, Logger } from './interface.js'

export interface LifecycleWork {
  /** expires up to `limit` deals due by `now` (unix s); resolves to how many were due */
  expireDue (now: number, limit: number): Promise<{ due: number, expired: string[] }>
  /** removes up to `limit` pieces whose grace ended by `now`; resolves to how many were due */
  collect (now: number, limit: number): Promise<{ due: number, removed: string[] }>
  /** client, piece and size of a deal, for its log line */
  summary?: (dealId: string) => Promise<DealLogFields | undefined>
}

export interface LifecycleOptions {
  /** ms between ticks (default 5 s) */
  tickMs?: number
  /** deals, and pieces, handled per tick (default 64) */
  batch?: number
  /** unix seconds */
  now?: () => number
  log?: Logger
}

export interface TickReport { expired: string[], removed: string[], more: boolean }

export class LifecycleScheduler {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private stopped = false
  private readonly batch: number
  private readonly now: () => number

  constructor (private readonly work: LifecycleWork, private readonly options: LifecycleOptions = {}) {
    this.batch = options.batch ?? 64
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000))
  }

  /** One bounded round: what is due now, up to `batch` deals and `batch` pieces. */
  async tick (): Promise<TickReport> {
    const now = this.now()
    const deals = await this.work.expireDue(now, this.batch)
    const pieces = await this.work.collect(now, this.batch)
    if (this.options.log !== undefined) {
      for (const deal of deals.expired) this.options.log('deal-expired', { deal, ...await this.work.summary?.(deal).catch(() => undefined) })
      for (const piece of pieces.removed) this.options.log('piece-removed', { pieceCid: piece })
    }
    return { expired: deals.expired, removed: pieces.removed, more: deals.due >= this.batch || pieces.due >= this.batch }
  }

  /** Ticks now (catching up, a batch at a time, with whatever fell due while stopped), then every `tickMs`. */
  start (): void {
    this.stopped = false
    const loop = async (): Promise<void> => {
      try {
        for (let report = await this.tick(); report.more && !this.stopped; report = await this.tick()) {
          await new Promise(resolve => setImmediate(resolve))
        }
      } catch (err) {
        this.options.log?.('lifecycle-error', { code: (err as { code?: string }).code, message: (err as Error).message })
      }
    }
    const schedule = (): void => {
      if (this.stopped) return
      this.running = loop().finally(() => {
        this.running = undefined
        if (!this.stopped) {
          this.timer = setTimeout(schedule, this.options.tickMs ?? 5000)
          this.timer.unref()
        }
      })
    }
    schedule()
  }

  /** Stops ticking and waits for a tick in progress. */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }
}
