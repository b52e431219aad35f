/**
 * CommP throughput: cairn beside its peers on the same file, in one process.
 *
 *   node dist/bench/commp.js [size=64M] [--file path] [--skip-slow-peers] [--engines native,workers,portable]
 *
 * Peers: @web3-storage/data-segment's streaming hasher (JS) and
 * fr32-sha2-256-trunc254-padded-binary-tree-multihash (Rust → WASM). Every
 * implementation reads the file the same way (1 MiB stream chunks) and must
 * produce the same piece CID. Also reports the longest event-loop stall seen
 * while cairn hashed (the provider must stay responsive while it hashes).
 */
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import * as DataSegment from '@web3-storage/data-segment/multihash'
import * as Wasm from 'fr32-sha2-256-trunc254-padded-binary-tree-multihash'
import { createPieceHasher, RAW_CODE } from '../proofs/index.js'
import { generate, parseSize } from './measure.js'

const MiB = 1024 * 1024

export interface CommpMeasure {
  /** 'cairn (native)', '@web3-storage/data-segment', … */
  name: string
  bytes: number
  seconds: number
  mibPerSec: number
  mbPerSec: number
  pieceCid: string
  /** longest event-loop stall while hashing, in ms (cairn only) */
  maxStallMs?: number
}

export interface CommpBench {
  file: string
  bytes: number
  results: CommpMeasure[]
  /** true when every implementation produced the same piece CID */
  agree: boolean
}

async function * read (file: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) yield chunk as Uint8Array
}

async function timed (name: string, bytes: number, run: () => Promise<string>): Promise<CommpMeasure> {
  const started = process.hrtime.bigint()
  const pieceCid = await run()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return { name, bytes, seconds, mibPerSec: bytes / MiB / seconds, mbPerSec: bytes / 1e6 / seconds, pieceCid }
}

async function cairn (file: string, bytes: number, engine: 'auto' | 'native' | 'workers' | 'portable'): Promise<CommpMeasure> {
  let maxStallMs = 0
  let last = performance.now()
  const probe = setInterval(() => {
    const now = performance.now()
    maxStallMs = Math.max(maxStallMs, now - last - 5)
    last = now
  }, 5)
  try {
    const hasher = createPieceHasher({ engine })
    const result = await timed(`cairn (${engine})`, bytes, async () => {
      for await (const chunk of read(file)) await hasher.update(chunk)
      return (await hasher.digest()).cid.toString()
    })
    result.name = `cairn (${hasher.engine})`
    return { ...result, maxStallMs: Math.round(Math.max(0, maxStallMs)) }
  } finally {
    clearInterval(probe)
  }
}

async function dataSegment (file: string, bytes: number): Promise<CommpMeasure> {
  return await timed('@web3-storage/data-segment', bytes, async () => {
    const hasher = DataSegment.create()
    for await (const chunk of read(file)) hasher.write(chunk)
    return CID.createV1(RAW_CODE, Digest.decode(hasher.digest().bytes)).toString()
  })
}

async function wasm (file: string, bytes: number): Promise<CommpMeasure> {
  return await timed('fr32-sha2-256-trunc254-padded-binary-tree-multihash (WASM)', bytes, async () => {
    const hasher = Wasm.create()
    for await (const chunk of read(file)) hasher.write(chunk)
    const multihash = new Uint8Array(hasher.multihashByteLength())
    hasher.digestInto(multihash, 0, true)
    hasher.free()
    return CID.createV1(RAW_CODE, Digest.decode(multihash)).toString()
  })
}

/**
 * Measures CommP of `file` with cairn and each peer. `engines` lists cairn's
 * engines to run (default: the one 'auto' picks); `skipSlowPeers` leaves out
 * data-segment (≈ 7 MB/s, two and a half minutes per GiB).
 */
export async function benchCommp (file: string, options: { engines?: Array<'auto' | 'native' | 'workers' | 'portable'>, skipSlowPeers?: boolean } = {}): Promise<CommpBench> {
  const bytes = (await stat(file)).size
  const results: CommpMeasure[] = []
  for (const engine of options.engines ?? ['auto']) results.push(await cairn(file, bytes, engine))
  results.push(await wasm(file, bytes))
  if (options.skipSlowPeers !== true) results.push(await dataSegment(file, bytes))
  return { file, bytes, results, agree: results.every(r => r.pieceCid === results[0].pieceCid) }
}

export { generate }

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const opt = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined }
  const positional = argv.filter((a, i) => !a.startsWith('--') && (i === 0 || !['--file', '--engines'].includes(argv[i - 1])))
  const engines = (opt('--engines') ?? 'auto').split(',') as Array<'auto' | 'native' | 'workers' | 'portable'>
  let file = opt('--file')
  let work: string | undefined
  if (file === undefined) {
    work = await mkdtemp(join(tmpdir(), 'cairn-bench-commp-'))
    file = join(work, 'input.bin')
    await generate(file, parseSize(positional[0] ?? '64M'))
  }
  try {
    const bench = await benchCommp(file, { engines, skipSlowPeers: argv.includes('--skip-slow-peers') })
    const cairnBest = bench.results.filter(r => r.name.startsWith('cairn')).reduce((a, b) => (b.mibPerSec > a.mibPerSec ? b : a))
    console.log(`CommP of ${(bench.bytes / MiB).toFixed(0)} MiB`)
    console.log('| implementation | MiB/s | MB/s | seconds | cairn ÷ this | longest event-loop stall |')
    console.log('|---|---:|---:|---:|---:|---:|')
    for (const r of bench.results) {
      console.log(`| ${r.name} | ${r.mibPerSec.toFixed(1)} | ${r.mbPerSec.toFixed(1)} | ${r.seconds.toFixed(2)} | ${(cairnBest.mibPerSec / r.mibPerSec).toFixed(1)}× | ${r.maxStallMs === undefined ? '' : `${r.maxStallMs} ms`} |`)
    }
    console.log(bench.agree ? `all agree: ${bench.results[0].pieceCid}` : `PIECE CIDS DIFFER: ${bench.results.map(r => `${r.name}=${r.pieceCid}`).join(' ')}`)
    if (!bench.agree) process.exitCode = 3
  } finally {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
