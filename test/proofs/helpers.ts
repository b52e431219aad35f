import { readFileSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'

export function fixture<T> (name: string): T {
  return JSON.parse(readFileSync(new URL(`../../../fixtures/proofs/${name}`, import.meta.url), 'utf8')) as T
}

export function fromRuns (runs: Array<[number, number]>): Uint8Array {
  const bytes = new Uint8Array(runs.reduce((n, [, count]) => n + count, 0))
  let offset = 0
  for (const [value, count] of runs) {
    bytes.fill(value, offset, offset + count)
    offset += count
  }
  return bytes
}

export function randomBytes (size: number): Uint8Array {
  const bytes = new Uint8Array(size)
  // randomFillSync fills at most 2^31 − 1 bytes at a time; test payloads are far smaller
  if (size > 0) randomFillSync(bytes)
  return bytes
}

/** Splits bytes at the given cut points (sorted, deduplicated, clamped). */
export function * splitAt (bytes: Uint8Array, cuts: number[]): Generator<Uint8Array> {
  let last = 0
  for (const cut of [...new Set(cuts.map(c => Math.min(Math.max(c, 0), bytes.length)))].sort((a, b) => a - b)) {
    yield bytes.subarray(last, cut)
    last = cut
  }
  yield bytes.subarray(last)
}
