/**
 * The discipline both index stores (./level-index.ts, ./pg-index.ts) keep:
 * changes applied one at a time in the order they came, one sweep of retired
 * provider numbers at a time in the background, and a close that waits for both.
 */
export class IndexWork {
  private tail: Promise<unknown> = Promise.resolve()
  private sweeping: Promise<void> | undefined
  private stopped = false

  /** true once `close()` was called: a sweep stops at its next step */
  get closed (): boolean {
    return this.stopped
  }

  /** Runs `fn` after every change queued before it has settled. */
  async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn)
    this.tail = run.catch(() => {})
    return await run
  }

  /** Starts `pass` unless a sweep is running; it returns when nothing is left to sweep or the store closed. */
  sweep (pass: () => Promise<void>): void {
    if (this.sweeping !== undefined) return
    this.sweeping = pass().catch(() => {}).finally(() => { this.sweeping = undefined })
  }

  /** Resolves when no sweep is running (tests, bench). */
  async swept (): Promise<void> {
    while (this.sweeping !== undefined) await this.sweeping
  }

  async close (): Promise<void> {
    this.stopped = true
    await this.tail
    await this.sweeping
  }
}
