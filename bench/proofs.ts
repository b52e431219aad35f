/**
 * The provider's proofs as a client sees them (docs/performance.md: 16 challenges on a
 * 1 GiB piece, p50 ≤ 20 ms warm and ≤ 200 ms cold; verification ≤ 2 ms):
 * the piece sits in a piece store, its layer cache beside it, and each proof is
 * the signed answer `POST /v1/deals/{id}/proofs` sends (src/provider/proofs.ts),
 * verified as `cairn audit` verifies it (signature, echo, every path).
 *
 *   node dist/bench/proofs.js [size=1G] [--rounds 50] [--level 10]
 *
 * "cold": the layer cache is dropped from memory and loaded from disk, and the
 * piece and cache files are evicted from the page cache first
 * (posix_fadvise DONTNEED through `dd iflag=nocache`, checked with `fincore`);
 * when eviction cannot be confirmed the figure is reported as "cache just
 * loaded" only. "warm": cache in memory, piece pages cached.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { createPieceHasher } from '../proofs/index.js'
import { DAG_CBOR, SHA2_256 } from '../src/codecs.js'
import { verifyProofAnswer } from '../src/protocol/proof.js'
import { answerChallenge, PieceProver } from '../src/provider/proofs.js'
import { generateSecretKey, identityFromSecret } from '../src/repo/identity.js'
import { PieceStore } from '../src/store/pieces.js'
import { generate } from './commp.js'

export interface ProofsBench {
  /** payload bytes of the piece */
  bytes: number
  paddedBytes: number
  pieceCid: string
  challenges: number
  rounds: number
  cacheBytes: number
  buildCacheSeconds: number
  /** ms per signed proof */
  proveWarmP50: number
  proveWarmP99: number
  proveColdP50: number
  /** what "cold" means in this run */
  cold: 'page cache dropped' | 'cache just loaded'
  /** ms per full client verification (signature, echo, every path) */
  verifyP50: number
  /** the proof as sent (DAG-JSON) and as stored in the ledger (DAG-CBOR) */
  proofBytesJson: number
  proofBytesCbor: number
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

function ms (since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6
}

/** Evicts a file from the page cache; true when `fincore` confirms no page is left. */
export function evict (path: string): boolean {
  const dd = spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' })
  if (dd.status !== 0) return false
  const check = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' })
  return check.status === 0 && check.stdout.trim() === '0'
}

/**
 * Generates a piece of `size` bytes in a temporary piece store, builds its
 * layer cache and measures `rounds` proofs of `challenges` leaves.
 */
export async function benchProofs (size = 1 << 30, options: { rounds?: number, challenges?: number, dir?: string, cacheLevel?: number } = {}): Promise<ProofsBench> {
  const rounds = options.rounds ?? 50
  const count = options.challenges ?? 16
  const work = await mkdtemp(join(options.dir ?? tmpdir(), 'cairn-bench-proofs-'))
  try {
    const store = new PieceStore(join(work, 'pieces'), join(work, 'tmp'))
    await mkdir(store.dir, { recursive: true })
    const input = join(work, 'input.car')
    await generate(input, size)
    const hasher = createPieceHasher()
    for await (const chunk of createReadStream(input, { highWaterMark: 1 << 20 })) await hasher.update(chunk as Uint8Array)
    const piece = await hasher.digest()
    const pieceCid = piece.cid.toString()
    const path = store.path(pieceCid)
    await rename(input, path)
    const handle = await open(path, 'r')
    await handle.sync()
    await handle.close()

    const prover = new PieceProver(store, { cacheLevel: options.cacheLevel })
    const provider = identityFromSecret(generateSecretKey())
    const dealId = CID.createV1(DAG_CBOR, Digest.create(SHA2_256, randomBytes(32)))
    const deal = { dealId, pieceCid: piece.cid }

    let t = process.hrtime.bigint()
    const cache = await prover.build(pieceCid)
    const buildCacheSeconds = ms(t) / 1000

    const warm: number[] = []
    const cold: number[] = []
    const verify: number[] = []
    let evicted = true
    let proofBytesJson = 0
    let proofBytesCbor = 0
    const challenge = (): { seed: Uint8Array, count: number } => ({ seed: new Uint8Array(randomBytes(32)), count })
    // one unmeasured proof so that code paths are compiled
    await answerChallenge(prover, provider, deal, challenge(), 0)
    for (let r = 0; r < rounds; r++) {
      prover.forget()
      evicted = evict(path) && evict(prover.cachePath(pieceCid)) && evicted
      t = process.hrtime.bigint()
      await answerChallenge(prover, provider, deal, challenge(), 0)
      cold.push(ms(t))
    }
    for (let r = 0; r < rounds; r++) {
      const c = challenge()
      t = process.hrtime.bigint()
      const answer = await answerChallenge(prover, provider, deal, c, 0)
      warm.push(ms(t))
      t = process.hrtime.bigint()
      verifyProofAnswer(answer, { dealId, pieceCid: piece.cid, provider: provider.did, seed: c.seed, count })
      verify.push(ms(t))
      proofBytesJson = dagJson.encode(answer).length
      proofBytesCbor = dagCbor.encode(answer).length
    }
    return {
      bytes: size,
      paddedBytes: Number(piece.paddedSize),
      pieceCid,
      challenges: count,
      rounds,
      cacheBytes: cache.encode().length,
      buildCacheSeconds,
      proveWarmP50: percentile(warm, 0.5),
      proveWarmP99: percentile(warm, 0.99),
      proveColdP50: percentile(cold, 0.5),
      cold: evicted ? 'page cache dropped' : 'cache just loaded',
      verifyP50: percentile(verify, 0.5),
      proofBytesJson,
      proofBytesCbor
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

function parseSize (text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text)
  if (m === null) throw new TypeError(`bad size '${text}', expected e.g. 64M or 1G`)
  return Number(m[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[(m[2] as string).toUpperCase()]!
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const opt = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined }
  const positional = argv.filter((a, i) => !a.startsWith('--') && (i === 0 || !['--rounds', '--level'].includes(argv[i - 1] as string)))
  const level = opt('--level')
  const r = await benchProofs(parseSize(positional[0] ?? '1G'), { rounds: Number(opt('--rounds') ?? 50), cacheLevel: level === undefined ? undefined : Number(level) })
  console.log(`signed proofs of ${r.pieceCid} (${(r.bytes / (1 << 20)).toFixed(0)} MiB payload), ${r.challenges} challenges, ${r.rounds} rounds`)
  console.log(`layer cache ${(r.cacheBytes / 1024).toFixed(0)} KiB, built in ${r.buildCacheSeconds.toFixed(2)} s`)
  console.log(`prove warm p50 ${r.proveWarmP50.toFixed(2)} ms (p99 ${r.proveWarmP99.toFixed(2)}) · cold p50 ${r.proveColdP50.toFixed(2)} ms (${r.cold}) · verify p50 ${r.verifyP50.toFixed(3)} ms`)
  console.log(`proof ${r.proofBytesJson} bytes as DAG-JSON, ${r.proofBytesCbor} bytes as DAG-CBOR`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
