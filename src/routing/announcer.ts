/**
 * A provider announcing what it serves to indexers (docs/routing.md): when a
 * deal becomes active its blocks' multihashes are advertised under the deal
 * id, when it ends they are withdrawn, each change one signed advertisement
 * appended to the provider's chain (chain.ts) and sent to every indexer named
 * by `provider start --announce-to`.
 *
 * Announcing never holds up the provider: `dealActive` and `dealEnded` only
 * queue an event (a bounded queue: past its limits an event is dropped and a
 * reconciliation with the ledger is scheduled instead, which finds whatever
 * was dropped). One writer turns events into advertisements; one follower per
 * indexer sends the chain from the last advertisement that indexer
 * acknowledged, retrying with exponential back-off while it is unreachable.
 * The chain and the acknowledgements are on disk, so after a restart each
 * follower resumes where it stopped, and a reconciliation advertises active
 * deals the chain lacks and withdraws those no longer active.
 *
 * An indexer that has lost its state, or follows a chain this provider no
 * longer has (a repo restored from an older backup), says so with
 * ERR_AD_CHAIN_GAP and its head: the follower resumes after that head when it
 * knows it, else from the newest chain start, else it restarts the chain (a
 * new first advertisement, then one per advertised deal, linking the entry
 * chunks already stored).
 */
import { EventEmitter, once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { CairnError, isCairnError } from '../errors.js'
import { normaliseUrl } from '../client/provider-client.js'
import type { Logger } from '../provider/interface.js'
import type { Identity } from '../repo/identity.js'
import type { Database } from '../repo/repo.js'
import { encodeMetadata, entryChunks, MAX_ENTRIES_PER_AD, signAdvertisement, TRANSPORT_IPFS_GATEWAY_HTTP, type Advertisement } from './advertisement.js'
import { AdChain, type NewAdvertisement } from './chain.js'
import { announce, type AnnounceAck } from './http-client.js'
import { urlFromMultiaddr } from './multiaddr.js'

/** Where the announcer learns which deals are active and what blocks they hold (the provider's ledger and pieces). */
export interface DealSource {
  activeDeals (): AsyncIterable<string>
  blocks (dealId: string): AsyncIterable<CID>
}

export type SendAdvertisement = (indexer: string, car: Uint8Array, signal: AbortSignal) => Promise<AnnounceAck>

export interface AnnouncerOptions {
  /** indexer base URLs */
  indexers: readonly string[]
  /** http(s) multiaddrs clients reach this provider at */
  addresses: readonly string[]
  source?: DealSource
  log?: Logger
  /** first wait after a failed send, doubled on each failure up to `maxBackoffMs` */
  initialBackoffMs?: number
  maxBackoffMs?: number
  /** events queued at most; past it an event is dropped and a reconciliation scheduled */
  maxQueuedEvents?: number
  /** multihashes held by queued events at most; past it an event keeps only its deal id */
  maxQueuedMultihashes?: number
  /** how often the chain is reconciled with the active deals (0: only at start) */
  reconcileIntervalMs?: number
  send?: SendAdvertisement
  now?: () => number
}

type AnnounceEvent =
  | { kind: 'active', dealId: string, multihashes?: Uint8Array[] }
  | { kind: 'ended', dealId: string }
  | { kind: 'reconcile' }
  | { kind: 'restart' }

export interface FollowerStatus {
  indexer: string
  /** seq of the last advertisement the indexer took */
  acked: number
  failures: number
  lastError?: { code: string, message: string }
}

export interface AnnouncerStatus {
  head: { seq: number, cid: string } | null
  queued: number
  indexers: FollowerStatus[]
}

const GATEWAY_METADATA = encodeMetadata([TRANSPORT_IPFS_GATEWAY_HTTP])
const NO_BYTES = new Uint8Array(0)
/** chain-gap corrections in a row before a follower backs off as for any failure */
const MAX_GAP_STEPS = 3

export class Announcer {
  private readonly queue: AnnounceEvent[] = []
  private queuedMultihashes = 0
  private reconcileWanted = false
  private writing: Promise<void> | undefined
  private readonly followers = new Map<string, FollowerStatus>()
  private readonly running: Array<Promise<void>> = []
  private readonly events = new EventEmitter()
  private readonly abort = new AbortController()
  /** resolved (and replaced) whenever the chain grows or the announcer closes: followers wait on it */
  private changed = deferred()
  private restarting = false
  private timer: NodeJS.Timeout | undefined
  private readonly log: Logger
  private readonly send: SendAdvertisement
  private readonly now: () => number
  private readonly addresses: string[]

  private constructor (private readonly chain: AdChain, private readonly signer: Pick<Identity, 'publicKey' | 'sign'>, private readonly options: AnnouncerOptions) {
    this.log = options.log ?? (() => {})
    this.send = options.send ?? (async (indexer, car, signal) => await announce(indexer, car, { signal }))
    this.now = options.now ?? Date.now
    this.addresses = [...options.addresses]
    this.events.setMaxListeners(0)
  }

  /**
   * Opens the chain in `db`, advertises the current addresses if the head
   * does not carry them, starts a follower per indexer and, with a deal
   * source, a reconciliation.
   */
  static async start (db: Database, signer: Pick<Identity, 'publicKey' | 'sign'>, options: AnnouncerOptions): Promise<Announcer> {
    if (options.addresses.length === 0) throw new CairnError('ERR_INVALID_ARGUMENT', 'announcing needs at least one address clients can reach this provider at')
    for (const a of options.addresses) {
      if (urlFromMultiaddr(a) === undefined) throw new CairnError('ERR_INVALID_MULTIADDR', `${a} is not an http(s) multiaddr`)
    }
    const indexers = [...new Set(options.indexers.map(url => normaliseUrl(url)))]
    const announcer = new Announcer(new AdChain(db), signer, { ...options, indexers })
    await announcer.updateAddresses()
    for (const indexer of indexers) announcer.running.push(announcer.follow(indexer))
    if (options.source !== undefined) {
      announcer.push({ kind: 'reconcile' })
      const every = options.reconcileIntervalMs ?? 10 * 60_000
      if (every > 0) {
        announcer.timer = setInterval(() => announcer.push({ kind: 'reconcile' }), every)
        announcer.timer.unref()
      }
    }
    return announcer
  }

  /** A deal became active: advertise its blocks (`blocks` spares reading them back from the piece). */
  dealActive (dealId: string, blocks?: Iterable<CID>): void {
    let multihashes: Uint8Array[] | undefined
    if (blocks !== undefined && this.queuedMultihashes < (this.options.maxQueuedMultihashes ?? 1_000_000)) {
      multihashes = []
      for (const cid of blocks) multihashes.push(cid.multihash.bytes)
      this.queuedMultihashes += multihashes.length
    }
    this.push({ kind: 'active', dealId, multihashes })
  }

  /** A deal ended (expired, terminated, failed): withdraw its blocks. */
  dealEnded (dealId: string): void {
    this.push({ kind: 'ended', dealId })
  }

  private push (event: AnnounceEvent): void {
    if (this.abort.signal.aborted) return
    if (event.kind === 'reconcile' && this.queue.some(e => e.kind === 'reconcile')) return
    if (this.queue.length >= (this.options.maxQueuedEvents ?? 10_000)) {
      if (!this.reconcileWanted) this.log('announce-queue-full', { queued: this.queue.length, dropped: event.kind, deal: 'dealId' in event ? event.dealId : undefined })
      // without a deal source nothing can find the dropped event again: it is only logged
      if (this.options.source !== undefined) this.reconcileWanted = true
      if (event.kind === 'active') this.queuedMultihashes -= event.multihashes?.length ?? 0
      return
    }
    if (event.kind === 'restart') {
      if (this.restarting) return
      this.restarting = true
    }
    this.queue.push(event)
    this.kick()
  }

  private kick (): void {
    if (this.writing !== undefined) return
    this.writing = this.write().finally(() => {
      this.writing = undefined
      this.events.emit('progress')
      // an event pushed while the writer was returning
      if (!this.abort.signal.aborted && (this.queue.length > 0 || (this.reconcileWanted && this.options.source !== undefined))) this.kick()
    })
  }

  /** The writer: one event at a time, each failure logged and the next one taken. */
  private async write (): Promise<void> {
    for (;;) {
      let event = this.queue.shift()
      if (event === undefined && this.reconcileWanted && this.options.source !== undefined) {
        this.reconcileWanted = false
        event = { kind: 'reconcile' }
      }
      if (event === undefined || this.abort.signal.aborted) return
      if (event.kind === 'active') this.queuedMultihashes -= event.multihashes?.length ?? 0
      try {
        switch (event.kind) {
          case 'active': await this.advertise(event.dealId, event.multihashes); break
          case 'ended': await this.withdraw(event.dealId); break
          case 'reconcile': await this.reconcile(); break
          case 'restart': await this.restartChain().finally(() => { this.restarting = false }); break
        }
      } catch (err) {
        const e = isCairnError(err) ? err : undefined
        this.log('announce-failed', { event: event.kind, deal: 'dealId' in event ? event.dealId : undefined, code: e?.code ?? 'ERR_INTERNAL', message: (err as Error).message })
      }
      this.events.emit('progress')
    }
  }

  private sign (fields: Omit<Advertisement, 'provider' | 'addresses' | 'at'>): NewAdvertisement & { cid: CID } {
    const { block } = signAdvertisement(this.signer, { ...fields, addresses: this.addresses, at: this.now() })
    return { block, chunks: [], genesis: fields.previous === null, cid: block.cid }
  }

  private async appended (ads: NewAdvertisement[], deal?: { id: string, entries?: CID[] }): Promise<void> {
    await this.chain.append(ads, deal)
    this.wake()
  }

  private wake (): void {
    const woken = this.changed
    this.changed = deferred()
    woken.resolve()
  }

  private async updateAddresses (): Promise<void> {
    const head = await this.chain.head()
    const current = head === undefined ? undefined : await this.chain.advertisement(head.seq)
    const same = current !== undefined && current.ad.addresses.length === this.addresses.length && current.ad.addresses.every((a, i) => a === this.addresses[i])
    if (same) return
    await this.appended([this.sign({ previous: head?.cid ?? null, contextId: NO_BYTES, metadata: NO_BYTES, entries: null, isRm: false })])
    this.log('announce-addresses', { addresses: this.addresses.join(' ') })
  }

  private async advertise (dealId: string, given: Uint8Array[] | undefined): Promise<void> {
    if (await this.chain.isAdvertised(dealId)) return
    const contextId = dealContext(dealId)
    let multihashes = given
    if (multihashes === undefined) {
      if (this.options.source === undefined) throw new CairnError('ERR_INTERNAL', `deal ${dealId} was queued without its blocks and there is no deal source to read them from`)
      multihashes = []
      for await (const cid of this.options.source.blocks(dealId)) {
        // a piece read back may be large: closing does not wait for the rest of it
        this.abort.signal.throwIfAborted()
        multihashes.push(cid.multihash.bytes)
      }
    }
    const unique = new Map<string, Uint8Array>()
    for (const m of multihashes) unique.set(Buffer.from(m).toString('latin1'), m)
    const all = [...unique.values()]
    if (all.length === 0) return
    let previous = (await this.chain.head())?.cid ?? null
    const ads: NewAdvertisement[] = []
    const entries: CID[] = []
    for (let at = 0; at < all.length; at += MAX_ENTRIES_PER_AD) {
      const chunks = entryChunks(all.slice(at, at + MAX_ENTRIES_PER_AD))
      const first = (chunks[0] as { cid: CID }).cid
      const ad = this.sign({ previous, contextId, metadata: GATEWAY_METADATA, entries: first, isRm: false })
      ads.push({ ...ad, chunks })
      entries.push(first)
      previous = ad.cid
    }
    await this.appended(ads, { id: dealId, entries })
    this.log('deal-announced', { deal: dealId, multihashes: all.length, advertisements: ads.length })
  }

  private async withdraw (dealId: string): Promise<void> {
    if (!await this.chain.isAdvertised(dealId)) return
    const previous = (await this.chain.head())?.cid ?? null
    await this.appended([this.sign({ previous, contextId: dealContext(dealId), metadata: GATEWAY_METADATA, entries: null, isRm: true })], { id: dealId })
    this.log('deal-withdrawn', { deal: dealId })
  }

  /** Advertises the active deals the chain lacks and withdraws the advertised ones no longer active. */
  private async reconcile (): Promise<void> {
    const source = this.options.source
    if (source === undefined) return
    const active = new Set<string>()
    for await (const id of source.activeDeals()) {
      if (this.abort.signal.aborted) return
      active.add(id)
      if (!await this.chain.isAdvertised(id)) await this.advertise(id, undefined)
    }
    const ended: string[] = []
    for await (const deal of this.chain.advertised()) if (!active.has(deal.id)) ended.push(deal.id)
    for (const id of ended) await this.withdraw(id)
  }

  /** A new chain: a first advertisement, then every advertised deal again, linking its stored entry chunks. */
  private async restartChain (): Promise<void> {
    const genesis = this.sign({ previous: null, contextId: NO_BYTES, metadata: NO_BYTES, entries: null, isRm: false })
    const ads: NewAdvertisement[] = [genesis]
    let previous = genesis.cid
    for await (const deal of this.chain.advertised()) {
      for (const entries of deal.entries) {
        const ad = this.sign({ previous, contextId: dealContext(deal.id), metadata: GATEWAY_METADATA, entries, isRm: false })
        ads.push(ad)
        previous = ad.cid
      }
    }
    await this.appended(ads)
    this.log('announce-chain-restarted', { advertisements: ads.length })
  }

  /** Sends the chain to one indexer from its last acknowledged advertisement, for as long as the announcer runs. */
  private async follow (indexer: string): Promise<void> {
    const status: FollowerStatus = { indexer, acked: await this.chain.acked(indexer), failures: 0 }
    this.followers.set(indexer, status)
    const signal = this.abort.signal
    let gapSteps = 0
    while (!signal.aborted) {
      const changed = this.changed.promise
      const head = await this.chain.head()
      if (head === undefined || status.acked >= head.seq) {
        this.events.emit('progress')
        await changed
        continue
      }
      const seq = status.acked + 1
      try {
        const car = await this.chain.car(seq)
        const ack = await this.send(indexer, car.bytes, signal)
        // a replayed advertisement is answered with the indexer's head, which may be further on
        status.acked = Math.max(seq, (await this.chain.seqOf(ack.head)) ?? seq)
        await this.chain.setAcked(indexer, status.acked)
        if (status.failures > 0) this.log('announce-resumed', { indexer, seq: status.acked, after: status.failures })
        status.failures = 0
        status.lastError = undefined
        gapSteps = 0
        this.events.emit('progress')
        continue
      } catch (err) {
        if (signal.aborted) break
        const e = isCairnError(err) ? err : new CairnError('ERR_INTERNAL', (err as Error).message, { cause: err })
        if (e.code === 'ERR_AD_CHAIN_GAP' && gapSteps < MAX_GAP_STEPS) {
          gapSteps++
          await this.resumeAfterGap(status, seq, e.details?.head)
          continue
        }
        status.failures++
        status.lastError = { code: e.code, message: e.message }
        const wait = backoff(status.failures, this.options.initialBackoffMs ?? 1000, this.options.maxBackoffMs ?? 300_000)
        this.log('announce-retry', { indexer, seq, code: e.code, message: e.message, attempt: status.failures, waitMs: wait })
        gapSteps = 0
        this.events.emit('progress')
        await delay(wait, undefined, { signal }).catch(() => {})
      }
    }
  }

  /** Where to resume after an indexer said its chain ends at `head` (a CID string, or null for none). */
  private async resumeAfterGap (status: FollowerStatus, seq: number, head: unknown): Promise<void> {
    const genesis = await this.chain.genesis()
    if (head === null || head === undefined) {
      status.acked = Math.max(0, genesis - 1)
      return
    }
    const known = await this.chain.seqOf(String(head))
    if (known !== undefined) {
      status.acked = known
      return
    }
    // the indexer follows a chain this provider does not hold: start from the newest chain start, else make one
    if (seq < genesis) {
      status.acked = genesis - 1
      return
    }
    this.log('announce-chain-fork', { indexer: status.indexer, head: String(head) })
    this.push({ kind: 'restart' })
    await this.settledWriter()
  }

  private async settledWriter (): Promise<void> {
    while (this.writing !== undefined) await this.writing
  }

  /** The head of the chain and where each indexer stands. */
  async status (): Promise<AnnouncerStatus> {
    const head = await this.chain.head()
    return {
      head: head === undefined ? null : { seq: head.seq, cid: head.cid.toString() },
      queued: this.queue.length,
      indexers: [...this.followers.values()].map(f => ({ ...f }))
    }
  }

  /**
   * Resolves once every queued event is in the chain and every indexer has
   * acknowledged the head (tests, bench); an unreachable indexer keeps it waiting.
   */
  async settled (signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted()
      const progress = once(this.events, 'progress', { signal })
      progress.catch(() => {})
      const head = (await this.chain.head())?.seq ?? 0
      const followersDone = this.followers.size === this.options.indexers.length && [...this.followers.values()].every(f => f.acked >= head)
      if (this.queue.length === 0 && this.writing === undefined && !this.reconcileWanted && followersDone) return
      await progress
    }
  }

  /** Stops the followers (a send in flight is aborted) and lets the writer finish its current advertisement. */
  async close (): Promise<void> {
    if (this.abort.signal.aborted) return
    clearInterval(this.timer)
    this.abort.abort(new CairnError('ERR_SHUTTING_DOWN', 'the provider is shutting down'))
    this.queue.length = 0
    this.wake()
    await this.settledWriter()
    await Promise.allSettled(this.running)
  }
}

/** Promise.withResolvers, which Node 20 lacks. */
function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}

/** The context of a deal's entries: its id's CID bytes. */
function dealContext (dealId: string): Uint8Array {
  try {
    return CID.parse(dealId).bytes
  } catch {
    throw new CairnError('ERR_INVALID_CID', `not a deal id: ${JSON.stringify(dealId)}`)
  }
}

/** Exponential back-off with ±20 % jitter, so followers of many providers do not retry in step. */
function backoff (failures: number, initial: number, max: number): number {
  const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 30))
  return Math.round(base * (0.8 + Math.random() * 0.4))
}
