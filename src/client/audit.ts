/**
 * Auditing a provider (docs/protocol.md "Proofs"): challenge it with a fresh random seed, verify
 * the signed proof against nothing but the deal's piece CID, and record the
 * result in the client's ledger.
 *
 * Outcomes:
 *   passed   the proof verifies;
 *   failed   the provider answered, but not with a valid proof — each reason
 *            has its own code (ERR_PROOF_WRONG_PIECE, ERR_PROOF_SEED_MISMATCH
 *            for a replayed or old proof, ERR_PROOF_ROOT_MISMATCH for a wrong
 *            leaf or sibling, ERR_PROOF_COUNT_MISMATCH, ERR_PROOF_UNSIGNED,
 *            ERR_PROOF_WRONG_SIGNER, ERR_PROOF_BAD_SIGNATURE, …, and
 *            ERR_PROOF_REFUSED when it answered with an error such as a lost
 *            piece);
 *   missed   no proof within the challenge timeout (the deadline, default
 *            30 s), or the provider stayed unreachable through every retry.
 * An unreachable provider is first `unknown`: the same challenge is re-sent
 * with exponential backoff while the deadline allows.
 */
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { CairnError, isCairnError } from '../errors.js'
import type { Proposal, SignedProofRequest } from '../protocol/interface.js'
import { signProofRequest } from '../protocol/proof-request.js'
import { parseDealId } from '../protocol/proposal.js'
import type { Signer } from '../protocol/signing.js'
import { undici } from '../lazy/undici.js'
import type { Ledger, LedgerEntry } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'
import { verifyProofAnswer, type SignedProof } from '../protocol/proof.js'
import { ProviderClient, type ProviderClientOptions } from './provider-client.js'
import { autoDeadlineMs, measureRtt } from './deadline.js'
import { expireIfEnded, periodOf, recordResult, serialByDeal, type ProofOutcome, type Settlement } from './accounting.js'
import { dealIdsWith, dealView, proposalOf } from '../ledger/deals.js'

export const DEFAULT_CHALLENGE_TIMEOUT_MS = 30_000

/** A deal as the client's ledger knows it: enough to audit and account for it. */
export interface AuditDeal {
  id: CID
  provider: string
  endpoint: string
  proposal: Proposal
  state: string
}

export interface Challenge {
  dealId: CID
  seed: Uint8Array
  count: number
  /** the same challenge signed by the client (docs/protocol.md "Proof requests"): what is sent */
  request: SignedProofRequest
}

export interface AuditOptions {
  /** challenges per proof; the deal's term when unset */
  challenges?: number
  /** the deadline: ms from the challenge to a received proof */
  timeoutMs?: number
  /**
   * 'auto': the deadline derived from the piece size, the challenges and the
   * provider's round trip (src/client/deadline.ts), in place of `timeoutMs`
   */
  deadline?: 'auto'
  /** the round trip to a deal's provider, ms, for an automatic deadline (default: measured, src/client/deadline.ts) */
  rtt?: (deal: AuditDeal) => Promise<number | undefined>
  /** re-sends to an unreachable provider before it counts as a miss */
  retries?: number
  /** first wait before a re-send, doubled each time */
  backoffMs?: number
  /** unix seconds, for the period */
  now?: () => number
  /** the proving period this audit answers for (default: the one `now` falls in) */
  period?: number
  /** how the provider is reached (timeouts, an undici dispatcher) */
  client?: ProviderClientOptions
  /** where challenge seeds come from (32 fresh random bytes each; tests pick their own) */
  seed?: () => Uint8Array
  onAttempt?: (attempt: AuditAttempt) => void
}

export interface AuditAttempt {
  deal: string
  outcome: 'unknown' | ProofOutcome
  code?: string
  message?: string
  ms: number
}

export interface AuditResult {
  deal: string
  provider: string
  endpoint: string
  period: number
  outcome: ProofOutcome
  code?: string
  message?: string
  count: number
  attempts: AuditAttempt[]
  ms: number
  /** false when the period was already settled by an earlier audit */
  counted: boolean
  /** with an automatic deadline: the deadline given and the round trip it was derived from (undefined when none could be measured) */
  deadline?: { auto: true, ms: number, rttMs?: number }
  settlement?: Settlement
}

export interface AuditContext {
  ledger: Ledger
  db: Database
  /** the client's key: proof requests are signed with it */
  signer: Signer
}

/** The deal's terms and endpoint from its `deal-proposed` entry, and its state (the deals view, src/ledger/deals.ts). */
export async function loadDeal (ledger: Ledger, id: CID | string): Promise<AuditDeal> {
  const dealId = parseDealId(id)
  const view = await dealView(ledger, dealId)
  if (view === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId.toString()} in this ledger`)
  const proposal = proposalOf(view)
  if (proposal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no recorded proposal in this ledger`)
  if (view.endpoint === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no recorded provider endpoint`)
  return { id: dealId, provider: proposal.provider, endpoint: view.endpoint, proposal, state: view.record.state }
}

/** Every deal of this ledger that is active now, oldest first. */
export async function activeDeals (ledger: Ledger): Promise<AuditDeal[]> {
  const out: AuditDeal[] = []
  for (const id of (await dealIdsWith(ledger, 'deal-active')).reverse()) {
    const record = await ledger.deal(id)
    if (record?.state === 'active') out.push(await loadDeal(ledger, id))
  }
  return out
}

/** Whether an error means "no answer yet, try again" rather than an answer. */
function isUnreachable (err: unknown): boolean {
  if (!isCairnError(err)) return false
  if (err.code === 'ERR_UNREACHABLE' && err.details?.status === undefined) return true
  // a provider shutting down, overloaded or rate-limiting did not answer the challenge
  return err.details?.status === 503 || err.details?.status === 429
}

/** `ledger verify` hook: a `proof-passed` entry's stored proof must still verify on its own. */
export function verifyProofEntry (entry: LedgerEntry): void {
  if (entry.kind !== 'proof-passed') return
  const f = entry.fields
  const dealId = parseDealId(f.deal)
  const pieceCid = CID.asCID(f.pieceCid)
  if (pieceCid === null || typeof f.provider !== 'string' || !(f.seed instanceof Uint8Array) || typeof f.count !== 'number') {
    throw new CairnError('ERR_PROOF_MALFORMED', 'a proof-passed entry needs pieceCid, provider, seed and count beside its proof')
  }
  verifyProofAnswer(f.proof, { dealId, pieceCid, provider: f.provider, seed: f.seed, count: f.count })
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/**
 * Challenges the deal's provider once, verifies, records `challenge-issued`
 * and the result (and settles the period, docs/ledger.md) in the ledger.
 */
export async function auditDeal (ctx: AuditContext, deal: AuditDeal, options: AuditOptions = {}): Promise<AuditResult> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000))
  const count = options.challenges ?? deal.proposal.challenges
  if (!Number.isSafeInteger(count) || count < 1) throw new CairnError('ERR_INVALID_ARGUMENT', `challenges must be a positive whole number, got ${count}`)
  if (count > deal.proposal.challenges) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${count} challenges asked; deal ${deal.id.toString()} was made for at most ${deal.proposal.challenges} per proof`)
  }
  if (now() >= deal.proposal.end) {
    // past its end a deal is not challenged and no period is paid: it is marked expired instead
    await expireIfEnded(ctx, deal, now())
    throw new CairnError('ERR_DEAL_EXPIRED', `deal ${deal.id.toString()} ended at ${new Date(deal.proposal.end * 1000).toISOString()}; it is expired, not audited`, { details: { deal: deal.id.toString(), end: deal.proposal.end } })
  }
  let timeoutMs = options.timeoutMs ?? DEFAULT_CHALLENGE_TIMEOUT_MS
  let auto: AuditResult['deadline']
  if (options.deadline === 'auto') {
    // measured before the challenge is issued: the round trip is no part of the provider's time
    const rttMs = await (options.rtt ?? (async d => await measureRtt(d.endpoint)))(deal)
    // unreachable now: the fixed deadline, and the usual retries find out
    if (rttMs !== undefined) timeoutMs = autoDeadlineMs(deal.proposal.pieceSize, count, rttMs)
    auto = { auto: true, ms: timeoutMs, ...(rttMs === undefined ? {} : { rttMs: Math.round(rttMs * 1000) / 1000 }) }
  }
  const retries = options.retries ?? 3
  const client = new ProviderClient(deal.endpoint, options.client)
  const period = options.period ?? periodOf(deal.proposal, now())
  const seed = options.seed?.() ?? new Uint8Array(randomBytes(32))
  if (seed.length !== 32) throw new TypeError(`a challenge seed is 32 bytes, got ${seed.length}`)
  // undici is loaded before the clock starts: its import is no part of the provider's time
  await undici()
  const started = Date.now()
  const deadline = started + timeoutMs
  const issued = await ctx.ledger.append('challenge-issued', { deal: deal.id, provider: deal.provider, period, seed, count, deadline })
  // signed with the head that records the challenge (docs/protocol.md "Proof requests")
  const request = signProofRequest(ctx.signer, { dealId: deal.id, seed, count, at: now(), head: { seq: issued.seq, cid: issued.cid } })
  const challenge: Challenge = { dealId: deal.id, seed, count, request }

  const attempts: AuditAttempt[] = []
  const note = (a: AuditAttempt): void => { attempts.push(a); options.onAttempt?.(a) }
  let outcome: ProofOutcome = 'missed'
  let code: string | undefined
  let message: string | undefined
  let providerCode: string | undefined
  let proof: SignedProof | undefined
  let backoff = options.backoffMs ?? 1000
  for (let attempt = 0; ; attempt++) {
    const t0 = Date.now()
    const remaining = deadline - t0
    if (remaining <= 0) {
      code = 'ERR_PROOF_MISSED'
      message = `no proof within the ${timeoutMs} ms deadline${auto === undefined ? '' : ' (--deadline auto)'}`
      break
    }
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), remaining)
    try {
      const answer = await client.prove(challenge.request, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: deal.provider, seed, count, witnessed: true }, controller.signal)
      if (controller.signal.aborted) throw new CairnError('ERR_TIMEOUT', 'the proof arrived after its deadline')
      proof = answer
      outcome = 'passed'
      note({ deal: deal.id.toString(), outcome, ms: Date.now() - t0 })
      break
    } catch (err) {
      const e = isCairnError(err) ? err : new CairnError('ERR_INTERNAL', (err as Error)?.message ?? String(err), { cause: err })
      if (e.code === 'ERR_TIMEOUT' || controller.signal.aborted) {
        outcome = 'missed'
        code = 'ERR_PROOF_MISSED'
        message = `no proof within the ${timeoutMs} ms deadline${auto === undefined ? '' : ' (--deadline auto: about what proving from a local copy takes; a copy fetched from elsewhere does not fit)'}`
        note({ deal: deal.id.toString(), outcome, code, message, ms: Date.now() - t0 })
        break
      }
      if (isUnreachable(e)) {
        note({ deal: deal.id.toString(), outcome: 'unknown', code: e.code, message: e.message, ms: Date.now() - t0 })
        if (attempt < retries && Date.now() + backoff < deadline) {
          await sleep(backoff)
          backoff *= 2
          continue
        }
        outcome = 'missed'
        code = 'ERR_PROOF_MISSED'
        message = `provider unreachable after ${attempt + 1} attempts: ${e.message}`
        note({ deal: deal.id.toString(), outcome, code, message, ms: Date.now() - t0 })
        break
      }
      outcome = 'failed'
      const fromProvider = e.details?.status !== undefined
      if (fromProvider) providerCode = String(e.details?.providerCode ?? e.code)
      code = fromProvider ? 'ERR_PROOF_REFUSED' : e.code
      message = e.message
      note({ deal: deal.id.toString(), outcome, code, message, ms: Date.now() - t0 })
      break
    } finally {
      clearTimeout(timer)
    }
  }

  const fields: Record<string, unknown> = { challenge: issued.cid, pieceCid: deal.proposal.pieceCid, seed, count, ms: Date.now() - started }
  if (proof !== undefined) fields.proof = { payload: proof.payload, signer: proof.signer, signature: proof.signature }
  if (code !== undefined) fields.code = code
  if (message !== undefined) fields.message = message
  if (providerCode !== undefined) fields.providerCode = providerCode
  if (outcome === 'missed') fields.attempts = attempts.length
  const { counts, settlement } = await serialByDeal(deal.id, async () => await recordResult(ctx, deal, period, outcome, fields))
  const result: AuditResult = {
    deal: deal.id.toString(),
    provider: deal.provider,
    endpoint: deal.endpoint,
    period,
    outcome,
    count,
    attempts,
    ms: Date.now() - started,
    counted: counts,
    settlement
  }
  if (code !== undefined) result.code = code
  if (message !== undefined) result.message = message
  if (auto !== undefined) result.deadline = auto
  return result
}
