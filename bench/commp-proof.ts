/**
 * Proof-of-storage timings (docs/performance.md: 16 challenges on a 1 GiB piece, p50 ≤ 20 ms
 * warm and ≤ 200 ms cold; verification ≤ 2 ms).
 *
 *   node dist/bench/commp-proof.js [size=1G] [--file path] [--rounds 50]
 *
 * "cold" loads the encoded layer cache from disk and reads the piece file
 * through a fresh file handle; "warm" reuses both.
 */
import { open, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { createReadStream } from 'node:fs'
import { createPieceHasher, buildLayerCache, provePiece, verifyPieceProof, LayerCache, type ReadAt } from '../proofs/index.js'
import { DAG_CBOR, SHA2_256 } from '../src/codecs.js'
import { generate } from './commp.js'

export interface ProofBench {
  bytes: number
  pieceCid: string
  cacheBytes: number
  buildCacheSeconds: number
  /** milliseconds, 16 challenges per proof */
  proveColdP50: number
  proveWarmP50: number
  proveWarmP99: number
  verifyP50: number
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

export async function benchProof (file: string, options: { rounds?: number, challenges?: number } = {}): Promise<ProofBench> {
  const rounds = options.rounds ?? 50
  const count = options.challenges ?? 16
  const hasher = createPieceHasher()
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) await hasher.update(chunk as Uint8Array)
  const piece = await hasher.digest()
  const pieceCid = piece.cid.toString()
  const dealId = CID.createV1(DAG_CBOR, Digest.create(SHA2_256, randomBytes(32)))

  const handle = await open(file, 'r')
  const read: ReadAt = async (offset, length) => {
    const buffer = new Uint8Array(length)
    const { bytesRead } = await handle.read(buffer, 0, length, offset)
    return buffer.subarray(0, bytesRead)
  }
  const started = process.hrtime.bigint()
  const cache = await buildLayerCache(pieceCid, read)
  const buildCacheSeconds = Number(process.hrtime.bigint() - started) / 1e9
  const cacheFile = `${file}.layers`
  await writeFile(cacheFile, cache.encode())

  const cold: number[] = []
  const warm: number[] = []
  const verify: number[] = []
  try {
    for (let r = 0; r < rounds; r++) {
      const challenge = { dealId, seed: randomBytes(32), count }
      // cold: cache from disk, a fresh file handle
      let t = process.hrtime.bigint()
      const fresh = await open(file, 'r')
      const coldCache = LayerCache.decode(await readFile(cacheFile), piece.cid)
      await provePiece(piece.cid, challenge, async (offset, length) => {
        const buffer = new Uint8Array(length)
        const { bytesRead } = await fresh.read(buffer, 0, length, offset)
        return buffer.subarray(0, bytesRead)
      }, coldCache)
      await fresh.close()
      cold.push(Number(process.hrtime.bigint() - t) / 1e6)

      t = process.hrtime.bigint()
      const proof = await provePiece(piece.cid, challenge, read, cache)
      warm.push(Number(process.hrtime.bigint() - t) / 1e6)

      t = process.hrtime.bigint()
      verifyPieceProof(pieceCid, challenge, proof)
      verify.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
  } finally {
    await handle.close()
    await rm(cacheFile, { force: true })
  }
  return {
    bytes: Number(piece.payloadSize),
    pieceCid,
    cacheBytes: cache.encode().length,
    buildCacheSeconds,
    proveColdP50: percentile(cold, 0.5),
    proveWarmP50: percentile(warm, 0.5),
    proveWarmP99: percentile(warm, 0.99),
    verifyP50: percentile(verify, 0.5)
  }
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const opt = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined }
  const positional = argv.filter((a, i) => !a.startsWith('--') && (i === 0 || !['--file', '--rounds'].includes(argv[i - 1])))
  let file = opt('--file')
  let work: string | undefined
  if (file === undefined) {
    work = await mkdtemp(join(tmpdir(), 'cairn-bench-proof-'))
    file = join(work, 'input.bin')
    const m = /^(\d+)([KMG]?)$/i.exec(positional[0] ?? '1G')
    if (m === null) throw new TypeError('size like 256M or 1G')
    await generate(file, Number(m[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2].toUpperCase()])
  }
  try {
    const r = await benchProof(file, { rounds: Number(opt('--rounds') ?? 50) })
    console.log(`proofs of ${r.pieceCid} (${(r.bytes / (1 << 20)).toFixed(0)} MiB payload), 16 challenges`)
    console.log(`layer cache: ${(r.cacheBytes / 1024).toFixed(0)} KiB, built in ${r.buildCacheSeconds.toFixed(2)} s`)
    console.log(`prove cold p50 ${r.proveColdP50.toFixed(2)} ms · warm p50 ${r.proveWarmP50.toFixed(2)} ms, p99 ${r.proveWarmP99.toFixed(2)} ms · verify p50 ${r.verifyP50.toFixed(3)} ms`)
  } finally {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
