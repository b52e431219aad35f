/**
 * Proofs of a piece answered by a cluster node that does not hold it
 * (docs/cluster.md "Proofs through any node"). The node asks a node that
 * holds the piece to compute the proof, over an internal endpoint only the
 * cluster's nodes can use (src/cluster/auth.ts):
 *
 *   GET /internal/v1/proofs/{pieceCid}?deal={dealId}&seed={64 hex}&count={n}   (signed headers)
 *   GET /internal/v1/proofs/{pieceCid}?leaves={i},{j},…                        (signed headers)
 *
 * The first answers a deal's challenge with the unsigned proof payload
 * (DAG-JSON, as the public proof route's payload); the second, for a PDP data
 * set's proof (src/pdp/prove.ts), the leaf and its Merkle path for each of the
 * given leaf indices of a piece (v2 piece CID), as `{proofs: [{index, leaf,
 * path}]}`. Either way the asking node checks every leaf proof against the
 * root inside the piece CID before it uses it: a holder's word is never passed
 * on unchecked (`ERR_CLUSTER_BAD_PROOF` when it does not hold).
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
import { parsePieceCid, verifyLeafProof, type LeafProof } from '../../proofs/index.js'
import { checkProofPayload, MAX_CHALLENGES, proofPayloadFrom, type LeafProofMessage, type ProofPayload } from '../protocol/proof.js'
import { record } from '../protocol/validate.js'
import { parseDealId } from '../protocol/proposal.js'
import { signClusterRequest, type ClusterAuth } from './auth.js'

/** Where a node mounts the endpoint on its listener. */
export const INTERNAL_PROOF_ROUTE = '/internal/v1/proofs/:pieceCid'

/** A challenge of a deal's piece: the deal's id, 32 bytes of seed, and how many leaves. */
export interface PieceChallenge { dealId: CID, seed: Uint8Array, count: number }

/**
 * Most leaves asked of a holder in one request: 256 indices of up to 11
 * characters keep the request line near 3 KiB, well inside Node's 16 KiB
 * header limit; a data-set proof with more leaves in one piece asks in turns
 * (src/cluster/work.ts `proveLeaves`).
 */
export const MAX_LEAVES_PER_REQUEST = 256

/** Largest answer taken: MAX_CHALLENGES leaves with 50-sibling paths, as DAG-JSON's base64, with room to spare. */
const MAX_ANSWER_BYTES = 8 << 20

export interface ProofHolder {
  /** whether this node's store holds the piece */
  has: (piece: string) => Promise<boolean>
  /** the unsigned proof of a piece this node holds (src/provider/proofs.ts `proveChallenge`) */
  prove: (pieceCid: CID, challenge: PieceChallenge) => Promise<ProofPayload>
  /** the leaf proofs of the given leaves of a piece this node holds (src/provider/proofs.ts `PieceProver.proveLeaves`) */
  proveLeaves: (pieceCid: string, leaves: readonly number[]) => Promise<LeafProof[]>
}

/** `leaves=i,j,…`: 1 to MAX_LEAVES_PER_REQUEST indices inside the tree of `pieceCid`, a v2 piece CID (its height bounds them). */
function leavesFrom (text: string, pieceCid: CID): number[] {
  let height: number
  try {
    height = parsePieceCid(pieceCid).height
  } catch (err) {
    throw new CairnError('ERR_INVALID_CID', `leaves are asked of a v2 piece CID: ${(err as Error).message}`)
  }
  const parts = text.split(',')
  if (parts.length > MAX_LEAVES_PER_REQUEST) throw new CairnError('ERR_INVALID_ARGUMENT', `leaves: at most ${MAX_LEAVES_PER_REQUEST} per request, got ${parts.length}`)
  return parts.map((part) => {
    const index = /^\d{1,15}$/.test(part) ? Number(part) : NaN
    if (!(index < 2 ** height)) throw new CairnError('ERR_INVALID_ARGUMENT', `leaves: expected leaf indices below 2^${height}, got ${JSON.stringify(part.slice(0, 20))}`)
    return index
  })
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
    const leavesText = ctx.url.searchParams.get('leaves')
    const leaves = leavesText === null ? undefined : leavesFrom(leavesText, pieceCid)
    const challenge = leaves === undefined ? challengeFrom(ctx.url) : undefined
    if (!await options.holder.has(pieceCid.toString())) throw new CairnError('ERR_PIECE_NOT_FOUND', `this node does not hold piece ${pieceCid.toString()}`)
    const answer = challenge !== undefined
      ? await options.holder.prove(pieceCid, challenge)
      : { proofs: (await options.holder.proveLeaves(pieceCid.toString(), leaves ?? [])).map(messageOf) }
    sendJSON(ctx.res, 200, answer, { 'Cache-Control': 'no-store' })
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

/** A leaf proof as it travels: its siblings joined into one byte string (src/protocol/proof.ts). */
function messageOf (p: LeafProof): LeafProofMessage {
  const path = new Uint8Array(32 * p.path.length)
  p.path.forEach((sibling, k) => { path.set(sibling, 32 * k) })
  return { index: p.index, leaf: p.leaf, path }
}

/**
 * Asks the node at `nodeUrl` for `query` of `pieceCid` on the internal
 * endpoint and hands the decoded answer to `check`, whose every failure is
 * ERR_CLUSTER_BAD_PROOF (the cause carries the first thing wrong); the
 * holder's own code when it refuses (ERR_PIECE_NOT_FOUND, ERR_PIECE_CORRUPT,
 * ERR_CLUSTER_AUTH, ERR_INVALID_ARGUMENT); ERR_UNREACHABLE or ERR_TIMEOUT
 * when it does not answer.
 */
async function askHolder<T> (nodeUrl: string, pieceCid: CID, query: string, options: RemoteProofOptions, check: (answer: unknown) => T): Promise<T> {
  const base = nodeUrl.replace(/\/+$/, '')
  const path = `/internal/v1/proofs/${pieceCid.toString()}?${query}`
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
      tooLarge: () => new CairnError('ERR_CLUSTER_BAD_PROOF', `${peer} answered a proof of ${pieceCid.toString()} with more than ${MAX_ANSWER_BYTES} bytes`)
    }).catch((err: unknown) => { res.body.destroy(); throw err })
  } catch (err) {
    throw networkError(err, peer)
  }
  try {
    return check(dagJson.decode(body))
  } catch (err) {
    throw new CairnError('ERR_CLUSTER_BAD_PROOF', `${peer} answered a proof of ${pieceCid.toString()} that does not verify: ${(err as Error).message}`, {
      cause: err,
      details: { node: base, reason: (err as { code?: string }).code ?? 'ERR_PROOF_MALFORMED' }
    })
  }
}

/**
 * The leaf proofs of a deal's `challenge` for `pieceCid`, computed by the
 * node at `nodeUrl` and checked here against the piece CID; fails as
 * `askHolder` does.
 */
export async function readRemoteProof (nodeUrl: string, pieceCid: CID, challenge: PieceChallenge, options: RemoteProofOptions): Promise<LeafProofMessage[]> {
  const query = `deal=${challenge.dealId.toString()}&seed=${Buffer.from(challenge.seed).toString('hex')}&count=${challenge.count}`
  return await askHolder(nodeUrl, pieceCid, query, options, (answer) => {
    const payload = proofPayloadFrom(answer)
    checkProofPayload(payload, { pieceCid, ...challenge })
    return payload.proofs
  })
}

/**
 * The leaf proofs of the given leaves of `pieceCid` (a v2 piece CID; at most
 * MAX_LEAVES_PER_REQUEST), computed by the node at `nodeUrl` and each checked
 * here to be that leaf's and to hash to the root inside the piece CID; fails
 * as `askHolder` does.
 */
export async function readRemoteLeaves (nodeUrl: string, pieceCid: CID, leaves: readonly number[], options: RemoteProofOptions): Promise<LeafProof[]> {
  return await askHolder(nodeUrl, pieceCid, `leaves=${leaves.join(',')}`, options, (answer) => {
    const { proofs } = record(answer, 'answer', ['proofs'])
    if (!Array.isArray(proofs) || proofs.length !== leaves.length) throw new CairnError('ERR_PROOF_MALFORMED', `expected ${leaves.length} leaf proofs, found ${Array.isArray(proofs) ? proofs.length : typeof proofs}`)
    return proofs.map((item: unknown, k) => {
      const label = `leaf proof ${k}`
      const { index, leaf, path } = record(item, label, ['index', 'leaf', 'path'])
      if (!(path instanceof Uint8Array) || path.length % 32 !== 0) throw new CairnError('ERR_PROOF_MALFORMED', `${label}: path must be 32-byte siblings joined`)
      const proof: LeafProof = { index: index as number, leaf: leaf as Uint8Array, path: [] }
      for (let at = 0; at < path.length; at += 32) proof.path.push(path.subarray(at, at + 32))
      // the index asked, the leaf's shape, the path's length and the root: all checked here
      verifyLeafProof(pieceCid, leaves[k] as number, proof, label)
      return proof
    })
  })
}
