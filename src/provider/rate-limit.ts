/**
 * Token buckets per key (a deal's proof requests): `burst` requests at once,
 * then one every 1/`perSecond` seconds. Buckets that would be full again are
 * forgotten, so memory stays bounded by the keys active recently, and at most
 * `maxKeys` are kept at all.
 */
export interface RateLimit {
  burst: number
  perSecond: number
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly limit: RateLimit, private readonly nowMs: () => number = Date.now, private readonly maxKeys = 100_000) {
    if (!(limit.burst >= 1) || !(limit.perSecond > 0)) throw new RangeError(`a rate limit needs burst ≥ 1 and perSecond > 0, got ${JSON.stringify(limit)}`)
  }

  /** Takes one token for `key`: undefined when allowed, else the seconds until one is free. */
  take (key: string): number | undefined {
    const now = this.nowMs()
    const bucket = this.buckets.get(key)
    let tokens = this.limit.burst
    if (bucket !== undefined) {
      tokens = Math.min(this.limit.burst, bucket.tokens + (now - bucket.at) / 1000 * this.limit.perSecond)
      this.buckets.delete(key)
    }
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now })
      return Math.ceil((1 - tokens) / this.limit.perSecond)
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now })
    // the oldest entries are the least recently used (every take re-inserts)
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
    return undefined
  }
}
