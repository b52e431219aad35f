/**
 * `GET /piece` under load, from a second process (bench/load-client.ts):
 * COUNT concurrent Range GETs of 1 MiB at random offsets of a 1 GiB piece,
 * and concurrent full-piece GETs of 64 MiB pieces. Targets (issue 17): every
 * request succeeds, p99 ≤ 5 s and the provider's peak RSS ≤ 512 MiB for 1,000
 * ranges; ≥ 300 MiB/s aggregate for 100 full pieces. Booster-http, the piece
 * server of Filecoin's providers, answered 40–60 % of 1,000 concurrent ranges
 * in Filecoin's HTTP retrieval benchmark.
 *
 * The pieces are seeded into the provider's repo (bench/seed.ts) and were just
 * written, so they are served from the page cache. Each round runs against a
 * provider started for it, whose peak RSS (VmHWM) is then that round's.
 *
 *   flags: --piece-load-size 1G, --piece-load-requests 1000, --piece-load-range 1M,
 *          --piece-full-size 64M, --piece-full-pieces 8, --piece-full-requests 100
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { measure, parseSize, processMemory, sizeLabel, spread, formatSpread, type Spread } from './measure.js'
import { BIN, ROOT, type SectionContext } from './plan.js'
import { startProvider, stop } from './processes.js'
import { seedPieces } from './seed.js'
import type { LoadResult } from './load-client.js'

const CLIENT = join(ROOT, 'dist', 'bench', 'load-client.js')
const SEED = 11

export interface LoadRound extends LoadResult { providerPeakRssMiB: number | null }

export interface PieceLoadBench {
  ranges: { pieceBytes: number, requests: number, rangeBytes: number, rounds: LoadRound[], successPercent: Spread, p50Ms: Spread, p99Ms: Spread, providerPeakRssMiB: Spread | null }
  full: { pieceBytes: number, pieces: number, requests: number, rounds: LoadRound[], successPercent: Spread, aggregateMiBPerSec: Spread, p99Ms: Spread, providerPeakRssMiB: Spread | null }
}

async function round (providerRepo: string, args: string[]): Promise<LoadRound> {
  const provider = await startProvider(providerRepo)
  try {
    const filled = args.map(a => a.replaceAll('{url}', provider.url))
    const client = await measure('piece load', 'load client', 0, process.execPath, [CLIENT, ...filled])
    const memory = processMemory(provider.pid)
    return { ...JSON.parse(client.output) as LoadResult, providerPeakRssMiB: memory?.peakRssMiB ?? null }
  } finally {
    await stop(provider.child)
  }
}

const success = (r: LoadRound): number => 100 * r.succeeded / r.requests
const rssOf = (rounds: LoadRound[]): Spread | null => rounds.every(r => r.providerPeakRssMiB !== null) ? spread(rounds.map(r => r.providerPeakRssMiB as number)) : null

export async function benchPieceLoad (ctx: SectionContext): Promise<{ result: PieceLoadBench, lines: string[] }> {
  const pieceBytes = parseSize(ctx.opt('--piece-load-size') ?? '1G')
  const requests = Number(ctx.opt('--piece-load-requests') ?? '1000')
  const rangeBytes = parseSize(ctx.opt('--piece-load-range') ?? '1M')
  const fullBytes = parseSize(ctx.opt('--piece-full-size') ?? '64M')
  const fullPieces = Number(ctx.opt('--piece-full-pieces') ?? '8')
  const fullRequests = Number(ctx.opt('--piece-full-requests') ?? '100')
  const repo = join(ctx.work, 'piece-load-provider')
  await measure('init', 'cairn', 0, process.execPath, [BIN, '--repo', repo, 'init'])
  try {
    const seeded = await seedPieces(repo, [pieceBytes, ...Array.from({ length: fullPieces }, () => fullBytes)], { seed: SEED, log: ctx.log })
    const [big, ...small] = seeded
    const rangeRounds: LoadRound[] = []
    const fullRounds: LoadRound[] = []
    for (let i = 0; i < ctx.pairs; i++) {
      const r = await round(repo, ['ranges', `{url}/piece/${big.pieceCid}`, String(pieceBytes), String(requests), String(rangeBytes), String(SEED)])
      rangeRounds.push(r)
      ctx.log(`  ${requests} × ${sizeLabel(rangeBytes)} ranges of ${sizeLabel(pieceBytes)}, round ${i + 1}/${ctx.pairs}: ${success(r).toFixed(1)} % ok, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, provider peak RSS ${r.providerPeakRssMiB ?? '?'} MiB${Object.keys(r.failures).length === 0 ? '' : `, failures ${JSON.stringify(r.failures)}`}`)
    }
    for (let i = 0; i < ctx.pairs; i++) {
      const r = await round(repo, ['full', small.map(p => `{url}/piece/${p.pieceCid}`).join(','), String(fullRequests), small.map((_, k) => String(SEED + 1 + k)).join(',')])
      fullRounds.push(r)
      ctx.log(`  ${fullRequests} full GETs of ${fullPieces} × ${sizeLabel(fullBytes)} pieces, round ${i + 1}/${ctx.pairs}: ${success(r).toFixed(1)} % ok, ${r.mibPerSec.toFixed(1)} MiB/s aggregate, p99 ${r.latencyMs.p99} ms, provider peak RSS ${r.providerPeakRssMiB ?? '?'} MiB${Object.keys(r.failures).length === 0 ? '' : `, failures ${JSON.stringify(r.failures)}`}`)
    }
    const result: PieceLoadBench = {
      ranges: {
        pieceBytes,
        requests,
        rangeBytes,
        rounds: rangeRounds,
        successPercent: spread(rangeRounds.map(success)),
        p50Ms: spread(rangeRounds.map(r => r.latencyMs.p50)),
        p99Ms: spread(rangeRounds.map(r => r.latencyMs.p99)),
        providerPeakRssMiB: rssOf(rangeRounds)
      },
      full: {
        pieceBytes: fullBytes,
        pieces: fullPieces,
        requests: fullRequests,
        rounds: fullRounds,
        successPercent: spread(fullRounds.map(success)),
        aggregateMiBPerSec: spread(fullRounds.map(r => r.mibPerSec)),
        p99Ms: spread(fullRounds.map(r => r.latencyMs.p99)),
        providerPeakRssMiB: rssOf(fullRounds)
      }
    }
    const r = result.ranges
    const f = result.full
    return {
      result,
      lines: [
        `/piece, ${r.requests} concurrent ${sizeLabel(r.rangeBytes)} Range GETs of a ${sizeLabel(r.pieceBytes)} piece (${ctx.pairs} round${ctx.pairs === 1 ? '' : 's'}): ` +
          `${formatSpread(r.successPercent)} % succeeded, p50 ${formatSpread(r.p50Ms, 0)} ms, p99 ${formatSpread(r.p99Ms, 0)} ms, provider peak RSS ${r.providerPeakRssMiB === null ? '?' : formatSpread(r.providerPeakRssMiB, 0)} MiB ` +
          '(targets at 1,000 × 1 MiB of 1 GiB: 100 %, p99 ≤ 5,000 ms, ≤ 512 MiB)',
        `/piece, ${f.requests} concurrent full GETs of ${f.pieces} pieces of ${sizeLabel(f.pieceBytes)} (${ctx.pairs} round${ctx.pairs === 1 ? '' : 's'}): ` +
          `${formatSpread(f.successPercent)} % succeeded, ${formatSpread(f.aggregateMiBPerSec)} MiB/s aggregate, p99 ${formatSpread(f.p99Ms, 0)} ms, provider peak RSS ${f.providerPeakRssMiB === null ? '?' : formatSpread(f.providerPeakRssMiB, 0)} MiB ` +
          '(target at 100 × 64 MiB: ≥ 300 MiB/s)'
      ]
    }
  } finally {
    await rm(repo, { recursive: true, force: true })
  }
}
