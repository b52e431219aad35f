/**
 * Cooperative time slicing for long synchronous loops on the event loop.
 *
 * A provider serves every request from one thread, and docs/performance.md allows no
 * stall above 50 ms. Work that is only CPU on the main thread — encoding the
 * block index of a 1 GiB upload (4,100 entries), building its LevelDB batch,
 * verifying the blocks already buffered — runs in a chain of microtasks,
 * which never lets the event loop turn. Checking `due` once per item (one
 * clock read) and awaiting `pause()` when it is true lets the event loop
 * serve timers and sockets once the current slice has run for `budgetMs`.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import { performance } from 'node:perf_hooks'

/** Default slice: long enough to amortise a turn of the loop, far below the 50 ms limit. */
export const SLICE_MS = 5

export class TimeSlicer {
  private started = performance.now()

  constructor (private readonly budgetMs = SLICE_MS) {}

  /** True when the current slice has used its budget. */
  get due (): boolean {
    return performance.now() - this.started >= this.budgetMs
  }

  /** Yields to the event loop; a new slice starts when it comes back. */
  async pause (): Promise<void> {
    await nextTurn()
    this.started = performance.now()
  }
}
