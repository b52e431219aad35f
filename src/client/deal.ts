/**
 * The client's side of a deal (docs/protocol.md): read the provider's signed ask,
 * propose on its terms, record every step in the client's own ledger, upload
 * the piece with the client's signature, and wait until the provider says the
 * deal is active.
 *
 * Ledger entries (docs/ledger.md): `deal-proposed` before the proposal leaves, then
 * `deal-accepted` with the provider's signed acceptance or `deal-rejected`
 * with its code, and `deal-active` with the provider's signed status. A
 * provider that cannot be reached leaves the deal `failed`.
 */
import { randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { CID } from 'multiformats/cid'
import { CairnError, isCairnError, type ErrorCode } from '../errors.js'
import { signCancellation } from '../protocol/cancel.js'
import type { Proposal, SignedAcceptance, SignedAsk, SignedDealStatus, SignedProposal } from '../protocol/interface.js'
import { dealIdOf, parseDealId, proposalFrom, signProposal } from '../protocol/proposal.js'
import { checkAmounts, DEFAULT_CLOCK_SKEW, requiredCollateral } from '../protocol/rules.js'
import type { Ledger } from '../ledger/interface.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { findRoot, type RootRecord } from '../store/roots.js'
import { AddressBook } from './address-book.js'
import { ProviderClient, normaliseUrl } from './provider-client.js'
import { replicaRecordOf, type ReplicaRecord } from './replicas.js'
import { dealView } from '../ledger/deals.js'

/**
 * The most a client offers per GiB per day (base units) when no --max-price
 * is given: the ceiling `cairn deal`, its placement and `watch`'s repairs use.
 * A provider's ask is never taken as it is, however high.
 */
export const DEFAULT_MAX_PRICE = 1000n

export interface DealTerms {
  /** seconds */
  duration: number
  /** the most the client pays per GiB per day (default DEFAULT_MAX_PRICE); offered as is when below the provider's ask */
  maxPrice?: bigint
  challenges?: number
  /** seconds */
  provingPeriod?: number
  label?: string
  /**
   * seconds from now to the deal's start: the provider wants the upload done
   * by then (docs/protocol.md "Deal lifecycle"); default `defaultStartDelay`
   */
  startDelay?: number
}

/** The upload rate the default start delay allows for: a slow but working link. */
export const ASSUMED_UPLOAD_BYTES_PER_SECOND = 1 << 20

/**
 * A start late enough for the upload to be done by then at 1 MiB/s: a
 * provider wants it by the start (but always allows the 60 s a start may lie
 * in the past), so pieces up to 60 MiB start at once and larger ones later.
 */
export function defaultStartDelay (payloadSize: bigint): number {
  const seconds = Number((payloadSize + BigInt(ASSUMED_UPLOAD_BYTES_PER_SECOND) - 1n) / BigInt(ASSUMED_UPLOAD_BYTES_PER_SECOND))
  return Math.max(0, seconds - DEFAULT_CLOCK_SKEW)
}

export interface DealProgress {
  phase: 'ask' | 'proposed' | 'accepted' | 'uploading' | 'waiting' | 'active'
  bytes?: number
  total?: number
}

export interface DealContext {
  repo: Repo
  ledger: Ledger
  /** how often and how long to poll for `active` after the upload, ms */
  pollIntervalMs?: number
  activeTimeoutMs?: number
  onProgress?: (provider: string, progress: DealProgress) => void
  now?: () => number
  /**
   * Another provider holding the piece: the new provider pulls it from there
   * (`POST /pdp/piece/pull`) and takes it for the deal itself, instead of this
   * client uploading it (a repair, docs/pdp.md "Repair by pull")
   */
  pullFrom?: string
}

export interface DealResult {
  id: string
  provider: string
  url: string
  state: 'active'
  root: string
  pieceCid: string
  pieceSize: bigint
  payloadSize: bigint
  pricePerGiBDay: bigint
  start: number
  end: number
  /** the root this deal's content is a distinct replica of (docs/encryption.md "Distinct replicas") */
  replicaOf?: string
}

/** The piece holding a root in the local repo, or ERR_NOT_FOUND. */
export async function localPiece (repo: Repo, root: string): Promise<{ root: CID, record: RootRecord }> {
  let cid: CID
  try {
    cid = CID.parse(root)
  } catch {
    throw new CairnError('ERR_INVALID_CID', `not a CID: ${JSON.stringify(root)}`)
  }
  const db = await repo.db()
  const record = await findRoot(db, cid.toV1().toString()) ?? await findRoot(db, cid.toString())
  if (record === undefined) throw new CairnError('ERR_NOT_FOUND', `${root} is not the root of any piece in this repo; run \`cairn add\` first`)
  return { root: cid, record }
}

/** Builds the proposal for a piece on a provider's ask. */
export function proposalFor (client: string, ask: SignedAsk, piece: { root: CID, record: RootRecord }, terms: DealTerms, now: number): Proposal {
  const a = ask.payload
  const pieceSize = BigInt(piece.record.paddedSize)
  const ceiling = terms.maxPrice ?? DEFAULT_MAX_PRICE
  const price = ceiling < a.pricePerGiBDay ? ceiling : a.pricePerGiBDay
  const start = now + (terms.startDelay ?? defaultStartDelay(BigInt(piece.record.payloadSize)))
  return {
    pieceCid: CID.parse(piece.record.piece),
    pieceSize,
    payloadCid: piece.root.toV1(),
    payloadSize: BigInt(piece.record.payloadSize),
    client,
    provider: a.provider,
    label: terms.label ?? '',
    start,
    end: start + terms.duration,
    pricePerGiBDay: price,
    providerCollateral: requiredCollateral(a.collateralPerGiB, pieceSize),
    clientCollateral: 0n,
    provingPeriod: terms.provingPeriod ?? a.provingPeriod,
    challenges: terms.challenges ?? Math.min(16, a.challenges),
    nonce: randomBytes(8).readBigUInt64BE(0)
  }
}

/** Makes one deal for the piece of `root` with the provider at `url`, through to `active`. */
export async function makeDeal (ctx: DealContext, root: string, url: string, terms: DealTerms, replica?: ReplicaRecord): Promise<DealResult> {
  const { repo, ledger } = ctx
  const now = ctx.now ?? (() => Math.floor(Date.now() / 1000))
  const piece = await localPiece(repo, root)
  const client = new ProviderClient(url)
  const progress = (p: DealProgress): void => ctx.onProgress?.(client.url, p)

  progress({ phase: 'ask' })
  const ask = await client.ask()
  await new AddressBook(await repo.db()).seen(client.url, ask)
  // the proposal carries this client's ledger head, which the provider records (docs/protocol.md "Witnessed heads")
  const proposal = { ...proposalFor(repo.identity.did, ask, piece, terms, now()), head: ledger.head() }
  // the same bound the provider applies: no payment or fee of the deal may overflow
  checkAmounts(proposal)
  const signed = signProposal(repo.identity, proposal)
  const dealId = dealIdOf(signed)
  await ledger.append('deal-proposed', {
    deal: dealId,
    client: proposal.client,
    provider: proposal.provider,
    endpoint: client.url,
    nonce: proposal.nonce,
    pieceCid: proposal.pieceCid,
    payloadCid: proposal.payloadCid,
    pieceSize: proposal.pieceSize,
    payloadSize: proposal.payloadSize,
    // the client's price policy at deal time: a repair of this deal is held to it
    maxPrice: terms.maxPrice ?? DEFAULT_MAX_PRICE,
    // a distinct replica: which content it is a copy of, and for whom a repair encrypts the next one
    ...(replica === undefined ? {} : { replicaOf: replica.replicaOf, recipients: replica.recipients }),
    proposal: { payload: signed.payload, signer: signed.signer, signature: signed.signature }
  })
  progress({ phase: 'proposed' })

  let acceptance: SignedAcceptance
  try {
    acceptance = await client.propose(signed)
    const a = acceptance.payload
    if (a.head === undefined) throw new CairnError('ERR_UNSUPPORTED_VERSION', `provider ${client.url} answered with a deal-acceptance/v1, which carries no ledger head; this client takes v2 (docs/protocol.md)`)
    if (!a.dealId.equals(dealId) || a.client !== proposal.client || !a.pieceCid.equals(proposal.pieceCid)) {
      throw new CairnError('ERR_INVALID_MESSAGE', `provider accepted deal ${String(a.dealId)} of ${a.client} for piece ${String(a.pieceCid)}, but proposed was deal ${String(dealId)} of ${proposal.client} for piece ${proposal.pieceCid.toString()}`)
    }
  } catch (err) {
    await recordRefusal(ledger, dealId, proposal.provider, err)
    throw err
  }
  await ledger.append('deal-accepted', {
    deal: dealId,
    provider: proposal.provider,
    acceptance: { payload: acceptance.payload, signer: acceptance.signer, signature: acceptance.signature }
  })
  progress({ phase: 'accepted' })
  return await transfer(ctx, client, dealId, proposal, progress)
}

/** The transfer of a repair by pull: the provider fetches the piece from `source` and feeds it to the deal; any failure fails the deal. */
async function transferByPull (ctx: DealContext, source: string, client: ProviderClient, dealId: CID, proposal: Proposal, progress: (p: DealProgress) => void): Promise<DealResult> {
  const pieceCid = proposal.pieceCid.toString()
  let status: SignedDealStatus
  try {
    progress({ phase: 'uploading', bytes: 0, total: Number(proposal.payloadSize) })
    await client.pull(pieceCid, `${normaliseUrl(source)}/piece/${pieceCid}`)
    status = await client.uploadFromHeld(ctx.repo.identity, dealId, proposal.provider, pieceCid)
    progress({ phase: 'waiting' })
    status = await untilActive(ctx, client, dealId, proposal.provider, status)
  } catch (err) {
    await ctx.ledger.append('deal-failed', { deal: dealId, provider: proposal.provider, code: isCairnError(err) ? err.code : 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) })
    throw err
  }
  return await recordActive(ctx, client, dealId, proposal, status, progress)
}

/** Codes that say the transfer was cut off, not refused: the deal stays accepted and can be resumed. */
const RESUMABLE = new Set(['ERR_UNREACHABLE', 'ERR_TIMEOUT', 'ERR_SHUTTING_DOWN', 'ERR_UPLOAD_TOO_SLOW'])

/**
 * Uploads the piece of an accepted deal, waits until the provider reports it
 * active and records that. A transfer cut off (provider unreachable, a
 * timeout) leaves the deal accepted, to be resumed with `cairn deal --resume`;
 * anything else the provider answered records `deal-failed`.
 */
async function transfer (ctx: DealContext, client: ProviderClient, dealId: CID, proposal: Proposal, progress: (p: DealProgress) => void): Promise<DealResult> {
  const { repo, ledger } = ctx
  if (ctx.pullFrom !== undefined) return await transferByPull(ctx, ctx.pullFrom, client, dealId, proposal, progress)
  const path = new PieceStore(repo.piecesDir, repo.tmpDir).path(proposal.pieceCid.toString())
  const size = await stat(path).then(s => s.size, () => undefined)
  if (size === undefined) throw new CairnError('ERR_PIECE_NOT_FOUND', `the piece of deal ${dealId.toString()} is no longer in this repo (${path}); add the content again before resuming`)
  if (BigInt(size) !== proposal.payloadSize) {
    throw new CairnError('ERR_PIECE_MISMATCH', `the piece file ${path} holds ${size} bytes; the repo recorded ${proposal.payloadSize}`)
  }
  let sent = 0
  async function * body (): AsyncGenerator<Uint8Array> {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>) {
      sent += chunk.length
      progress({ phase: 'uploading', bytes: sent, total: size })
      yield chunk
    }
  }
  let status: SignedDealStatus
  try {
    status = await client.upload(repo.identity, dealId, proposal.provider, body(), { length: size })
    progress({ phase: 'waiting' })
    status = await untilActive(ctx, client, dealId, proposal.provider, status)
  } catch (err) {
    const code = isCairnError(err) ? err.code : 'ERR_INTERNAL'
    if (RESUMABLE.has(code) && (err as CairnError).details?.status === undefined) {
      throw new CairnError(code as ErrorCode, `${(err as Error).message}; deal ${dealId.toString()} stays accepted: resume it with \`cairn deal --resume ${dealId.toString()}\` or cancel it with \`cairn deals cancel ${dealId.toString()}\``, { cause: err })
    }
    // the provider refused or failed the transfer: over from this side (the provider keeps its own view of the deal)
    await ledger.append('deal-failed', { deal: dealId, provider: proposal.provider, code, message: err instanceof Error ? err.message : String(err) })
    throw err
  }
  return await recordActive(ctx, client, dealId, proposal, status, progress)
}

/** Polls the provider's signed status until the deal is active (ERR_DEAL_STATE if it ends otherwise). */
async function untilActive (ctx: DealContext, client: ProviderClient, dealId: CID, provider: string, first: SignedDealStatus): Promise<SignedDealStatus> {
  let status = first
  const deadline = Date.now() + (ctx.activeTimeoutMs ?? 60_000)
  for (;;) {
    if (status.payload.dealId.toString() !== dealId.toString()) {
      throw new CairnError('ERR_INVALID_MESSAGE', `provider answered with the status of deal ${status.payload.dealId.toString()}, not of ${dealId.toString()}`)
    }
    if (status.payload.state === 'active') return status
    const state: string = status.payload.state
    if (['rejected', 'failed', 'terminated', 'expired'].includes(state)) {
      throw new CairnError('ERR_DEAL_STATE', `provider ${client.url} reports deal ${dealId.toString()} as ${state}`, { details: { status: 200, state } })
    }
    if (Date.now() > deadline) throw new CairnError('ERR_TIMEOUT', `deal ${dealId.toString()} is still ${state} at ${client.url} after ${ctx.activeTimeoutMs ?? 60_000} ms`)
    await new Promise(resolve => setTimeout(resolve, ctx.pollIntervalMs ?? 500))
    status = await client.status(dealId, provider)
  }
}

async function recordActive (ctx: DealContext, client: ProviderClient, dealId: CID, proposal: Proposal, status: SignedDealStatus, progress: (p: DealProgress) => void): Promise<DealResult> {
  const replicaOf = (await replicaRecordOf(ctx.ledger, dealId))?.replicaOf
  await ctx.ledger.append('deal-active', {
    deal: dealId,
    provider: proposal.provider,
    endpoint: client.url,
    pieceCid: proposal.pieceCid,
    payloadCid: proposal.payloadCid,
    // retrieval of the root a replica was made of finds this deal by it (src/client/retrieve.ts)
    ...(replicaOf === undefined ? {} : { replicaOf }),
    status: { payload: status.payload, signer: status.signer, signature: status.signature }
  })
  progress({ phase: 'active' })
  return resultOf(dealId, client.url, proposal, replicaOf)
}

function resultOf (dealId: CID, url: string, proposal: Proposal, replicaOf?: string): DealResult {
  return {
    ...(replicaOf === undefined ? {} : { replicaOf }),
    id: dealId.toString(),
    provider: proposal.provider,
    url,
    state: 'active',
    root: proposal.payloadCid.toString(),
    pieceCid: proposal.pieceCid.toString(),
    pieceSize: proposal.pieceSize,
    payloadSize: proposal.payloadSize,
    pricePerGiBDay: proposal.pricePerGiBDay,
    start: proposal.start,
    end: proposal.end
  }
}

/** The signed proposal and endpoint a `deal-proposed` entry holds (the deals view, src/ledger/deals.ts). */
async function proposedOf (ledger: Ledger, dealId: CID): Promise<{ signed: SignedProposal, endpoint: string }> {
  const proposed = (await dealView(ledger, dealId))?.proposed?.fields
  if (proposed?.proposal !== undefined && proposed.endpoint !== undefined) {
    const stored = proposed.proposal
    return { signed: { payload: proposalFrom(stored.payload), signer: stored.signer, signature: stored.signature }, endpoint: proposed.endpoint }
  }
  throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} was not proposed by this client`)
}

/**
 * Takes an interrupted deal (`cairn deal --resume <id>`) on from where it
 * stopped: a proposal that may never have arrived is sent again (the same
 * signed proposal, so the same deal), an accepted deal is uploaded, and the
 * provider's own view decides what is left — a deal it already has active is
 * only recorded so.
 *
 * `via` sends it to another URL than the one the deal was proposed at: another
 * node of the same provider (a cluster, docs/cluster.md), when that one is
 * gone. Nothing else changes — every answer must still be signed by the
 * deal's provider, so a URL of some other provider gets nowhere.
 */
export async function resumeDeal (ctx: DealContext, id: string, via?: string): Promise<DealResult> {
  const { ledger } = ctx
  const dealId = parseDealId(id)
  const record = await ledger.deal(dealId)
  if (record === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${id} in this client's ledger`)
  const { signed, endpoint } = await proposedOf(ledger, dealId)
  const proposal = signed.payload
  const client = new ProviderClient(via ?? endpoint)
  const progress = (p: DealProgress): void => ctx.onProgress?.(client.url, p)
  if (record.state === 'active') return resultOf(dealId, client.url, proposal, (await replicaRecordOf(ledger, dealId))?.replicaOf)
  if (record.state !== 'proposed' && record.state !== 'accepted') {
    throw new CairnError('ERR_DEAL_STATE', `deal ${id} is ${record.state}; only a proposed or accepted deal can be resumed`)
  }
  const status = await client.status(dealId, proposal.provider).catch((err) => {
    if (isCairnError(err) && err.code === 'ERR_DEAL_NOT_FOUND') return undefined
    throw err
  })
  if (status === undefined) {
    // the proposal never arrived: send it again
    if (record.state !== 'proposed') throw new CairnError('ERR_DEAL_STATE', `provider ${client.url} no longer knows deal ${id}, which it accepted`)
    let acceptance: SignedAcceptance
    try {
      acceptance = await client.propose(signed)
    } catch (err) {
      await recordRefusal(ledger, dealId, proposal.provider, err)
      throw err
    }
    await ledger.append('deal-accepted', { deal: dealId, provider: proposal.provider, acceptance: { payload: acceptance.payload, signer: acceptance.signer, signature: acceptance.signature } })
    progress({ phase: 'accepted' })
    return await transfer(ctx, client, dealId, proposal, progress)
  }
  const state: string = status.payload.state
  if (record.state === 'proposed' && (state === 'accepted' || state === 'active')) {
    // accepted before the answer got back: the provider's signed status stands for its acceptance
    await ledger.append('deal-accepted', { deal: dealId, provider: proposal.provider, status: { payload: status.payload, signer: status.signer, signature: status.signature } })
    progress({ phase: 'accepted' })
  }
  if (state === 'active') return await recordActive(ctx, client, dealId, proposal, status, progress)
  if (state === 'accepted') return await transfer(ctx, client, dealId, proposal, progress)
  // over at the provider: expired (not uploaded in time), cancelled, failed
  const kind = state === 'terminated' ? 'deal-terminated' : state === 'expired' && record.state === 'accepted' ? 'deal-expired' : 'deal-failed'
  await ledger.append(kind, { deal: dealId, provider: proposal.provider, code: 'ERR_DEAL_STATE', message: `provider ${client.url} reports the deal ${state}`, status: { payload: status.payload, signer: status.signer, signature: status.signature } })
  throw new CairnError(state === 'expired' ? 'ERR_DEAL_EXPIRED' : 'ERR_DEAL_STATE', `provider ${client.url} reports deal ${id} as ${state}; it cannot be resumed`)
}

/**
 * Cancels a deal not yet active (`cairn deals cancel <id>`): tells the
 * provider with a signed cancellation, so it frees the reservation, and
 * records `deal-terminated`. A proposal the provider never received is only
 * recorded cancelled. An unreachable provider leaves the deal as it is.
 */
export async function cancelDeal (ctx: Pick<DealContext, 'repo' | 'ledger' | 'now'>, id: string): Promise<{ id: string, provider: string, told: boolean }> {
  const { repo, ledger } = ctx
  const now = ctx.now ?? (() => Math.floor(Date.now() / 1000))
  const dealId = parseDealId(id)
  const record = await ledger.deal(dealId)
  if (record === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${id} in this client's ledger`)
  if (record.state !== 'proposed' && record.state !== 'accepted' && record.state !== 'transferring') {
    throw new CairnError('ERR_DEAL_STATE', `deal ${id} is ${record.state}; only a deal not yet active can be cancelled`)
  }
  const { signed: proposed, endpoint } = await proposedOf(ledger, dealId)
  const provider = proposed.payload.provider
  const client = new ProviderClient(endpoint)
  const cancellation = signCancellation(repo.identity, { dealId, at: now(), head: ledger.head() })
  let status: SignedDealStatus | undefined
  try {
    status = await client.cancel(cancellation, provider)
  } catch (err) {
    // a proposal that never arrived holds nothing at the provider
    if (!(isCairnError(err) && err.code === 'ERR_DEAL_NOT_FOUND' && record.state === 'proposed')) throw err
  }
  if (status !== undefined && status.payload.state !== 'terminated') {
    throw new CairnError('ERR_DEAL_STATE', `provider ${client.url} reports deal ${id} as ${status.payload.state} after the cancellation`)
  }
  await ledger.append('deal-terminated', {
    deal: dealId,
    provider,
    code: 'ERR_CANCELLED',
    message: status === undefined ? 'cancelled; the provider never received the proposal' : 'cancelled by this client; the provider freed its reservation',
    cancel: { payload: cancellation.payload, signer: cancellation.signer, signature: cancellation.signature },
    ...(status === undefined ? {} : { status: { payload: status.payload, signer: status.signer, signature: status.signature } })
  })
  return { id: dealId.toString(), provider, told: status !== undefined }
}

/**
 * A refusal the provider answered with is `deal-rejected` carrying its code;
 * no answer at all (unreachable, timeout, a reply that does not verify) is
 * `deal-failed`.
 */
async function recordRefusal (ledger: Ledger, dealId: CID, provider: string, err: unknown): Promise<void> {
  const code = isCairnError(err) ? err.code : 'ERR_INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  const answered = isCairnError(err) && err.details?.status !== undefined
  await ledger.append(answered ? 'deal-rejected' : 'deal-failed', { deal: dealId, provider, code, message })
}
