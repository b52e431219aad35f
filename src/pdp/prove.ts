/**
 * Answering a challenge on a PDP data set (docs/pdp.md "Proving data sets"):
 * the challenged leaves drawn as PDPVerifier draws them (proofs/pdp-challenge.ts)
 * over the data set's pieces in id order, each answered with its sha2-256-trunc254
 * Merkle path inside its piece, from the PDP piece store's layer caches. On a
 * chain this is `provePossession`; here a client asks for it over HTTP and
 * checks the answer with `verifyDataSetProof`.
 */
import { parsePieceCid, pdpChallenges, pdpLeafCount, verifyLeafProof, type LeafProof } from '../../proofs/index.js'
import { CairnError } from '../errors.js'
import { MAX_CHALLENGES } from '../protocol/proof-request.js'
import type { PieceProver } from '../provider/proofs.js'
import type { DataSetPiece } from './datasets.js'

export interface DataSetLeafProof {
  /** challenge index (0, 1, …) */
  challenge: number
  pieceId: number
  pieceCid: string
  /** leaf index inside the piece */
  leaf: number
  /** the 32-byte leaf, 0x hex */
  data: string
  /** siblings from the leaf's level up, 0x hex each */
  path: string[]
}

export interface DataSetProof {
  dataSetId: number
  /** 0x and 64 hex digits: the uint256 seed */
  seed: string
  leafCount: string
  proofs: DataSetLeafProof[]
}

const hex = (bytes: Uint8Array): string => '0x' + Buffer.from(bytes).toString('hex')

function bytesOf (value: unknown, label: string): Uint8Array {
  if (typeof value !== 'string' || !/^0x([0-9a-fA-F]{64})$/.test(value)) throw new CairnError('ERR_PROOF_MALFORMED', `${label} must be 0x and 64 hex digits`)
  return Uint8Array.from(Buffer.from(value.slice(2), 'hex'))
}

/** The seed and count of a challenge request, checked. */
export function challengeOf (body: unknown): { seed: Uint8Array, count: number } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_JSON', 'expected a JSON object {seed, challenges}')
  const { seed, challenges } = body as { seed?: unknown, challenges?: unknown }
  if (typeof seed !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(seed)) throw new CairnError('ERR_INVALID_ARGUMENT', 'seed must be 0x and 64 hex digits (a uint256)')
  if (typeof challenges !== 'number' || !Number.isSafeInteger(challenges) || challenges < 1 || challenges > MAX_CHALLENGES) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `challenges must be 1…${MAX_CHALLENGES}, got ${String(challenges)}`)
  }
  return { seed: Uint8Array.from(Buffer.from(seed.slice(2), 'hex')), count: challenges }
}

function leafCountsOf (pieces: readonly DataSetPiece[]): bigint[] {
  return pieces.map((p) => p.removed === undefined ? BigInt(p.leaves) : 0n)
}

/**
 * The leaf proofs of the given leaves of a piece this node's store lacks,
 * from elsewhere (on a cluster, a node that holds it, checked against the
 * piece CID: src/cluster/work.ts `proveLeaves`); undefined off a cluster.
 */
export type RemoteLeaves = (pieceCid: string, leaves: readonly number[]) => Promise<LeafProof[] | undefined>

/**
 * Proves `count` challenges of `seed` on a data set whose pieces (in id order)
 * are `pieces`. The challenged leaves are grouped by piece: those of a piece
 * in this node's store are proven from it; those of a piece it lacks are
 * asked of `remote` (nothing is copied), and a piece still unanswered is
 * ERR_PIECE_CORRUPT, from the prover.
 */
export async function proveDataSet (prover: PieceProver, dataSetId: number, pieces: readonly DataSetPiece[], challenge: { seed: Uint8Array, count: number }, remote: RemoteLeaves = async () => undefined): Promise<DataSetProof> {
  const counts = leafCountsOf(pieces)
  const total = counts.reduce((a, b) => a + b, 0n)
  if (total === 0n) throw new CairnError('ERR_DATA_SET_PIECE_NOT_FOUND', `data set ${dataSetId} has no live pieces to prove`)
  const drawn = pdpChallenges({ seed: challenge.seed, dataSetId: BigInt(dataSetId), count: challenge.count }, counts)
  // challenge numbers per piece, in draw order
  const byPiece = new Map<number, number[]>()
  drawn.forEach((c, i) => {
    const list = byPiece.get(c.pieceId)
    if (list === undefined) byPiece.set(c.pieceId, [i])
    else list.push(i)
  })
  const answers: LeafProof[] = new Array(drawn.length)
  for (const [pieceId, challenges] of byPiece) {
    const pieceCid = (pieces[pieceId] as DataSetPiece).pieceCid
    const leaves = challenges.map((i) => Number((drawn[i] as { offset: bigint }).offset))
    const proven = (await prover.store.has(pieceCid) ? undefined : await remote(pieceCid, leaves)) ?? await prover.proveLeaves(pieceCid, leaves)
    challenges.forEach((i, k) => { answers[i] = proven[k] as LeafProof })
  }
  const proofs = drawn.map((c, i): DataSetLeafProof => {
    const piece = pieces[c.pieceId] as DataSetPiece
    const proof = answers[i] as LeafProof
    return { challenge: i, pieceId: c.pieceId, pieceCid: piece.pieceCid, leaf: proof.index, data: hex(proof.leaf), path: proof.path.map(hex) }
  })
  return { dataSetId, seed: hex(challenge.seed), leafCount: total.toString(), proofs }
}

/**
 * Checks a data set's proof with nothing but its pieces (ids, piece CIDs,
 * removed or not) and the challenge: the same leaves must be drawn, each leaf
 * and path must hash to its piece's root. Throws ERR_PROOF_MALFORMED for a
 * proof of another shape, the proofs library's code otherwise
 * (ERR_PROOF_LEAF_INDEX, ERR_PROOF_ROOT_MISMATCH, …).
 */
export function verifyDataSetProof (dataSetId: number, pieces: ReadonlyArray<{ pieceId: number, pieceCid: string, removed?: unknown }>, challenge: { seed: Uint8Array, count: number }, proof: DataSetProof): void {
  const counts = pieces.map((p, i) => {
    if (p.pieceId !== i) throw new CairnError('ERR_PROOF_MALFORMED', `piece ids must run 0, 1, …; found ${p.pieceId} at position ${i}`)
    if (p.removed !== undefined && p.removed !== null) return 0n
    const link = parsePieceCid(p.pieceCid)
    return pdpLeafCount(link.height, link.padding)
  })
  const drawn = pdpChallenges({ seed: challenge.seed, dataSetId: BigInt(dataSetId), count: challenge.count }, counts)
  if (!Array.isArray(proof?.proofs) || proof.proofs.length !== drawn.length) throw new CairnError('ERR_PROOF_MALFORMED', `the proof answers ${proof?.proofs?.length} challenges, ${drawn.length} were asked`)
  drawn.forEach((c, i) => {
    const answer = proof.proofs[i] as DataSetLeafProof
    const piece = pieces[c.pieceId] as { pieceCid: string }
    if (answer.pieceId !== c.pieceId || answer.pieceCid !== piece.pieceCid) {
      throw new CairnError('ERR_PROOF_MALFORMED', `challenge ${i} falls in piece ${c.pieceId} (${piece.pieceCid}); the proof answers piece ${answer.pieceId} (${answer.pieceCid})`)
    }
    if (!Array.isArray(answer.path)) throw new CairnError('ERR_PROOF_MALFORMED', `challenge ${i}: path must be a list`)
    verifyLeafProof(piece.pieceCid, Number(c.offset), {
      index: answer.leaf,
      leaf: bytesOf(answer.data, `challenge ${i} data`),
      path: answer.path.map((p, k) => bytesOf(p, `challenge ${i} path[${k}]`))
    }, `challenge ${i}`)
  })
}
