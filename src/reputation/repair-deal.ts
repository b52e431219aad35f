/**
 * Carrying out a repair decision (README "Reputation, placement and repair") for `cairn watch`: when a deal's
 * provider faults twice in a row or is predicted to fail, get the piece —
 * from this repo when it still holds it, else from a healthy replica's
 * `/piece/{pieceCid}`, re-hashed to its piece CID before it is kept — make a
 * new deal with the best provider not holding the piece, within the price
 * ceiling the client dealt under (not the failed deal's price), record
 * `deal-repaired` and terminate the bad deal. With no healthy replica left it
 * fails loudly with ERR_NO_HEALTHY_REPLICA, with no provider that qualifies
 * with ERR_NO_REPAIR_TARGET.
 */
import type { CID } from 'multiformats/cid'
import { CairnError, isCairnError } from '../errors.js'
import { activeDeals, type AuditDeal } from '../client/audit.js'
import { AddressBook } from '../client/address-book.js'
import { DEFAULT_MAX_PRICE, makeDeal, type DealResult } from '../client/deal.js'
import { ProviderClient } from '../client/provider-client.js'
import { distinctReplica, replicaRecordOf, type ReplicaRecord } from '../client/replicas.js'
import type { Recipient } from '../crypto/keys.js'
import { findRoot } from '../store/roots.js'
import type { Ledger } from '../ledger/interface.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { reputationsFromLedger } from './ledger.js'
import { DEFAULT_PARAMS } from './model.js'
import type { Candidate } from './placement.js'
import type { DealHistory } from './predictor.js'
import { DEFAULT_POLICY, planRepairs, type RepairPlan, type RepairPolicy, type Replica } from './repair.js'

export interface RepairContext {
  repo: Repo
  ledger: Ledger
  /** unix seconds */
  now?: () => number
  /** passed to makeDeal: poll interval and timeout while the new deal becomes active */
  pollIntervalMs?: number
  activeTimeoutMs?: number
}

export interface RepairOutcome {
  deal: string
  provider: string
  reason: string
  /** where the piece came from: 'local' or a replica's endpoint */
  source: string
  /** a distinct replica: the new one is a fresh encryption, not a copy */
  reencrypted?: boolean
  replacement: DealResult
}

/**
 * The active deals holding replicas of the same content as `deal` (itself
 * included): the same piece, or distinct replicas of the same root.
 */
async function replicasOf (ledger: Ledger, deal: AuditDeal, record: ReplicaRecord | undefined): Promise<AuditDeal[]> {
  const out: AuditDeal[] = []
  for (const d of await activeDeals(ledger)) {
    if (record === undefined ? d.proposal.pieceCid.equals(deal.proposal.pieceCid) : (await replicaRecordOf(ledger, d.id))?.replicaOf === record.replicaOf) out.push(d)
  }
  return out
}

/**
 * Decides whether `deal` needs repair now and, if so, repairs it. Returns
 * undefined when the deal is healthy.
 */
export async function repairIfNeeded (ctx: RepairContext, deal: AuditDeal, policy: RepairPolicy = DEFAULT_POLICY): Promise<RepairOutcome | undefined> {
  const { ledger, repo } = ctx
  const record = await ledger.deal(deal.id)
  // a deal that failed (3 faults, docs/ledger.md) lost its replica too: it is replaced, not terminated
  if (record?.state !== 'active' && record?.state !== 'failed') return undefined
  if (record.state === 'failed' && await alreadyRepaired(ledger, deal.id)) return undefined
  const replica = await replicaRecordOf(ledger, deal.id)
  const holders = await replicasOf(ledger, deal, replica)
  if (!holders.some(h => h.id.equals(deal.id))) holders.push(deal)
  const replicas: Replica[] = []
  for (const h of holders) {
    const r = await ledger.deal(h.id)
    const faults = r?.state === 'failed' ? Math.max(policy.consecutiveFaults, r.consecutiveFaults) : r?.consecutiveFaults ?? 0
    replicas.push({ deal: h.id.toString(), provider: h.provider, host: new URL(h.endpoint).host, consecutiveFaults: faults, history: await historyOf(ledger, h.id) })
  }
  const reps = await reputationsFromLedger(ledger)
  const book = await new AddressBook(await repo.db()).list()
  const candidates: Candidate[] = book.map(e => ({ id: e.did, url: e.url, pricePerGiBDay: e.ask.payload.pricePerGiBDay, freeCapacity: e.ask.payload.freeCapacity, reputation: reps.get(e.did) }))
  // the client's price policy when it made the deal, not the failed deal's price: a replacement
  // may cost more than the replica it replaces, as long as it is within what the client would pay
  const maxPrice = await pricePolicyOf(ledger, deal.id)
  const plans = planRepairs(replicas, id => reps.get(id), candidates, {
    policy,
    params: DEFAULT_PARAMS,
    placement: { maxPrice, pieceSize: deal.proposal.pieceSize }
  })
  const plan = plans.find(p => p.replica.deal === deal.id.toString())
  if (plan === undefined) return undefined
  return await carryOut(ctx, deal, plan, holders, maxPrice, replica)
}

/** The ceiling the client dealt under: recorded in `deal-proposed`, else the default of deals made before it was recorded. */
export async function pricePolicyOf (ledger: Ledger, id: CID): Promise<bigint> {
  for await (const entry of ledger.log({ deal: id, kind: 'deal-proposed', limit: 1 })) {
    if (entry.kind === 'deal-proposed' && entry.fields.maxPrice !== undefined) return BigInt(entry.fields.maxPrice)
  }
  return DEFAULT_MAX_PRICE
}

async function carryOut (ctx: RepairContext, deal: AuditDeal, plan: RepairPlan, holders: AuditDeal[], maxPrice: bigint, replica: ReplicaRecord | undefined): Promise<RepairOutcome> {
  const { repo, ledger } = ctx
  const target = plan.target?.candidate.url
  const now = ctx.now ?? (() => Math.floor(Date.now() / 1000))
  const p = deal.proposal
  const dealCtx = { repo, ledger, now, pollIntervalMs: ctx.pollIntervalMs, activeTimeoutMs: ctx.activeTimeoutMs }
  const terms = { duration: Math.max(p.provingPeriod, p.end - now()), maxPrice, challenges: p.challenges, provingPeriod: p.provingPeriod, label: p.label }
  let source = 'local'
  let replacement: DealResult | undefined
  // a plain copy goes from a healthy replica straight to a target that speaks PDP: it pulls the piece
  // (docs/pdp.md "Repair by pull"); a target that cannot (its pull policy, the source) gets it from here
  const pullFrom = replica === undefined && target !== undefined ? await pullSource(plan, holders, target) : undefined
  if (pullFrom !== undefined && target !== undefined) {
    try {
      replacement = await makeDeal({ ...dealCtx, pullFrom }, p.payloadCid.toString(), target, terms)
      source = pullFrom
    } catch (err) {
      if (!isCairnError(err) || !PULL_FALLBACK.has(err.code)) throw err
    }
  }
  if (replacement === undefined) {
    const pieceCid = p.pieceCid.toString()
    const store = new PieceStore(repo.piecesDir, repo.tmpDir)
    // a distinct replica is made again from any replica's plaintext (the client holds the keys), never copied
    let from = replica === undefined ? pieceCid : await localReplicaPiece(ctx, holders, plan)
    if (from === undefined || !await store.has(from)) {
      const tried: string[] = []
      let got = false
      for (const s of plan.sources) {
        const holder = holders.find(h => h.id.toString() === s.deal)
        if (holder === undefined) continue
        try {
          await fetchPiece(store, holder.endpoint, holder.proposal.pieceCid)
          from = holder.proposal.pieceCid.toString()
          source = holder.endpoint
          got = true
          break
        } catch (err) {
          tried.push(`${holder.endpoint}: ${isCairnError(err) ? err.code : 'error'} ${(err as Error).message}`)
        }
      }
      if (!got) {
        const detail = plan.sources.length === 0 ? 'every replica is faulting or predicted to fail' : `no healthy replica gave a verified copy (${tried.join('; ')})`
        throw new CairnError('ERR_NO_HEALTHY_REPLICA', `piece ${pieceCid} of deal ${deal.id.toString()} cannot be repaired: ${detail}, and this repo holds no copy`, { details: { deal: deal.id.toString(), piece: pieceCid } })
      }
    }
    if (target === undefined) {
      throw new CairnError('ERR_NO_REPAIR_TARGET', `deal ${deal.id.toString()} needs repair (${plan.reason}) but ${plan.noTarget ?? 'no provider qualifies'}`)
    }
    const root = replica === undefined
      ? p.payloadCid.toString()
      : (await distinctReplica(repo, store.path(from as string), replica.replicaOf, replica.recipients as Recipient[])).root
    replacement = await makeDeal(dealCtx, root, target, terms, replica)
  }
  await ledger.append('deal-repaired', {
    deal: deal.id,
    provider: deal.provider,
    reason: plan.reason,
    source,
    replacement: replacement.id,
    replacementProvider: replacement.provider,
    placement: plan.target?.reason ?? '',
    ...(replica === undefined ? {} : { reencrypted: true })
  })
  if ((await ledger.deal(deal.id))?.state === 'active') {
    await ledger.append('deal-terminated', { deal: deal.id, provider: deal.provider, code: 'ERR_REPAIRED', message: `replaced by deal ${replacement.id}: ${plan.reason}` })
  }
  return { deal: deal.id.toString(), provider: deal.provider, reason: plan.reason, source, replacement, ...(replica === undefined ? {} : { reencrypted: true }) }
}

/** A pull that failed this way is done from the client instead: the target's policy or the source kept it from pulling. */
const PULL_FALLBACK = new Set(['ERR_PULL_SOURCE_FORBIDDEN', 'ERR_PULL_FAILED', 'ERR_NOT_FOUND', 'ERR_PIECE_NOT_FOUND'])

/** The first healthy replica's provider, when the target speaks PDP (answers `GET /pdp/ping`); else undefined. */
async function pullSource (plan: RepairPlan, holders: AuditDeal[], target: string): Promise<string | undefined> {
  const first = plan.sources.map((s) => holders.find((h) => h.id.toString() === s.deal)).find((h) => h !== undefined)
  if (first === undefined) return undefined
  return await new ProviderClient(target).speaksPdp() ? first.endpoint : undefined
}

/** A piece of this repo holding a replica of the content (the root dealt, or any healthy replica), if one is here. */
async function localReplicaPiece (ctx: RepairContext, holders: AuditDeal[], plan: RepairPlan): Promise<string | undefined> {
  const store = new PieceStore(ctx.repo.piecesDir, ctx.repo.tmpDir)
  // any replica's piece kept here is the client's own verified copy, whatever its provider does with theirs
  for (const h of holders) {
    if (await store.has(h.proposal.pieceCid.toString())) return h.proposal.pieceCid.toString()
  }
  // the root the replicas were made of, when it is still in this repo
  const record = await replicaRecordOf(ctx.ledger, holders[0]?.id ?? plan.replica.deal)
  const root = record === undefined ? undefined : await findRoot(await ctx.repo.db(), record.replicaOf)
  return root !== undefined && await store.has(root.piece) ? root.piece : undefined
}

/** A deal's failed proofs from its ledger entries, for the deal-level prediction (src/reputation/predictor.ts). */
export async function historyOf (ledger: Ledger, id: CID): Promise<DealHistory> {
  let fails = 0
  let firstFailAt: number | undefined
  for await (const entry of ledger.log({ deal: id, kind: 'proof-failed' })) {
    fails++
    firstFailAt = firstFailAt === undefined ? entry.at : Math.min(firstFailAt, entry.at)
  }
  return firstFailAt === undefined ? { fails } : { fails, firstFailAt }
}

async function alreadyRepaired (ledger: Ledger, id: CID): Promise<boolean> {
  for await (const _ of ledger.log({ deal: id, kind: 'deal-repaired', limit: 1 })) return true
  return false
}

/** The piece's bytes from a provider, kept only when they hash to the piece CID. */
async function fetchPiece (store: PieceStore, endpoint: string, pieceCid: CID): Promise<void> {
  const body = await new ProviderClient(endpoint).piece(pieceCid)
  const staged = await store.stage(body)
  const got = staged.piece.cid.toString()
  if (got !== pieceCid.toString()) {
    await staged.abort()
    throw new CairnError('ERR_PIECE_MISMATCH', `the piece from ${endpoint} hashes to ${got}, not ${pieceCid.toString()}`)
  }
  await staged.commit()
}
