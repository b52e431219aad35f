/**
 * Proofs of a piece answered by a cluster node that does not hold it
 * (docs/cluster.md "Proofs through any node"). The node asks a node that
 * holds the piece to compute the proof, over an internal endpoint only the
 * cluster's nodes can use (src/cluster/auth.ts):
 *
 *   GET /internal/v1/proofs/{pieceCid}?deal={dealId}&seed={64 hex}&count={n}   (signed headers)
 *
 * The holder answers with the unsigned proof payload (DAG-JSON, as the public
 * proof route's payload), and the asking node checks every leaf proof against
 * the root inside the piece CID before it signs and answers: a holder's word
 * is never passed on unchecked (`ERR_CLUSTER_BAD_PROOF` when it does not hold).
 *
 * Why forward the challenge rather than read the challenged leaves from the
 * holder: a proof needs, besides the leaves, the upper siblings of each path,
 * which come from the piece's layer cache (proofs/prove.ts). Only the holder
 * has that cache; the asker would have to read the whole piece once to build
 * one — the copy this avoids — or fetch cache nodes over a second protocol.
 * Forwarding costs one round trip and a few KiB, the holder's proof is its
 * usual warm one, and checking it here is cheap (`count × height` hashes).
 */
import * as dagJson from '@ipld/dag-json'
import type { Dispatcher } from 'undici'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { readBounded } from '../http/body.js'
import { networkError, providerError } from '../http/errors.js'
import { sendJSON, type Handler } from '../http/server.js'
import { request } from '../lazy/undici.js'
import { checkProofPayload, MAX_CHALLENGES, proofPayloadFrom, type LeafProofMessage, type ProofPayload } from '../protocol/proof.js'
import { parseDealId } from '../protocol/proposal.js'
import { signClusterRequest, type ClusterAuth } from './auth.js'

/** Where a node mounts the endpoint on its listener. */
export const INTERNAL_PROOF_ROUTE = '/internal/v1/proofs/:pieceCid'

/** A challenge of a deal's piece: the deal's id, 32 bytes of seed, and how many leaves. */
export interface PieceChallenge { dealId: CID, seed: Uint8Array, count: number }

/** Largest answer taken: MAX_CHALLENGES leaves with 50-sibling paths, as DAG-JSON's base64, with room to spare. */
const MAX_ANSWER_BYTES = 8 << 20

export interface ProofHolder {
  /** whether this node's store holds the piece */
  has: (piece: string) => Promise<boolean>
  /** the unsigned proof of a piece this node holds (src/provider/proofs.ts `proveChallenge`) */
  prove: (pieceCid: CID, challenge: PieceChallenge) => Promise<ProofPayload>
}

function challengeFrom (url: URL): PieceChallenge {
  const dealId = parseDealId(url.searchParams.get('deal') ?? '', 'deal')
  const seedHex = url.searchParams.get('seed') ?? ''
  if (!/^[0-9a-f]{64}$/.test(seedHex)) throw new CairnError('ERR_INVALID_ARGUMENT', 'seed: expected 32 bytes as 64 lower-case hex characters')
  const countText = url.searchParams.get('count') ?? ''
  const count = /^\d{1,5}$/.test(countText) ? Number(countText) : NaN
  if (!(count >= 1 && count <= MAX_CHALLENGES)) throw new CairnError('ERR_INVALID_ARGUMENT', `count: expected 1 to ${MAX_CHALLENGES} challenges, got ${JSON.stringify(countText.slice(0, 20))}`)
  return { dealId, seed: new Uint8Array(Buffer.from(seedHex, 'hex')), count }
}

/**
 * The endpoint's handler: the request's signature checked first (nothing
 * about the piece is told to an unauthenticated caller), then the challenge,
 * then the proof from this node's copy — for any piece its store holds,
 * whatever its deal's state, as the internal piece endpoint does.
 */
export function internalProofHandler (options: { auth: ClusterAuth, holder: ProofHolder }): Handler {
  return async (ctx) => {
    options.auth.verify({ method: ctx.req.method ?? 'GET', path: ctx.req.url ?? '' }, ctx.req.headers)
    let pieceCid: CID
    try {
      pieceCid = CID.parse(ctx.params.pieceCid ?? '')
    } catch {
      throw new CairnError('ERR_INVALID_CID', `not a piece CID: ${JSON.stringify((ctx.params.pieceCid ?? '').slice(0, 100))}`)
    }
    const challenge = challengeFrom(ctx.url)
    if (!await options.holder.has(pieceCid.toString())) throw new CairnError('ERR_PIECE_NOT_FOUND', `this node does not hold piece ${pieceCid.toString()}`)
    sendJSON(ctx.res, 200, await options.holder.prove(pieceCid, challenge), { 'Cache-Control': 'no-store' })
  }
}

export interface RemoteProofOptions {
  /** the cluster's secret and this node's name, which sign the request */
  secret: Uint8Array
  node: string
  signal?: AbortSignal
  /** time to connect and get the headers, and longest silence in the body, ms (default 30 s each) */
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
  dispatcher?: Dispatcher
}

/**
 * The leaf proofs of `challenge` for `pieceCid`, computed by the node at
 * `nodeUrl` and checked here against the piece CID: ERR_CLUSTER_BAD_PROOF
 * when they do not verify (the cause carries the first thing wrong); the
 * holder's own code when it refuses (ERR_PIECE_NOT_FOUND, ERR_PIECE_CORRUPT,
 * ERR_CLUSTER_AUTH); ERR_UNREACHABLE or ERR_TIMEOUT when it does not answer.
 */
export async function readRemoteProof (nodeUrl: string, pieceCid: CID, challenge: PieceChallenge, options: RemoteProofOptions): Promise<LeafProofMessage[]> {
  const base = nodeUrl.replace(/\/+$/, '')
  const path = `/internal/v1/proofs/${pieceCid.toString()}?deal=${challenge.dealId.toString()}&seed=${Buffer.from(challenge.seed).toString('hex')}&count=${challenge.count}`
  const peer = `node ${base}`
  let body: Uint8Array
  try {
    const res = await request(base + path, {
      method: 'GET',
      headers: { ...signClusterRequest(options.secret, options.node, { method: 'GET', path }), accept: 'application/json' },
      signal: options.signal,
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      bodyTimeout: options.bodyTimeoutMs ?? 30_000,
      dispatcher: options.dispatcher
    })
    if (res.statusCode !== 200) throw providerError(base, res.statusCode, await res.body.text().catch(() => ''))
    body = await readBounded(res.body, {
      limit: MAX_ANSWER_BYTES,
      declared: res.headers['content-length'] as string | undefined,
      tooLarge: () => new CairnError('ERR_CLUSTER_BAD_PROOF', `${peer} answered a proof of ${challenge.count} challenges with more than ${MAX_ANSWER_BYTES} bytes`)
    }).catch((err: unknown) => { res.body.destroy(); throw err })
  } catch (err) {
    throw networkError(err, peer)
  }
  try {
    const payload = proofPayloadFrom(dagJson.decode(body))
    checkProofPayload(payload, { pieceCid, ...challenge })
    return payload.proofs
  } catch (err) {
    throw new CairnError('ERR_CLUSTER_BAD_PROOF', `${peer} answered a proof of ${pieceCid.toString()} that does not verify: ${(err as Error).message}`, {
      cause: err,
      details: { node: base, reason: (err as { code?: string }).code ?? 'ERR_PROOF_MALFORMED' }
    })
  }
}
