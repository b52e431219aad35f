/**
 * A minimal hash chain on the state store, appended the way the ledger
 * appends (src/ledger/level.ts): inside one transaction that holds the head
 * lock, read the last entry, link each new entry to the one before, and
 * commit a group of waiting appends together (group commit). Not the ledger:
 * a stand-in small enough to run from several processes and to bench.
 */
import { createHash } from 'node:crypto'
import type { StateStore, StateTransaction } from '../../src/state/interface.js'
import type { LockName, Space } from '../../src/state/spaces.js'

export interface Link { seq: number, prev: string | null, payload: string }

const seqKey = (seq: number): string => seq.toString().padStart(16, '0')
const hash = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

async function head (tx: StateTransaction, space: Space): Promise<{ seq: number, hash: string | null }> {
  for await (const [key, value] of tx.iterate(space, { reverse: true, limit: 1 })) return { seq: Number(key), hash: hash(value) }
  return { seq: 0, hash: null }
}

/** Appends `payloads` in order in one transaction; returns their seqs. */
export async function appendChained (store: StateStore, space: Space, lock: LockName, payloads: string[]): Promise<number[]> {
  return await store.transaction(async (tx) => {
    await tx.lock(lock)
    let last = await head(tx, space)
    const seqs: number[] = []
    for (const payload of payloads) {
      const link: Link = { seq: last.seq + 1, prev: last.hash, payload }
      const bytes = new TextEncoder().encode(JSON.stringify(link))
      tx.put(space, seqKey(link.seq), bytes)
      last = { seq: link.seq, hash: hash(bytes) }
      seqs.push(link.seq)
    }
    return seqs
  })
}

/** Every entry from 1 on, checked: seq without gaps, each linking the hash of the one before. Throws at the first break. */
export async function readChain (store: StateStore, space: Space): Promise<Link[]> {
  const out: Link[] = []
  let prev: string | null = null
  for await (const [key, value] of store.iterate(space)) {
    const link = JSON.parse(new TextDecoder().decode(value)) as Link
    const expected = out.length + 1
    if (Number(key) !== expected || link.seq !== expected) throw new Error(`chain broken at ${expected}: found entry ${key} (seq ${link.seq})`)
    if (link.prev !== prev) throw new Error(`chain broken at ${expected}: links ${String(link.prev)}, previous is ${String(prev)}`)
    prev = hash(value)
    out.push(link)
  }
  return out
}

/**
 * Appends from many callers, committed in groups: every append that arrives
 * while a transaction is in flight joins the next one (at most `maxGroup`).
 */
export class ChainAppender {
  private pending: Array<{ payload: string, resolve: (seq: number) => void, reject: (err: unknown) => void }> = []
  private running: Promise<void> | undefined

  constructor (private readonly store: StateStore, private readonly space: Space, private readonly lock: LockName, private readonly maxGroup = 512) {}

  append (payload: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ payload, resolve, reject })
      this.running ??= this.drain()
    })
  }

  private async drain (): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, this.maxGroup)
        try {
          const seqs = await appendChained(this.store, this.space, this.lock, group.map(p => p.payload))
          group.forEach((p, i) => p.resolve(seqs[i] as number))
        } catch (err) {
          for (const p of group) p.reject(err)
        }
      }
    } finally {
      this.running = undefined
    }
  }
}
