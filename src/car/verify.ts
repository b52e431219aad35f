/**
 * DAG completeness, checked while blocks stream past (a provider verifies an
 * upload before it has it all).
 *
 * - `linked` order: the first block is the root, and every later block must
 *   be one an earlier block linked to. Accepts any topological order.
 * - `dfs` order: blocks must come exactly in depth-first pre-order, first
 *   seen, as `ipfs dag export` writes them (a "Filecoin-deterministic" CAR).
 *
 * Links to identity CIDs carry their data inline and need no block.
 */
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { IDENTITY } from '../codecs.js'
import { cidKey } from './hash.js'
import { linksOf } from './links.js'

export type DagOrder = 'linked' | 'dfs'

export interface DagVerifierOptions {
  order?: DagOrder
  /** Refuse a block that was already seen. Default: true for `dfs`, false for `linked`. */
  unique?: boolean
}

export class DagVerifier {
  readonly root: CID
  readonly order: DagOrder
  private readonly unique: boolean
  private readonly seen = new Set<string>()
  /** linked mode: CIDs linked to but not yet seen */
  private readonly expected = new Map<string, CID>()
  /** dfs mode: links still to visit, next on top */
  private readonly stack: CID[] = []
  blocks = 0

  constructor (root: CID, options: DagVerifierOptions = {}) {
    this.root = root
    this.order = options.order ?? 'linked'
    this.unique = options.unique ?? this.order === 'dfs'
    if (root.multihash.code !== IDENTITY) {
      this.expected.set(cidKey(root), root)
      this.stack.push(root)
    }
  }

  /**
   * Checks one block (already verified against its CID) against the order.
   * `links` spares decoding the block again when the caller has them already.
   */
  add (cid: CID, bytes: Uint8Array, links?: readonly CID[]): void {
    const key = cidKey(cid)
    if (this.blocks === 0 && !cid.equals(this.root)) {
      throw new CairnError('ERR_CAR_ROOT_MISSING', `the first block is ${cid.toString()}, not the root ${String(this.root)}`)
    }
    this.blocks++
    if (this.seen.has(key)) {
      if (this.unique) throw new CairnError('ERR_CAR_DUPLICATE_BLOCK', `block ${cid.toString()} appears twice`)
      return
    }
    if (this.order === 'dfs') {
      this.skipSeen()
      const next: CID | undefined = this.stack.pop()
      if (next === undefined || !next.equals(cid)) {
        const wanted = next === undefined ? 'no further block' : String(next)
        throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is out of depth-first order; expected ${wanted}`)
      }
    } else if (!this.expected.delete(key)) {
      throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not linked from any earlier block`)
    }
    this.seen.add(key)
    links ??= linksOf(cid, bytes)
    if (this.order === 'dfs') {
      for (let i = links.length - 1; i >= 0; i--) {
        if (links[i].multihash.code !== IDENTITY) this.stack.push(links[i])
      }
    } else {
      for (const link of links) {
        if (link.multihash.code === IDENTITY) continue
        const k = cidKey(link)
        if (!this.seen.has(k)) this.expected.set(k, link)
      }
    }
  }

  private skipSeen (): void {
    while (this.stack.length > 0 && this.seen.has(cidKey(this.stack[this.stack.length - 1]))) this.stack.pop()
  }

  /** Throws unless the DAG below the root is complete. */
  finish (): void {
    if (this.root.multihash.code !== IDENTITY && !this.seen.has(cidKey(this.root))) {
      throw new CairnError('ERR_CAR_ROOT_MISSING', `the root ${this.root.toString()} is not in the CAR`)
    }
    let missing: CID | undefined
    if (this.order === 'dfs') {
      this.skipSeen()
      missing = this.stack.at(-1)
    } else {
      missing = this.expected.values().next().value
    }
    if (missing !== undefined) {
      throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${missing.toString()} is linked but not in the CAR`, { details: { cid: missing.toString() } })
    }
  }
}
