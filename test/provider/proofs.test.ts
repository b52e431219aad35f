/**
 * The provider's piece prover (src/provider/proofs.ts): a large piece's layer
 * cache is kept on disk with only its upper layers in memory, and a cache file
 * that changes or vanishes under a loaded cache is loaded or rebuilt again
 * instead of failing the proof.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { LayerFile, verifyPieceProof } from '../../proofs/index.js'
import { PieceProver } from '../../src/provider/proofs.js'
import { PieceStore } from '../../src/store/pieces.js'
import { rejectsCode } from '../helpers/errors.js'

const dealId = CID.createV1(0x71, Digest.create(0x12, sha256(new TextEncoder().encode('a deal'))))

/** Runs `work` with a prover over a store holding one random piece of about 3 MiB, its cache built, at most 4 nodes of a layer resident. */
async function withPiece (work: (prover: PieceProver, piece: string, store: PieceStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-prover-'))
  try {
    const store = new PieceStore(join(dir, 'pieces'), join(dir, 'tmp'))
    await mkdir(store.dir)
    await mkdir(store.tmpDir)
    const staged = await store.stage((async function * () { yield new Uint8Array(randomBytes(3 * 1024 * 1024 + 17)) })())
    await staged.commit()
    const prover = new PieceProver(store, { residentNodes: 4 })
    await work(prover, staged.piece.cid.toString(), store)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function proves (t: import('ava').ExecutionContext, prover: PieceProver, piece: string): Promise<void> {
  const challenge = { dealId, seed: new Uint8Array(randomBytes(32)), count: 16 }
  const proof = await prover.prove(piece, challenge)
  t.notThrows(() => verifyPieceProof(piece, challenge, proof))
}

test('a large cache stays on disk with at most residentNodes nodes of a layer in memory, built or loaded', async t => {
  await withPiece(async (prover, piece) => {
    const built = await prover.build(piece)
    t.true(built.nodes.length > 4 * 32)
    for (const from of ['built', 'loaded']) {
      const cache = await prover.cache(piece)
      t.true(cache instanceof LayerFile, from)
      t.true((cache as LayerFile).resident.nodes.length <= 4 * 32, from)
      await proves(t, prover, piece)
      prover.forget()
    }
  })
})

test('a cache file changed, cut or removed after it was loaded is loaded or rebuilt again, and the proof verifies', async t => {
  await withPiece(async (prover, piece) => {
    await prover.build(piece)
    const path = prover.cachePath(piece)
    const written = new Uint8Array(await readFile(path))
    const changed = written.slice()
    for (let i = 30; i < changed.length; i += 32) changed[i] ^= 1
    for (const damage of [async () => { await writeFile(path, changed) }, async () => { await writeFile(path, written.subarray(0, 40)) }, async () => { await rm(path) }]) {
      await prover.cache(piece)
      await damage()
      await proves(t, prover, piece)
      t.deepEqual(new Uint8Array(await readFile(path)), written, 'rebuilt as it was')
    }
  })
})

test('a piece whose bytes changed is still refused with ERR_PIECE_CORRUPT through a layer file', async t => {
  await withPiece(async (prover, piece, store) => {
    await prover.build(piece)
    const bytes = new Uint8Array(await readFile(store.path(piece)))
    for (let i = 0; i < bytes.length; i += 1000) bytes[i] ^= 0xff
    await writeFile(store.path(piece), bytes)
    await rejectsCode(t, prover.prove(piece, { dealId, seed: new Uint8Array(randomBytes(32)), count: 16 }), 'ERR_PIECE_CORRUPT')
  })
})
