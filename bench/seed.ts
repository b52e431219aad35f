/**
 * Pieces put into a provider's repo as an upload leaves them, for the benches
 * that serve and prove them (bench/piece-load.ts, bench/proofs.ts): real bytes
 * (AES-CTR keystream) staged by the piece store while CommP and the proof
 * layer cache are computed (`PieceStore.stage`, as a deal upload stores a
 * piece), committed, the layer cache written beside the piece, and an active
 * deal recorded for it — the proposal checked by the provider's own rules
 * (`ProviderDeals.propose`), the `deal-active` entry committed with the piece
 * index as the upload path commits it (src/provider/deals.ts).
 *
 * What is skipped is the CAR check: these pieces are raw bytes, not a DAG, so
 * the gateway serves nothing of them; the piece route and proofs read only the
 * piece file, its index entry and its layer cache. Generating in one pass
 * makes a 32 GiB piece take minutes instead of an add and an upload.
 * The provider must not be running (its repo's LevelDB has one holder).
 */
import { randomBytes } from 'node:crypto'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { DEFAULT_CACHE_LEVEL } from '../proofs/index.js'
import { proposalFor } from '../src/client/deal.js'
import { dealIdOf, signProposal } from '../src/protocol/proposal.js'
import { createSigner, type Signer } from '../src/protocol/signing.js'
import type { ExtraOp, Ledger } from '../src/ledger/interface.js'
import { writeFileAtomic } from '../src/fs/atomic.js'
import { LevelLedger } from '../src/ledger/level.js'
import { PIECE_PREFIX, PIECE_V1_PREFIX } from '../src/state/spaces.js'
import { ProviderDeals } from '../src/provider/deals.js'
import { providerTerms } from '../src/provider/terms.js'
import { Repo } from '../src/repo/repo.js'
import { PieceStore } from '../src/store/pieces.js'
import { keystream, MiB } from './measure.js'

export interface SeededPiece {
  dealId: string
  /** the deal's client's secret key: proof requests are signed with it */
  clientKey: Uint8Array
  pieceCid: string
  /** payload bytes */
  size: number
  paddedSize: bigint
  /** generating, hashing, writing and recording it */
  seconds: number
}

const TERMS = providerTerms({ endpoint: 'http://127.0.0.1:0', pricePerGiBDay: 1n, maxPieceSize: 64n << 30n, capacity: 1n << 40n })

async function * generated (size: number, seed: number): AsyncGenerator<Uint8Array> {
  yield * keystream(size, seed, 4 * MiB)
}

/**
 * Records an active deal of `client` for a piece just committed to the
 * provider's store: the proposal checked by the provider's own rules, the
 * `deal-active` entry committed with the piece index as an upload commits it
 * (`extra`: more ops in that batch, e.g. a cluster node's piece location).
 */
export async function recordActiveDeal (deals: ProviderDeals, ledger: Ledger, client: Signer, piece: { cid: CID, cidV1: CID, paddedSize: bigint }, size: number, seed: number, extra: ExtraOp[] = []): Promise<CID> {
  // no DAG: the payload CID names the raw bytes' first MiB, only so that the proposal is well formed
  const payloadCid = CID.createV1(0x55, await sha256.digest(keystream(Math.min(size, MiB), seed, MiB).next().value as Uint8Array))
  // head null: a client with an empty ledger (deal-proposal/v2, docs/protocol.md)
  const proposal = {
    ...proposalFor(client.did, await deals.ask(), {
      root: payloadCid,
      record: { piece: piece.cid.toString(), pieceV1: piece.cidV1.toString(), payloadSize: size, paddedSize: piece.paddedSize.toString(), added: new Date().toISOString() }
    }, { duration: 180 * 86400 }, Math.floor(Date.now() / 1000)),
    head: null
  }
  const signed = signProposal(client, proposal)
  await deals.propose(signed)
  const dealId = dealIdOf(signed)
  await ledger.append('deal-active', {
    deal: dealId,
    pieceCid: piece.cid,
    pieceCidV1: piece.cidV1,
    payloadCid,
    payloadSize: BigInt(size),
    blocks: 0
  }, [
    { type: 'put', key: PIECE_PREFIX + piece.cid.toString(), value: dagCBOR.encode({ deal: dealId, size }) },
    { type: 'put', key: PIECE_V1_PREFIX + piece.cidV1.toString(), value: new TextEncoder().encode(piece.cid.toString()) },
    ...extra
  ])
  return dealId
}

/**
 * One piece of `size` bytes of keystream `seed` staged into `store` with its
 * layer cache, committed, and recorded under an active deal of the client
 * whose key is `clientKey` (`extra`: as for `recordActiveDeal`).
 */
export async function seedPiece (provider: { deals: ProviderDeals, ledger: Ledger, store: PieceStore }, clientKey: Uint8Array, size: number, seed: number, extra: (piece: string) => ExtraOp[] = () => []): Promise<SeededPiece> {
  const started = performance.now()
  const staged = await provider.store.stage(generated(size, seed), { layerLevel: DEFAULT_CACHE_LEVEL })
  const piece = staged.piece.cid.toString()
  await staged.commit()
  if (staged.piece.layers === undefined) throw new Error('the piece store collected no layer cache')
  await writeFileAtomic(provider.deals.prover.cachePath(piece), staged.piece.layers.encode())
  const dealId = await recordActiveDeal(provider.deals, provider.ledger, createSigner(clientKey), staged.piece, size, seed, extra(piece))
  return { dealId: dealId.toString(), clientKey, pieceCid: piece, size, paddedSize: staged.piece.paddedSize, seconds: (performance.now() - started) / 1000 }
}

/** Stores one piece of `size` generated bytes per entry of `sizes` in the provider repo at `path`, each under an active deal. */
export async function seedPieces (path: string, sizes: number[], options: { seed?: number, log?: (line: string) => void } = {}): Promise<SeededPiece[]> {
  const repo = await Repo.open(path)
  try {
    const db = await repo.db()
    const ledger = await LevelLedger.open(db, repo.identity)
    const store = new PieceStore(repo.piecesDir, repo.tmpDir)
    const deals = new ProviderDeals(db, ledger, store, repo.identity, { ...TERMS })
    const clientKey = new Uint8Array(randomBytes(32))
    const seeded: SeededPiece[] = []
    for (const [i, size] of sizes.entries()) {
      // a different keystream per piece, so that no two pieces share a piece CID
      const one = await seedPiece({ deals, ledger, store }, clientKey, size, (options.seed ?? 11) + i)
      options.log?.(`  seeded piece ${i + 1}/${sizes.length}: ${(size / MiB).toFixed(0)} MiB in ${one.seconds.toFixed(1)} s (${(size / MiB / one.seconds).toFixed(0)} MiB/s)`)
      seeded.push(one)
    }
    await ledger.flush?.()
    return seeded
  } finally {
    await repo.close()
  }
}
