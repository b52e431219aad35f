/**
 * Auditing a provider (SPEC §4): challenge it with a fresh random seed, verify
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
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { request, undici } from '../lazy/undici.js'
import { verifyPieceProof } from '../../proofs/index.js'
import { CairnError, codes, isCairnError, type ErrorCode } from '../errors.js'
import type { Proposal, SignedProofRequest } from '../deal/interface.js'
import { signProofRequest } from '../deal/proof-request.js'
import { parseDealId, proposalFrom } from '../deal/proposal.js'
import { verifyByDid, signingBytes, publicKeyOf, type Signer } from '../deal/signing.js'
import type { Ledger, LedgerEntry } from '../ledger/interface.js'
import type { Database } from '../repo/repo.js'
import { pieceProofOf, proofPayloadFrom, proofTag, type SignedProof } from '../provider/proofs.js'
import { expireIfEnded, periodOf, recordResult, serialByDeal, type ProofOutcome, type Settlement } from './accounting.js'

export const DEFAULT_CHALLENGE_TIMEOUT_MS = 30_000

/** Largest proof answer read: 1024 leaves of a 2^50-leaf tree in DAG-JSON stay well below it. */
const MAX_PROOF_BYTES = 8 << 20

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

/** Sends a challenge to a provider and returns the decoded (unverified) answer. */
export type ProofTransport = (deal: AuditDeal, challenge: Challenge, signal: AbortSignal) => Promise<unknown>

export interface AuditOptions {
  /** challenges per proof; the deal's term when unset */
  challenges?: number
  /** the deadline: ms from the challenge to a received proof */
  timeoutMs?: number
  /** re-sends to an unreachable provider before it counts as a miss */
  retries?: number
  /** first wait before a re-send, doubled each time */
  backoffMs?: number
  /** unix seconds, for the period */
  now?: () => number
  /** the proving period this audit answers for (default: the one `now` falls in) */
  period?: number
  transport?: ProofTransport
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
  settlement?: Settlement
}

export interface AuditContext {
  ledger: Ledger
  db: Database
  /** the client's key: proof requests are signed with it */
  signer: Signer
}

/** The deal's terms and endpoint from its `deal-proposed` entry, and its state. */
export async function loadDeal (ledger: Ledger, id: CID | string): Promise<AuditDeal> {
  const dealId = parseDealId(id)
  const record = await ledger.deal(dealId)
  if (record === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId.toString()} in this ledger`)
  let proposal: Proposal | undefined
  let endpoint: string | undefined
  for await (const entry of ledger.log({ deal: dealId })) {
    if (typeof entry.fields.endpoint === 'string' && endpoint === undefined) endpoint = entry.fields.endpoint
    if (entry.kind === 'deal-proposed' || entry.kind === 'deal-accepted') {
      const signed = entry.fields.proposal as { payload?: unknown } | undefined
      if (signed?.payload !== undefined && proposal === undefined) proposal = proposalFrom(signed.payload)
    }
  }
  if (proposal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no recorded proposal in this ledger`)
  if (endpoint === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `deal ${dealId.toString()} has no recorded provider endpoint`)
  return { id: dealId, provider: proposal.provider, endpoint, proposal, state: record.state }
}

/** Every deal of this ledger that is active now, oldest first. */
export async function activeDeals (ledger: Ledger): Promise<AuditDeal[]> {
  const ids: string[] = []
  for await (const entry of ledger.log({ kind: 'deal-active' })) {
    const id = String(entry.fields.deal)
    if (!ids.includes(id)) ids.push(id)
  }
  const out: AuditDeal[] = []
  for (const id of ids.reverse()) {
    const record = await ledger.deal(id)
    if (record?.state === 'active') out.push(await loadDeal(ledger, id))
  }
  return out
}

/** POST /v1/deals/{id}/proofs over undici; network failures are ERR_UNREACHABLE, the deadline ERR_TIMEOUT. */
export const httpTransport: ProofTransport = async (deal, challenge, signal) => {
  const url = `${deal.endpoint.replace(/\/+$/, '')}/v1/deals/${deal.id.toString()}/proofs`
  let res
  try {
    res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: dagJson.encode(challenge.request),
      signal
    })
  } catch (err) {
    throw networkError(deal.endpoint, err, signal)
  }
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length
      if (size > MAX_PROOF_BYTES) {
        res.body.destroy()
        throw new CairnError('ERR_PROOF_MALFORMED', `provider ${deal.endpoint} sent more than ${MAX_PROOF_BYTES} bytes for a proof`)
      }
      chunks.push(chunk)
    }
  } catch (err) {
    if (err instanceof CairnError) throw err
    throw networkError(deal.endpoint, err, signal)
  }
  const body = new Uint8Array(Buffer.concat(chunks))
  if (res.statusCode < 200 || res.statusCode >= 300) throw answeredError(deal.endpoint, res.statusCode, body)
  try {
    return dagJson.decode(body)
  } catch (err) {
    throw new CairnError('ERR_PROOF_MALFORMED', `provider ${deal.endpoint} answered with something that is not DAG-JSON: ${(err as Error).message}`)
  }
}

function networkError (endpoint: string, err: unknown, signal: AbortSignal): CairnError {
  if (signal.aborted) return new CairnError('ERR_TIMEOUT', `provider ${endpoint} did not answer the challenge before its deadline`, { cause: err })
  const e = err as { code?: string, cause?: { code?: string }, message?: string }
  const code = e.code ?? e.cause?.code ?? 'error'
  return new CairnError('ERR_UNREACHABLE', `cannot reach provider ${endpoint}: ${code}`, { cause: err })
}

/** A provider's coded error answer; `status` in details marks that it did answer. */
function answeredError (endpoint: string, status: number, body: Uint8Array): CairnError {
  let parsed: { error?: { code?: unknown, message?: unknown } } | undefined
  try { parsed = JSON.parse(new TextDecoder().decode(body)) } catch {}
  const code = typeof parsed?.error?.code === 'string' ? parsed.error.code : `HTTP_${status}`
  const message = typeof parsed?.error?.message === 'string' ? parsed.error.message : `HTTP ${status}`
  const known: ErrorCode = Object.hasOwn(codes, code) ? code as ErrorCode : 'ERR_PROOF_REFUSED'
  return new CairnError(known, `provider ${endpoint} answered ${code}: ${message}`, { details: { status, providerCode: code } })
}

/** Whether an error means "no answer yet, try again" rather than an answer. */
function isUnreachable (err: unknown): boolean {
  if (!isCairnError(err)) return false
  if (err.code === 'ERR_UNREACHABLE' && err.details?.status === undefined) return true
  // a provider shutting down, overloaded or rate-limiting did not answer the challenge
  return err.details?.status === 503 || err.details?.status === 429
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

const PROOF_CODES: Record<string, ErrorCode> = {
  ERR_PROOF_PIECE_MISMATCH: 'ERR_PROOF_WRONG_PIECE',
  ERR_INVALID_PIECE_CID: 'ERR_PROOF_WRONG_PIECE',
  ERR_PROOF_LEAF_INDEX: 'ERR_PROOF_LEAF_INDEX',
  ERR_PROOF_ROOT_MISMATCH: 'ERR_PROOF_ROOT_MISMATCH',
  ERR_PROOF_MALFORMED: 'ERR_PROOF_MALFORMED'
}

/**
 * Verifies a provider's answer to `challenge` for a deal of `pieceCid` with
 * `provider`. Returns the checked signed proof or throws a CairnError whose
 * code names the first thing wrong.
 */
export function verifyProofAnswer (answer: unknown, expect: { dealId: CID, pieceCid: CID, provider: string, seed: Uint8Array, count: number, witnessed?: boolean }): SignedProof {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) throw new CairnError('ERR_PROOF_MALFORMED', 'a proof answer must be a signed object {payload, signer, signature}')
  const envelope = answer as Record<string, unknown>
  if (envelope.payload === undefined) throw new CairnError('ERR_PROOF_MALFORMED', 'the proof answer has no payload')
  if (envelope.signature === undefined || envelope.signer === undefined) throw new CairnError('ERR_PROOF_UNSIGNED', 'the proof is not signed (no signer or no signature)')
  for (const key of Object.keys(envelope)) {
    if (key !== 'payload' && key !== 'signer' && key !== 'signature') throw new CairnError('ERR_PROOF_MALFORMED', `unknown field ${JSON.stringify(key)} in the proof answer`)
  }
  if (envelope.signer !== expect.provider) throw new CairnError('ERR_PROOF_WRONG_SIGNER', `the proof must be signed by the deal's provider ${expect.provider}, but is signed by ${String(envelope.signer)}`)
  const signature = envelope.signature
  if (!(signature instanceof Uint8Array) || signature.length !== 64) throw new CairnError('ERR_PROOF_BAD_SIGNATURE', 'the proof signature must be 64 bytes of Ed25519')
  publicKeyOf(expect.provider, 'provider')
  const payload = proofPayloadFrom(envelope.payload)
  let good = false
  try {
    good = verifyByDid(expect.provider, signingBytes(proofTag(payload), envelope.payload), signature)
  } catch {}
  if (!good) throw new CairnError('ERR_PROOF_BAD_SIGNATURE', `the proof signature does not verify for ${expect.provider}`)
  if (!payload.dealId.equals(expect.dealId)) throw new CairnError('ERR_PROOF_WRONG_DEAL', `the proof is for deal ${String(payload.dealId)}, the challenge for ${String(expect.dealId)}`)
  if (!payload.pieceCid.equals(expect.pieceCid)) throw new CairnError('ERR_PROOF_WRONG_PIECE', `the proof is for piece ${String(payload.pieceCid)}, the deal's piece is ${String(expect.pieceCid)}`)
  if (!equalBytes(payload.seed, expect.seed)) throw new CairnError('ERR_PROOF_SEED_MISMATCH', 'the proof answers another seed than the one sent: a replayed or old proof')
  if (payload.count !== expect.count || payload.proofs.length !== expect.count) {
    throw new CairnError('ERR_PROOF_COUNT_MISMATCH', `the proof holds ${payload.proofs.length} leaf proofs for a count of ${payload.count}; ${expect.count} leaves were challenged`)
  }
  try {
    verifyPieceProof(expect.pieceCid, { dealId: expect.dealId, seed: expect.seed, count: expect.count }, pieceProofOf(payload))
  } catch (err) {
    const code = (err as { code?: string }).code
    throw new CairnError(PROOF_CODES[code ?? ''] ?? 'ERR_PROOF_MALFORMED', (err as Error).message, { cause: err })
  }
  if (expect.witnessed === true && payload.head === undefined) {
    throw new CairnError('ERR_PROOF_MALFORMED', 'the proof carries no ledger head (proof/v1); proofs must be proof/v2 (docs/protocol.md "Witnessed heads")')
  }
  return { payload, signer: expect.provider, signature }
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
 * and the result (and settles the period, SPEC §5) in the ledger.
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
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHALLENGE_TIMEOUT_MS
  const retries = options.retries ?? 3
  const transport = options.transport ?? httpTransport
  const period = options.period ?? periodOf(deal.proposal, now())
  const seed = options.seed?.() ?? new Uint8Array(randomBytes(32))
  if (seed.length !== 32) throw new TypeError(`a challenge seed is 32 bytes, got ${seed.length}`)
  // undici is loaded before the clock starts: its import is no part of the provider's time
  if (transport === httpTransport) await undici()
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
      message = `no proof within the ${timeoutMs} ms deadline`
      break
    }
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), remaining)
    try {
      const answer = await transport(deal, challenge, controller.signal)
      if (controller.signal.aborted) throw new CairnError('ERR_TIMEOUT', 'the proof arrived after its deadline')
      proof = verifyProofAnswer(answer, { dealId: deal.id, pieceCid: deal.proposal.pieceCid, provider: deal.provider, seed, count, witnessed: true })
      outcome = 'passed'
      note({ deal: deal.id.toString(), outcome, ms: Date.now() - t0 })
      break
    } catch (err) {
      const e = isCairnError(err) ? err : new CairnError('ERR_INTERNAL', (err as Error)?.message ?? String(err), { cause: err })
      if (e.code === 'ERR_TIMEOUT' || controller.signal.aborted) {
        outcome = 'missed'
        code = 'ERR_PROOF_MISSED'
        message = `no proof within the ${timeoutMs} ms deadline`
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
  return result
}
