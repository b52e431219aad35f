/**
 * A real provider for interop tests: a repo (LevelDB ledger, piece store)
 * behind createProviderServer on 127.0.0.1:0, holding content only under
 * deals made the way clients make them (signed proposal, signed upload).
 * DAGs come from the reference importer (ipfs-unixfs-importer) and the piece
 * is their CARv1 in DFS first-seen order (the unixfs-v1-2025 profile, IPIP-499).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import type { ImportCandidate } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'
import { pieceOf } from '../../proofs/index.js'
import { signProposal } from '../../src/protocol/proposal.js'
import { uploadAuthorization } from '../../src/protocol/auth.js'
import { ProviderDeals } from '../../src/provider/deals.js'
import type { HttpService } from '../../src/provider/server.js'
import { startProviderNode, type ProviderNodeOptions } from '../../src/provider/node.js'
import { generateSecretKey, identityFromSecret, type Identity } from '../../src/repo/identity.js'
import { announceProvider, type AnnounceOptions } from '../../src/routing/announce-provider.js'
import type { Announcer } from '../../src/routing/announcer.js'
import { Repo } from '../../src/repo/repo.js'
import { dfsPiece, importInto, MemoryBlocks, testTerms, type ImportShape } from '../provider/fixtures.js'

export const MiB = 1024 * 1024

export interface Payload {
  root: CID
  /** The piece payload: a CARv1 of the DAG in DFS first-seen order. */
  car: Uint8Array
  blocks: MemoryBlocks
  /** Block CIDs in DFS first-seen order. */
  order: string[]
}

/** Imports `candidates` with the reference importer and writes the DFS CAR a deal uploads. */
export async function payload (candidates: ImportCandidate[], shape: ImportShape = {}, wrap = false): Promise<Payload> {
  const blocks = new MemoryBlocks()
  const root = await importInto(blocks, candidates, shape, wrap)
  const { car, order } = await dfsPiece(root, blocks)
  return { root, car, blocks, order }
}

export interface World {
  url: string
  service: HttpService
  node: ProviderDeals
  announcer: Announcer | undefined
  repo: Repo
  /** Stores `p` under an active deal; resolves to the deal id. */
  deal (p: Payload): Promise<string>
  close (): Promise<void>
}

/**
 * Stores `p` at the provider at `url` (did `provider`) under an active deal
 * made as a client makes one: a signed proposal, then the signed upload.
 * Resolves to the deal id.
 */
export async function storeUnderDeal (url: string, provider: string, client: Identity, p: Payload, nonce: bigint): Promise<string> {
  const piece = await pieceOf(p.car)
  const now = Math.floor(Date.now() / 1000)
  const signed = signProposal(client, {
    pieceCid: piece.cid,
    pieceSize: piece.paddedSize,
    payloadCid: p.root,
    payloadSize: BigInt(p.car.length),
    client: client.did,
    provider,
    label: 'interop',
    start: now,
    end: now + 86400,
    pricePerGiBDay: 40n,
    providerCollateral: 0n,
    clientCollateral: 0n,
    provingPeriod: 3600,
    challenges: 16,
    nonce,
    head: null
  })
  const proposed = await fetch(`${url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(signed) })
  if (proposed.status !== 201) throw new Error(`proposal refused: ${proposed.status} ${await proposed.text()}`)
  const dealId = (dagJSON.parse(await proposed.text()) as { payload: { dealId: CID } }).payload.dealId.toString()
  const put = await fetch(`${url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car, headers: { authorization: uploadAuthorization(client, dealId) } })
  if (put.status !== 200) throw new Error(`upload refused: ${put.status} ${await put.text()}`)
  return dealId
}

export async function startWorld (options: ProviderNodeOptions & { announce?: AnnounceOptions } = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-interop-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const provider = await startProviderNode(repo, testTerms(), options)
  const announcer = options.announce === undefined ? undefined : await announceProvider(provider, options.announce)
  const { node, service, url } = provider
  const client = identityFromSecret(generateSecretKey())
  let nonce = 0n

  async function deal (p: Payload): Promise<string> {
    return await storeUnderDeal(url, repo.identity.did, client, p, ++nonce)
  }

  async function close (): Promise<void> {
    await provider.close()
    await repo.close()
    await rm(dir, { recursive: true, force: true })
  }

  return { url, service, node, announcer, repo, deal, close }
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for a few MiB. */
export function randomBytes (length: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4))
  let x = seed | 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    words[i] = x >>> 0
  }
  return new Uint8Array(words.buffer, 0, length)
}
