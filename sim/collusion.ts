/**
 * Colluding providers, and why replicas must be really separate copies.
 * With identical replicas — the same bytes under the same piece CID — a
 * member of a coalition holding a replica of a piece that a partner also
 * holds can drop its copy and answer each audit by reading the challenged
 * leaves from the partner's copy: the coalition keeps one real copy (its
 * *keeper*) however many replicas the client pays it for, and every replica
 * it holds is lost when that one copy is. With distinct replicas (each its
 * own encryption, so its own bytes and piece CID) a partner's copy answers
 * nothing, so the coalition can do nothing of the kind.
 *
 * The coalition here is the rational one that saves storage and no more: it
 * does not repair its own copy behind the client's back. A replica that
 * leaves a member hands the real copy, as it is, to a partner still holding
 * a hollow replica of the piece, if the copy can still be read.
 */
import { hashUnit } from './random.js'

/** The part of a replica the coalition acts on. */
export interface Held {
  provider: number
  lostFraction: number
  /** its provider holds no copy of its own */
  hollow: boolean
}

/** `size` providers of `count`, chosen by the seed alone (not by behaviour). */
export function coalitionOf (seed: number, count: number, size: number): Set<number> {
  const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => hashUnit(seed, 50, a) - hashUnit(seed, 50, b) || a - b)
  return new Set(order.slice(0, Math.max(0, Math.min(count, size))))
}

export class Coalition {
  constructor (readonly members: ReadonlySet<number>, readonly identical: boolean) {}

  /** The real copy a hollow replica answers from: a partner's, if one holds it. */
  keeperOf (replicas: readonly Held[], r: Held): Held | undefined {
    return replicas.find(x => x !== r && !x.hollow && this.members.has(x.provider))
  }

  /** A replica was just placed: on a member, with a partner already keeping a real copy, it is never stored. */
  placed (replicas: readonly Held[], r: Held): void {
    if (!this.identical || !this.members.has(r.provider)) return
    if (this.keeperOf(replicas, r) !== undefined) r.hollow = true
  }

  /** A replica is about to leave: a keeper hands its copy to a hollow partner, if the copy can still be read. */
  leaving (replicas: readonly Held[], r: Held, readable: boolean): void {
    if (r.hollow || !this.members.has(r.provider) || !readable) return
    const heir = replicas.find(x => x !== r && x.hollow)
    if (heir === undefined) return
    heir.hollow = false
    heir.lostFraction = r.lostFraction
  }
}

/** Coalition sizes `npm run simulate` compares, in providers of the default 60. */
export const COALITION_SIZES: readonly number[] = [0, 3, 6, 12, 20, 30]

export interface CollusionCell {
  /** per seed */
  lost: number[]
  hiddenLoss: number
  hollowDays: number
  atRisk: number
}

export interface CollusionRow {
  size: number
  identical: CollusionCell
  distinct: CollusionCell
}
