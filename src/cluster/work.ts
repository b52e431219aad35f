/**
 * A cluster node at work (docs/cluster.md "Running a cluster"): registered in
 * `cluster_machines`, claiming the cluster's tasks, and fetching the pieces it
 * is asked for but does not hold.
 *
 * A node has two piece stores: the deals' (`pieces/`) and the PDP API's
 * (`pdp/pieces/`). A piece belongs in the PDP one when the PDP registry knows
 * it and no deal's index entry names it (`storeFor`); both are served on the
 * internal endpoint, and one location space records both.
 *
 * Tasks:
 * - `copy` {piece, exclude?}: run by a node that does not hold the piece (and
 *   is not excluded or drained): it reads the piece from a node that does,
 *   checks its piece CID while writing it to the store it belongs in, and
 *   records its location. Posted when a deal goes active or a data set comes
 *   to reference a PDP piece (until `copies` nodes hold it), by a failed
 *   scrub, and by `cluster drain` for every piece of the drained node. A
 *   parked PDP piece (no data set references it) is temporary and stays on
 *   one node, unless a drain moves it. A node that holds the piece fails the
 *   run, and another takes it.
 * - `scrub` {piece, node}: any node re-hashes the copy on `node` (its own file,
 *   or read over the internal endpoint) and records the result in
 *   `cluster/scrubs`; a bad copy loses its location (and the file, on its own
 *   node) and a copy task replaces it.
 * - `gc-<node>` {}: only that node runs it (its type carries a digest of the
 *   node's name): it removes its piece files that no deal's index entry and no
 *   active deal holds, and its PDP piece files the PDP registry no longer
 *   names (swept by another holder), older than the upload grace.
 *
 * Every node posts, on a timer, a scrub of each copy it holds and a gc of its
 * own store; dedupe keys keep one of each live.
 */
import { createHash } from 'node:crypto'
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import type { Ledger } from '../ledger/interface.js'
import type { Queryable } from '../postgres/db.js'
import type { StateStore } from '../state/interface.js'
import { spaces } from '../state/spaces.js'
import type { PieceStore } from '../store/pieces.js'
import type { PieceHandle } from '../provider/interface.js'
import type { LeafProofMessage } from '../protocol/proof.js'
import type { LeafProof } from '../../proofs/index.js'
import { listMachines, Machine, type EventLog, type MachineInfo } from './machines.js'
import { locationKey, pieceLocations, type ClusterState } from './node.js'
import { readRemotePiece, type RemotePiece } from './pieces.js'
import { MAX_LEAVES_PER_REQUEST, readRemoteLeaves, readRemoteProof, type PieceChallenge } from './proofs.js'
import { addTask, TaskEngine, type TaskContext } from './tasks.js'

export const DEFAULT_COPIES = 2
/** a piece file younger than this may be an upload whose ledger entry has not committed yet: gc leaves it */
const GC_MIN_AGE_MS = 60 * 60_000
const EMPTY = new Uint8Array(0)

/** The task type only `node` runs (a type name is a-z, 0-9 and -, so the name goes in as a digest). */
export function nodeTaskType (node: string): string {
  return `gc-${createHash('sha256').update(node).digest('hex').slice(0, 24)}`
}

export interface ClusterWorkOptions {
  name: string
  /** this node's listener, where the others read its pieces */
  address: string
  copies?: number
  deadAfterMs?: number
  heartbeatMs?: number
  workers?: number
  pollMs?: number
  /** how often this node posts scrubs of its copies and a gc of its store (default 24 h; 0: never) */
  maintainEveryMs?: number
  log?: EventLog
  /** what holds the deals: a piece no index entry names and no active deal holds is garbage */
  ledger: Ledger
  /** this node's PDP piece store (`pdp/pieces/`), where copies of PDP pieces go */
  pdpStore?: PieceStore
}

export interface ScrubRecord { at: number, ok: boolean, by: string, error?: string }

export class ClusterWork {
  readonly copies: number
  private readonly log: EventLog
  private timer: NodeJS.Timeout | undefined
  private drainWatch: NodeJS.Timeout | undefined
  private drained = false
  /** pieces being fetched, so concurrent readers wait on one fetch */
  private readonly fetching = new Map<string, Promise<boolean>>()

  private constructor (
    private readonly cluster: ClusterState,
    private readonly store: PieceStore,
    readonly machine: Machine,
    private readonly engine: TaskEngine,
    private readonly options: ClusterWorkOptions
  ) {
    this.copies = options.copies ?? DEFAULT_COPIES
    this.log = options.log ?? (() => {})
  }

  get name (): string { return this.options.name }

  static async start (cluster: ClusterState, store: PieceStore, options: ClusterWorkOptions): Promise<ClusterWork> {
    const log = options.log ?? (() => {})
    const machine = await Machine.register(cluster.db, { name: options.name, address: options.address, deadAfterMs: options.deadAfterMs, heartbeatMs: options.heartbeatMs, onEvent: log })
    const engine = new TaskEngine(cluster.db, machine, { workers: options.workers, pollMs: options.pollMs, graceMs: 10_000, onEvent: log })
    const work = new ClusterWork(cluster, store, machine, engine, options)
    engine.registerTaskType('copy', async (task) => { await work.copyTask(task) }, { maxAttempts: 40, backoffMs: 100, maxBackoffMs: 2000 })
    engine.registerTaskType('scrub', async (task) => { await work.scrubTask(task) }, { maxAttempts: 5, backoffMs: 1000 })
    engine.registerTaskType(nodeTaskType(options.name), async (task) => { await work.gcTask(task) }, { maxAttempts: 5, backoffMs: 1000 })
    work.drained = await isDrained(cluster.state, options.name)
    if (!work.drained) engine.start()
    work.schedule()
    return work
  }

  private schedule (): void {
    const every = this.options.maintainEveryMs ?? 24 * 3600_000
    if (every > 0) {
      this.timer = setInterval(() => { this.maintain().catch((err) => { this.log('cluster-maintain-failed', { message: (err as Error).message }) }) }, every)
      this.timer.unref()
    }
    // a drained node stops claiming; it looks every heartbeat
    this.drainWatch = setInterval(() => {
      if (this.drained) return
      isDrained(this.cluster.state, this.name).then(async (drained) => {
        if (!drained || this.drained) return
        this.drained = true
        this.log('node-drained', { node: this.name })
        await this.engine.stop()
      }).catch(() => {})
    }, this.machine.heartbeatMs)
    this.drainWatch.unref()
  }

  /**
   * Posts a scrub of every copy this node holds and a gc of its stores, and a
   * copy of each PDP piece it holds that a data set references (the post at
   * the reference is not in its transaction; this catches one lost to a crash).
   */
  async maintain (): Promise<void> {
    for await (const [key] of this.cluster.state.iterate(spaces.pieceLocations)) {
      const slash = key.lastIndexOf('/')
      if (key.slice(slash + 1) !== this.name) continue
      const piece = key.slice(0, slash)
      await addTask(this.cluster.db, 'scrub', { piece, node: this.name }, { dedupe: `scrub:${key}` })
      if ((await pdpRefs(this.cluster.state, piece) ?? 0) > 0) await this.stored(piece)
    }
    await addTask(this.cluster.db, nodeTaskType(this.name), {}, { dedupe: `gc:${this.name}` })
  }

  /** After a deal went active on this node, or a data set came to reference a PDP piece: copies until `copies` nodes hold the piece. */
  async stored (piece: string, q: Queryable = this.cluster.db): Promise<void> {
    if (this.copies > 1) await addTask(q, 'copy', { piece }, { dedupe: `copy:${piece}`, maxAttempts: 40 })
  }

  /**
   * The store of this node `piece` belongs in: the PDP one for a piece the
   * PDP registry knows and no deal's index entry names, else the deals'.
   */
  private async storeFor (piece: string): Promise<PieceStore> {
    const pdp = this.options.pdpStore
    if (pdp === undefined || await this.cluster.state.get(spaces.pieces, piece) !== undefined) return this.store
    return await pdpRefs(this.cluster.state, piece) === undefined ? this.store : pdp
  }

  /** This node's file of `piece`, from whichever of its stores holds it (as the internal endpoint reads them). */
  private async openLocal (piece: string): Promise<{ store: PieceStore, body: AsyncIterable<Uint8Array> } | undefined> {
    for (const store of [this.store, this.options.pdpStore]) {
      const reader = await store?.open(piece)
      if (store !== undefined && reader !== undefined) return { store, body: reader.createReadStream() }
    }
    return undefined
  }

  /**
   * Makes `piece` local if another node holds it: read over the internal
   * endpoint, checked against its piece CID as it is written, recorded as a
   * location. False when no live node has it.
   */
  async fetch (piece: string, signal?: AbortSignal): Promise<boolean> {
    if (await this.store.has(piece)) return true
    let running = this.fetching.get(piece)
    if (running === undefined) {
      running = this.fetchFrom(piece, [], signal).finally(() => { this.fetching.delete(piece) })
      this.fetching.set(piece, running)
    }
    return await running
  }

  /**
   * A piece other live nodes hold, as a handle whose reads stream from one of
   * them over the internal endpoint (one ranged request per read): `/piece`
   * on a node without the piece serves it as it arrives instead of copying it
   * whole first. The bytes are the holder's, which it checked against the
   * piece CID when it stored them (and scrubs re-check); the client checks
   * them again. Holders are tried in order of their last heartbeat until one
   * answers; a read cut off after its first byte fails as a local read would.
   * `size` is the piece file's, when the caller knows it (a PDP piece, which
   * the deals' piece index does not list).
   */
  async remote (piece: string, known?: number): Promise<PieceHandle | undefined> {
    let size = known
    if (size === undefined) {
      const record = await this.cluster.state.get(spaces.pieces, piece)
      if (record === undefined) return undefined
      size = (dagCBOR.decode(record) as { size: number }).size
    }
    const machines = await this.liveHolders(piece)
    if (machines.length === 0) return undefined
    return {
      size,
      createReadStream: (start, end) => {
        const out = new PassThrough({ highWaterMark: 1 << 20 })
        const read = async (): Promise<void> => {
          let lastError: unknown
          for (const m of machines) {
            let remote: RemotePiece
            try {
              remote = await readRemotePiece(m.address, piece, { secret: this.cluster.secret, node: this.name, range: { start, end } })
            } catch (err) {
              lastError = err
              this.log('piece-remote-read-failed', { piece, from: m.name, code: (err as CairnError).code, message: (err as Error).message })
              continue
            }
            await pipeline(remote.body, out)
            return
          }
          throw lastError
        }
        read().catch((err) => { out.destroy(err as Error) })
        return out
      }
    }
  }

  /**
   * The leaf proofs of `challenge` for a piece this node does not hold,
   * computed by a live node that holds it and checked here against the piece
   * CID (src/cluster/proofs.ts): nothing is copied into this node's store.
   * Holders are tried in order of their last heartbeat; one whose proof does
   * not verify, or that finds its copy corrupt, gets a scrub of that copy (a
   * bad one is dropped and copied again) and the next holder is asked.
   * ERR_PIECE_NOT_FOUND when no live node holds the piece — not
   * ERR_PIECE_CORRUPT, which would report this node's copy lost when it never
   * had one; else the last holder's error when none gives a good proof.
   */
  async prove (piece: string, challenge: PieceChallenge): Promise<LeafProofMessage[]> {
    const pieceCid = CID.parse(piece)
    return await this.fromHolders(piece, async (address) => await readRemoteProof(address, pieceCid, challenge, { secret: this.cluster.secret, node: this.name }))
  }

  /**
   * The leaf proofs of the given leaves of a piece this node does not hold (a
   * PDP data set's challenges in it, src/pdp/prove.ts), from a live holder
   * and each checked here against the piece CID, as `prove`: nothing is
   * copied. More leaves than one request carries are asked in turns. A holder
   * whose leaves do not verify gets a scrub of its copy, as in `prove` (a
   * scrub reads the copy from whichever of the node's two stores holds it).
   */
  async proveLeaves (piece: string, leaves: readonly number[]): Promise<LeafProof[]> {
    const pieceCid = CID.parse(piece)
    const out: LeafProof[] = []
    for (let at = 0; at < leaves.length; at += MAX_LEAVES_PER_REQUEST) {
      const part = leaves.slice(at, at + MAX_LEAVES_PER_REQUEST)
      out.push(...await this.fromHolders(piece, async (address) => await readRemoteLeaves(address, pieceCid, part, { secret: this.cluster.secret, node: this.name })))
    }
    return out
  }

  /** `ask` of the live holders of `piece` in turn, as `prove` describes: the first good answer. */
  private async fromHolders<T> (piece: string, ask: (address: string) => Promise<T>): Promise<T> {
    const machines = await this.liveHolders(piece)
    if (machines.length === 0) throw new CairnError('ERR_PIECE_NOT_FOUND', `no live node of the cluster holds piece ${piece}`)
    let lastError: unknown
    for (const m of machines) {
      try {
        return await ask(m.address)
      } catch (err) {
        lastError = err
        const code = (err as CairnError).code
        this.log('proof-remote-failed', { piece, from: m.name, code, message: (err as Error).message })
        if (code === 'ERR_CLUSTER_BAD_PROOF' || code === 'ERR_PIECE_CORRUPT') {
          await addTask(this.cluster.db, 'scrub', { piece, node: m.name }, { dedupe: `scrub:${locationKey(piece, m.name)}` })
            .catch((e) => { this.log('scrub-post-failed', { piece, node: m.name, message: (e as Error).message }) })
        }
      }
    }
    throw lastError
  }

  /** The registered nodes (a dead one is deleted, src/cluster/machines.ts) other than this one that hold `piece`, the most recently heard from first. */
  private async liveHolders (piece: string): Promise<MachineInfo[]> {
    const holders = new Set(await pieceLocations(this.cluster.state, piece))
    return (await listMachines(this.cluster.db)).filter(m => m.name !== this.name && holders.has(m.name)).sort((a, b) => a.silentMs - b.silentMs)
  }

  private async fetchFrom (piece: string, exclude: string[], signal?: AbortSignal, store = this.store): Promise<boolean> {
    const holders = new Set(await pieceLocations(this.cluster.state, piece))
    const machines = (await listMachines(this.cluster.db)).filter(m => m.name !== this.name && holders.has(m.name) && !exclude.includes(m.name))
    let lastError: unknown
    for (const m of machines) {
      try {
        await this.copyFrom(m.address, piece, store, signal)
        this.log('piece-fetched', { piece, from: m.name })
        return true
      } catch (err) {
        lastError = err
        this.log('piece-fetch-failed', { piece, from: m.name, code: (err as CairnError).code, message: (err as Error).message })
      }
    }
    if (lastError !== undefined && machines.length > 0) throw lastError
    return false
  }

  private async copyFrom (address: string, piece: string, store: PieceStore, signal?: AbortSignal): Promise<void> {
    const expected = CID.parse(piece)
    const remote = await readRemotePiece(address, piece, { secret: this.cluster.secret, node: this.name, signal })
    const staged = await store.stage(remote.body, { signal })
    if (!staged.piece.cid.equals(expected)) {
      await staged.abort()
      throw new CairnError('ERR_PIECE_MISMATCH', `node ${address} sent bytes whose piece CID is ${staged.piece.cid.toString()}, not ${piece}`)
    }
    await staged.commit()
    await this.cluster.state.batch([{ type: 'put', space: spaces.pieceLocations, key: locationKey(piece, this.name), value: EMPTY }])
  }

  private async copyTask (task: TaskContext): Promise<void> {
    const { piece, exclude = [] } = task.payload as { piece: string, exclude?: string[] }
    const holders = await pieceLocations(this.cluster.state, piece)
    const live = new Set((await listMachines(this.cluster.db)).map(m => m.name))
    const drained = await drainedNodes(this.cluster.state)
    const good = holders.filter(h => live.has(h) && !exclude.includes(h) && !drained.has(h))
    if (good.length >= this.copies) return
    const store = await this.storeFor(piece)
    // a parked PDP piece is temporary: one copy, unless its node is drained
    if (store !== this.store && exclude.length === 0 && (await pdpRefs(this.cluster.state, piece) ?? 0) === 0) return
    if (holders.includes(this.name) || exclude.includes(this.name) || this.drained) {
      throw new CairnError('ERR_TASK_NOT_OWNED', `node ${this.name} holds piece ${piece} already or may not take it: another node copies it`)
    }
    await task.assertOwned()
    if (!await this.fetchFrom(piece, [], task.signal, store)) throw new CairnError('ERR_PIECE_NOT_FOUND', `no live node holds piece ${piece}`)
  }

  private async scrubTask (task: TaskContext): Promise<void> {
    const { piece, node } = task.payload as { piece: string, node: string }
    const expected = CID.parse(piece)
    let ok = true
    let error: string | undefined
    let own: PieceStore | undefined
    try {
      let body: AsyncIterable<Uint8Array>
      if (node === this.name) {
        const local = await this.openLocal(piece)
        if (local === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `piece ${piece} is missing from this node's stores`)
        own = local.store
        body = local.body
      } else {
        const address = (await listMachines(this.cluster.db)).find(m => m.name === node)?.address
        if (address === undefined) return // the node is gone; its copies are copied again by whoever notices (drain, a failed read)
        body = (await readRemotePiece(address, piece, { secret: this.cluster.secret, node: this.name, signal: task.signal })).body
      }
      // staged in this node's tmp and thrown away: only the commitment is wanted
      const staged = await this.store.stage(body, { signal: task.signal })
      await staged.abort()
      if (!staged.piece.cid.equals(expected)) { ok = false; error = `the copy hashes to ${staged.piece.cid.toString()}` }
    } catch (err) {
      const code = (err as CairnError).code
      if (code !== 'ERR_PIECE_NOT_FOUND' && code !== 'ERR_PIECE_MISMATCH') throw err
      ok = false
      error = (err as Error).message
    }
    await task.assertOwned()
    const record: ScrubRecord = { at: Date.now(), ok, by: this.name, ...(error === undefined ? {} : { error }) }
    const ops = [{ type: 'put' as const, space: spaces.scrubs, key: locationKey(piece, node), value: new TextEncoder().encode(JSON.stringify(record)) }]
    if (!ok) {
      this.log('piece-scrub-failed', { piece, node, error })
      if (own !== undefined) await rm(own.path(piece), { force: true })
      await this.cluster.state.batch([...ops, { type: 'del', space: spaces.pieceLocations, key: locationKey(piece, node) }])
      await addTask(this.cluster.db, 'copy', { piece }, { dedupe: `copy:${piece}`, maxAttempts: 40 })
      return
    }
    await this.cluster.state.batch(ops)
  }

  private async gcTask (task: TaskContext): Promise<void> {
    const removed = await this.collect(task, this.store, async (piece) =>
      (await this.cluster.state.get(spaces.pieces, piece)) === undefined && (await this.options.ledger.holders(piece)).length === 0)
    // a PDP piece swept by another holder loses its record and every location; this node's copy goes here (or at its next start)
    const pdp = this.options.pdpStore
    if (pdp !== undefined) removed.push(...await this.collect(task, pdp, async (piece) => await pdpRefs(this.cluster.state, piece) === undefined))
    if (removed.length > 0) this.log('pieces-collected', { node: this.name, removed: removed.length })
  }

  /** Removes the piece files of `store` older than the upload grace that are `garbage`, and this node's locations of them. */
  private async collect (task: TaskContext, store: PieceStore, garbage: (piece: string) => Promise<boolean>): Promise<string[]> {
    const removed: string[] = []
    for (const name of await readdir(store.dir).catch(() => [] as string[])) {
      if (!name.endsWith('.car')) continue
      const piece = name.slice(0, -4)
      const info = await stat(join(store.dir, name)).catch(() => undefined)
      if (info === undefined || Date.now() - info.mtimeMs < GC_MIN_AGE_MS) continue
      if (!await garbage(piece)) continue
      await task.assertOwned()
      // the location goes first, so no node is sent here for a file that is gone
      await this.cluster.state.batch([{ type: 'del', space: spaces.pieceLocations, key: locationKey(piece, this.name) }])
      await rm(join(store.dir, name), { force: true })
      await rm(join(store.dir, `${piece}.layers`), { force: true })
      removed.push(piece)
    }
    return removed
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    clearInterval(this.drainWatch)
    await this.engine.stop()
    await this.machine.stop()
  }
}

/** How many data-set pieces a PDP piece is (0: parked), or undefined when the PDP registry does not know it (src/pdp/pieces.ts). */
async function pdpRefs (state: StateStore, piece: string): Promise<number | undefined> {
  const record = await state.get(spaces.pdpPieces, piece)
  return record === undefined ? undefined : (dagCBOR.decode(record) as { refs?: number }).refs ?? 0
}

async function isDrained (state: StateStore, node: string): Promise<boolean> {
  return (await state.get(spaces.drained, node)) !== undefined
}

async function drainedNodes (state: StateStore): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const [key] of state.iterate(spaces.drained)) out.add(key)
  return out
}

/**
 * `cairn cluster drain <node>`: marks the node drained (it stops claiming
 * tasks) and posts a copy of each of its pieces to another node.
 */
export async function drainNode (cluster: Pick<ClusterState, 'db' | 'state'>, node: string): Promise<{ node: string, pieces: number, tasks: number }> {
  const machines = await listMachines(cluster.db)
  if (!machines.some(m => m.name === node) && !await hasLocations(cluster.state, node)) {
    throw new CairnError('ERR_NOT_FOUND', `no node ${JSON.stringify(node)} in this cluster`)
  }
  await cluster.state.batch([{ type: 'put', space: spaces.drained, key: node, value: new TextEncoder().encode(String(Date.now())) }])
  let pieces = 0
  let tasks = 0
  for await (const [key] of cluster.state.iterate(spaces.pieceLocations)) {
    const slash = key.lastIndexOf('/')
    if (key.slice(slash + 1) !== node) continue
    pieces++
    const id = await addTask(cluster.db, 'copy', { piece: key.slice(0, slash), exclude: [node] }, { dedupe: `drain:${key}`, maxAttempts: 40 })
    if (id !== undefined) tasks++
  }
  return { node, pieces, tasks }
}

async function hasLocations (state: StateStore, node: string): Promise<boolean> {
  for await (const [key] of state.iterate(spaces.pieceLocations)) if (key.endsWith(`/${node}`)) return true
  return false
}

export interface ClusterStatus {
  identity: string | null
  machines: Array<{ name: string, address: string, heartbeatAt: string, silentMs: number, drained: boolean, pieces: number }>
  /** nodes that hold pieces but are not registered (stopped or dead) */
  absent: Array<{ name: string, pieces: number }>
  tasks: Array<{ type: string, state: 'waiting' | 'running' | 'given-up', count: number }>
  /** `underCopied`: held by fewer live nodes than `copies`, leaving out parked PDP pieces, which stay on one node */
  pieces: { total: number, underCopied: number }
}

/** What `cairn cluster status` shows. */
export async function clusterStatus (cluster: Pick<ClusterState, 'db' | 'state'>, copies = DEFAULT_COPIES): Promise<ClusterStatus> {
  const machines = await listMachines(cluster.db)
  const drained = await drainedNodes(cluster.state)
  const perNode = new Map<string, number>()
  const perPiece = new Map<string, number>()
  for await (const [key] of cluster.state.iterate(spaces.pieceLocations)) {
    const slash = key.lastIndexOf('/')
    const node = key.slice(slash + 1)
    perNode.set(node, (perNode.get(node) ?? 0) + 1)
    const piece = key.slice(0, slash)
    if (machines.some(m => m.name === node)) perPiece.set(piece, (perPiece.get(piece) ?? 0) + 1)
    else perPiece.set(piece, perPiece.get(piece) ?? 0)
  }
  const { rows } = await cluster.db.query<{ type: string, state: 'waiting' | 'running' | 'given-up', count: string }>(
    `SELECT type, CASE WHEN given_up_at IS NOT NULL THEN 'given-up' WHEN owner IS NOT NULL THEN 'running' ELSE 'waiting' END AS state, count(*) AS count
     FROM cluster_tasks GROUP BY 1, 2 ORDER BY 1, 2`)
  const identity = await cluster.state.get(spaces.clusterMeta, 'identity')
  return {
    identity: identity === undefined ? null : new TextDecoder().decode(identity),
    machines: machines.map(m => ({ name: m.name, address: m.address, heartbeatAt: m.heartbeatAt.toISOString(), silentMs: Math.round(m.silentMs), drained: drained.has(m.name), pieces: perNode.get(m.name) ?? 0 })),
    absent: [...perNode].filter(([name]) => !machines.some(m => m.name === name)).map(([name, pieces]) => ({ name, pieces })),
    tasks: rows.map(r => ({ type: r.type, state: r.state, count: Number(r.count) })),
    pieces: { total: perPiece.size, underCopied: await countUnderCopied(cluster.state, perPiece, copies) }
  }
}

async function countUnderCopied (state: StateStore, holders: Map<string, number>, copies: number): Promise<number> {
  let under = 0
  for (const [piece, n] of holders) {
    if (n >= copies) continue
    if (await state.get(spaces.pieces, piece) === undefined && await pdpRefs(state, piece) === 0) continue
    under++
  }
  return under
}
