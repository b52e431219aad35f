/**
 * The proof message both sides speak (docs/protocol.md, "Proof requests" and
 * "Proofs"): the provider's signed answer to a challenge `{seed, count}` for
 * a deal, its shape check, and the client's full verification of it against
 * nothing but the deal's piece CID.
 *
 * The proof is provider-signed under `cairn/proof/v2\n` (v1 without the
 * provider's ledger head, as older ledgers hold it) and echoes the challenge
 * (deal, piece, seed, count), so a verifier can tell a replayed or
 * misdirected proof from a wrong one.
 */
import type { CID } from 'multiformats/cid'
import { equals } from 'multiformats/bytes'
import { verifyPieceProof, type PieceProof } from '../../proofs/index.js'
import { CairnError, type ErrorCode } from '../errors.js'
import type { LedgerHead } from './interface.js'
import { publicKeyOf, sign, signingBytes, Tag, verifyByDid, type Signed, type Signer } from './signing.js'
import { cid, ledgerHead, record, uint } from './validate.js'
import { parseDealId } from './proposal.js'

export { MAX_CHALLENGES } from './proof-request.js'

/**
 * One challenged leaf: the 32-byte Fr32 leaf and its `height` siblings, leaf
 * level first, concatenated into one byte string (32 × height bytes) — one
 * CBOR item instead of `height`, which keeps signing and verifying the
 * message cheap (docs/performance.md: verification ≤ 2 ms).
 */
export interface LeafProofMessage {
  index: number
  leaf: Uint8Array
  path: Uint8Array
}

/** What the provider signs in answer to `{seed, count}` for a deal. */
export interface ProofPayload {
  dealId: CID
  pieceCid: CID
  seed: Uint8Array
  count: number
  /** unix seconds when the proof was made */
  at: number
  proofs: LeafProofMessage[]
  /** the provider's ledger head once it recorded the request (proof/v2); absent in v1 proofs */
  head?: LedgerHead | null
}

export type SignedProof = Signed<ProofPayload>

export interface ChallengeBody { seed: Uint8Array, count: number }

function bytes (value: unknown, label: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array) || (length !== undefined && value.length !== length)) {
    const found = value instanceof Uint8Array ? `${value.length} bytes` : typeof value
    throw new CairnError('ERR_PROOF_MALFORMED', `${label}: expected ${length ?? 'some'} bytes, found ${found}`)
  }
  return value
}

/** Checks the shape of a proof payload as it arrives (from the wire or the ledger). */
export function proofPayloadFrom (value: unknown): ProofPayload {
  let m: Record<string, unknown>
  try {
    m = record(value, 'proof', ['dealId', 'pieceCid', 'seed', 'count', 'at', 'proofs'], ['head'])
  } catch (err) {
    throw new CairnError('ERR_PROOF_MALFORMED', (err as Error).message)
  }
  let dealId: CID, pieceCid: CID, count: number, at: number
  try {
    dealId = parseDealId(m.dealId, 'proof.dealId')
    pieceCid = cid(m.pieceCid, 'proof.pieceCid')
    count = uint(m.count, 'proof.count')
    at = uint(m.at, 'proof.at')
  } catch (err) {
    throw new CairnError('ERR_PROOF_MALFORMED', (err as Error).message)
  }
  if (!Array.isArray(m.proofs)) throw new CairnError('ERR_PROOF_MALFORMED', 'proof.proofs: expected a list of leaf proofs')
  const proofs = m.proofs.map((p: unknown, k: number): LeafProofMessage => {
    const label = `proof.proofs[${k}]`
    let leaf: Record<string, unknown>
    try {
      leaf = record(p, label, ['index', 'leaf', 'path'])
    } catch (err) {
      throw new CairnError('ERR_PROOF_MALFORMED', (err as Error).message)
    }
    if (typeof leaf.index !== 'number' || !Number.isSafeInteger(leaf.index) || leaf.index < 0) throw new CairnError('ERR_PROOF_MALFORMED', `${label}.index: expected a leaf index`)
    const path = bytes(leaf.path, `${label}.path`)
    if (path.length % 32 !== 0) throw new CairnError('ERR_PROOF_MALFORMED', `${label}.path: expected 32-byte siblings, found ${path.length} bytes`)
    return { index: leaf.index, leaf: bytes(leaf.leaf, `${label}.leaf`, 32), path }
  })
  const payload: ProofPayload = { dealId, pieceCid, seed: bytes(m.seed, 'proof.seed', 32), count, at, proofs }
  if (m.head !== undefined) {
    try {
      payload.head = ledgerHead(m.head, 'proof.head')
    } catch (err) {
      throw new CairnError('ERR_PROOF_MALFORMED', (err as Error).message)
    }
  }
  return payload
}

/** The tag a proof is signed under: v2 when it carries the provider's head. */
export function proofTag (payload: Pick<ProofPayload, 'head'>): typeof Tag.proof | typeof Tag.proofV2 {
  return payload.head === undefined ? Tag.proof : Tag.proofV2
}

export function signProof (signer: Signer, payload: ProofPayload): SignedProof {
  return sign(signer, proofTag(payload), payload)
}

/** The proofs library's shape of a signed proof's leaves: each path split into its siblings. */
export function pieceProofOf (payload: ProofPayload): PieceProof {
  return {
    piece: payload.pieceCid,
    proofs: payload.proofs.map(p => {
      const path: Uint8Array[] = []
      for (let at = 0; at < p.path.length; at += 32) path.push(p.path.subarray(at, at + 32))
      return { index: p.index, leaf: p.leaf, path }
    })
  }
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
/** What a proof must answer: the deal, its piece and provider, and the challenge sent. */
export interface ProofExpectation {
  dealId: CID
  pieceCid: CID
  provider: string
  seed: Uint8Array
  count: number
  /** proof/v2 required: the provider's ledger head must be in it */
  witnessed?: boolean
}

export function verifyProofAnswer (answer: unknown, expect: ProofExpectation): SignedProof {
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
  checkProofPayload(payload, expect)
  if (expect.witnessed === true && payload.head === undefined) {
    throw new CairnError('ERR_PROOF_MALFORMED', 'the proof carries no ledger head (proof/v1); proofs must be proof/v2 (docs/protocol.md "Witnessed heads")')
  }
  return { payload, signer: expect.provider, signature }
}

/**
 * Checks an unsigned proof payload against the challenge it answers: the same
 * deal, piece, seed and count, and every leaf proof hashing to the root inside
 * the piece CID. Throws the code of the first thing wrong. `verifyProofAnswer`
 * checks a provider's signed answer with it; a cluster node checks the proof
 * another node computed for it (src/cluster/proofs.ts).
 */
export function checkProofPayload (payload: ProofPayload, expect: Omit<ProofExpectation, 'provider' | 'witnessed'>): void {
  if (!payload.dealId.equals(expect.dealId)) throw new CairnError('ERR_PROOF_WRONG_DEAL', `the proof is for deal ${String(payload.dealId)}, the challenge for ${String(expect.dealId)}`)
  if (!payload.pieceCid.equals(expect.pieceCid)) throw new CairnError('ERR_PROOF_WRONG_PIECE', `the proof is for piece ${String(payload.pieceCid)}, the deal's piece is ${String(expect.pieceCid)}`)
  if (!equals(payload.seed, expect.seed)) throw new CairnError('ERR_PROOF_SEED_MISMATCH', 'the proof answers another seed than the one sent: a replayed or old proof')
  if (payload.count !== expect.count || payload.proofs.length !== expect.count) {
    throw new CairnError('ERR_PROOF_COUNT_MISMATCH', `the proof holds ${payload.proofs.length} leaf proofs for a count of ${payload.count}; ${expect.count} leaves were challenged`)
  }
  try {
    verifyPieceProof(expect.pieceCid, { dealId: expect.dealId, seed: expect.seed, count: expect.count }, pieceProofOf(payload))
  } catch (err) {
    const code = (err as { code?: string }).code
    throw new CairnError(PROOF_CODES[code ?? ''] ?? 'ERR_PROOF_MALFORMED', (err as Error).message, { cause: err })
  }
}
