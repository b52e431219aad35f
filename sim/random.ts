/**
 * Seeded randomness for the simulation. Two kinds:
 *   - `hashUnit(seed, …ints)`: a value in [0, 1) fixed by its arguments, so
 *     what happens to a provider or a replica on a day is the same under every
 *     strategy compared (common random numbers);
 *   - `Rng`: a stream (mulberry32) for choices a strategy makes itself.
 */

function fmix (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A uniform value in [0, 1) determined by the seed and the integers. */
export function hashUnit (seed: number, ...keys: number[]): number {
  let h = fmix(seed ^ 0x9e3779b9)
  for (const k of keys) h = fmix(h ^ Math.imul(k + 0x632be5ab, 0x27d4eb2f))
  return h / 4294967296
}

export class Rng {
  private state: number

  constructor (seed: number) {
    this.state = fmix(seed) || 1
  }

  /** mulberry32 */
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  between (lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }
}
