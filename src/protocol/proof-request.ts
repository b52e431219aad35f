/**
 * The client's signed proof request (docs/protocol.md "Proof requests"): only
 * the deal's client may ask its provider for a proof, for at most the deal's
 * own number of challenges, and every request carries the client's ledger head.
 * A request body that is not well formed is ERR_INVALID_ARGUMENT; one that is
 * not the client's signature is ERR_UNAUTHORIZED.
 */
import { CairnError } from '../errors.js'
import type { ProofRequest, SignedProofRequest } from './interface.js'
import { parseDealId } from './proposal.js'
import { sign, Tag, verifyByDid, signingBytes, type Signer } from './signing.js'
import { ledgerHead, record, uint } from './validate.js'

/** Most challenges any request may ask for: bounds the work one request can cause. */
export const MAX_CHALLENGES = 1024

/** How far a request's `at` may lie from the provider's clock (seconds): an old signed request is not replayed for ever. */
export const REQUEST_CLOCK_SKEW = 300

function invalid (err: unknown): CairnError {
  return new CairnError('ERR_INVALID_ARGUMENT', (err as Error).message)
}

/** Checks a proof request's payload as it arrives. */
export function proofRequestFrom (value: unknown): ProofRequest {
  let m: Record<string, unknown>
  try {
    m = record(value, 'proof request', ['dealId', 'seed', 'count', 'at', 'head'])
  } catch (err) {
    throw invalid(err)
  }
  if (!(m.seed instanceof Uint8Array) || m.seed.length !== 32) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `proof request seed must be 32 bytes, found ${m.seed instanceof Uint8Array ? `${m.seed.length} bytes` : typeof m.seed}`)
  }
  const count = m.count
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > MAX_CHALLENGES) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `proof request count must be 1…${MAX_CHALLENGES} leaves, got ${String(count)}`)
  }
  try {
    return { dealId: parseDealId(m.dealId, 'proof request dealId'), seed: m.seed, count, at: uint(m.at, 'proof request at'), head: ledgerHead(m.head, 'proof request head') }
  } catch (err) {
    throw invalid(err)
  }
}

export function signProofRequest (client: Signer, request: ProofRequest): SignedProofRequest {
  return sign(client, Tag.proofRequest, proofRequestFrom(request))
}

/**
 * A request body as the provider receives it: `{payload, signer, signature}`
 * signed by `client` (the deal's client), or a coded refusal.
 */
export function verifyProofRequest (body: unknown, client: string): SignedProofRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_ARGUMENT', 'a proof request is a signed object {payload, signer, signature}')
  const envelope = body as Record<string, unknown>
  if (envelope.signer === undefined || envelope.signature === undefined || envelope.payload === undefined) {
    throw new CairnError('ERR_UNAUTHORIZED', 'a proof request must be signed by the deal\'s client: {payload, signer, signature} (proof-request/v1)')
  }
  for (const key of Object.keys(envelope)) {
    if (key !== 'payload' && key !== 'signer' && key !== 'signature') throw new CairnError('ERR_INVALID_ARGUMENT', `proof request: unknown field ${JSON.stringify(key)}`)
  }
  const payload = proofRequestFrom(envelope.payload)
  if (envelope.signer !== client) throw new CairnError('ERR_UNAUTHORIZED', `proofs of deal ${payload.dealId.toString()} are given only to its client ${client}; the request is signed by ${String(envelope.signer)}`)
  const signature = envelope.signature
  let good = false
  try {
    good = signature instanceof Uint8Array && verifyByDid(client, signingBytes(Tag.proofRequest, payload), signature)
  } catch {}
  if (!good) throw new CairnError('ERR_UNAUTHORIZED', `the proof request's signature is not ${client}'s`)
  return { payload, signer: client, signature: signature as Uint8Array }
}
