/**
 * What a PDP data-set change read, checked again where it commits.
 *
 * A data-set change (create, add, remove, terminate, expire) reads the data
 * set's record, its nonces and the pieces' records and counters, computes its
 * writes, and appends its ledger entry with them. On one machine the PDP
 * service makes those changes one at a time, but on a cluster the nodes share
 * the state (docs/cluster.md): two nodes adding pieces to one data set could
 * both read the same next piece id. The entry's guard (AppendItem.guard) runs
 * under the ledger head lock, which every such change and every write of the
 * piece registry takes (src/pdp/pieces.ts), and compares each key read with
 * what it holds there; when one changed, the change is refused with
 * ERR_STATE_CHANGED and run again from its reads (`retryChanged`).
 */
import { CairnError } from '../errors.js'
import type { AppendItem } from '../ledger/interface.js'
import type { Range, StateReader } from '../state/interface.js'
import type { Space } from '../state/spaces.js'

/** How often a change whose reads moved under it is run again before its error is given to the caller. */
const ATTEMPTS = 8

export class ReadSet implements StateReader {
  private readonly seen = new Map<string, { space: Space, key: string, value: Uint8Array | undefined }>()

  constructor (private readonly from: StateReader) {}

  async get (space: Space, key: string): Promise<Uint8Array | undefined> {
    const value = await this.from.get(space, key)
    const id = `${space.name}\0${key}`
    if (!this.seen.has(id)) this.seen.set(id, { space, key, value })
    return value
  }

  /** Not recorded: a walk's results are covered by a key read beside it (a data set's pieces by its record, whose next piece id every addition moves). */
  iterate (space: Space, range?: Range): AsyncIterable<[string, Uint8Array]> {
    return this.from.iterate(space, range)
  }

  /** The guard that refuses the append with ERR_STATE_CHANGED when a key read holds something else now. */
  guard (): NonNullable<AppendItem['guard']> {
    const seen = [...this.seen.values()]
    return async (view) => {
      for (const { space, key, value } of seen) {
        const now = await view.state(space, key)
        if (!same(now, value)) throw new CairnError('ERR_STATE_CHANGED', `${space.name} ${key} changed while the change was prepared (another node wrote it); run it again`)
      }
    }
  }
}

function same (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

/** Runs `fn` again, with fresh reads, while it fails with ERR_STATE_CHANGED (at most ATTEMPTS times). */
export async function retryChanged<T> (fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (!(err instanceof CairnError) || err.code !== 'ERR_STATE_CHANGED' || attempt >= ATTEMPTS) throw err
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 10 * attempt)))
    }
  }
}
