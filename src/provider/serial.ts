/**
 * Runs work for one key after every earlier call for the same key has
 * settled: what reads a deal's state and appends what depends on it (an
 * upload's commit, an expiry, a proof) must not interleave for that deal.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>()

  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve()
    const turn = before.then(fn, fn)
    const tail = turn.catch(() => {})
    this.tails.set(key, tail)
    try {
      return await turn
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}
