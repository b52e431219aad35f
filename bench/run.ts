/**
 * `npm run bench`: cairn beside its peers, on the same generated input, in one
 * run. Each measured command runs in its own process so its peak RSS is its
 * own; each comparison runs as alternating pairs (bench/pairs.ts) and reports
 * medians with their range; the machine's load is read before and after every
 * section. Prints the table and writes bench/results.json. How to add a
 * comparison or a section: bench/README.md.
 *
 *   npm run bench                             # 256 MiB and 1 GiB, 3 pairs each
 *   npm run bench -- --sizes 16M --pairs 3    # a quick run
 *   npm run bench -- --skip-slow-peers        # leave out data-segment (≈ 3–7 MiB/s)
 *   flags: --pairs 3, --memory-size 2G, --proof-size 1G,32G, --out bench/results.json,
 *          --encrypt-pairs N (default --pairs), --routing-multihashes 1M, --routing-pg-multihashes 100k (0: none),
 *          --no-content, --no-transfer, --no-encrypt, --no-memory, --no-ledger, --no-cluster,
 *          --no-proofs, --no-piece-load, --no-routing, --no-ask, --ask-deals 10,1000,100000
 *          (and each section's own: bench/piece-load.ts, bench/provider-proofs.ts,
 *          bench/cluster.ts: --cluster-proof-size 1G, --cluster-proof-rounds 30)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generate, machine, machineState, parseSize, sizeLabel } from './measure.js'
import { runPair, type PairResult } from './pairs.js'
import { ROOT, type Section, type SectionContext, type SizeGroup } from './plan.js'
import { comparisonTable, machineLines, type SectionRecord } from './report.js'
import { addCommand, contentPairs } from './content.js'
import { transferPairs } from './transfer.js'
import { encryptPairs } from './encrypt.js'

/** Comparisons run on every input size, in this order. */
const groups: SizeGroup[] = [
  { name: 'content', skip: '--no-content', pairs: async (ctx) => ({ pairs: await contentPairs(ctx) }) },
  { name: 'transfer', skip: '--no-transfer', pairs: transferPairs },
  { name: 'encrypt', skip: '--no-encrypt', pairs: encryptPairs }
]

/** Benches run once, after the sizes, in this order. */
const sections: Section[] = [
  {
    name: 'memory',
    flag: '--no-memory',
    run: async (ctx) => {
      // add's peak RSS stays under 256 MiB, flat in the input size
      const size = parseSize(ctx.opt('--memory-size') ?? '2G')
      if (size === 0) return undefined
      const input = join(ctx.work, 'memory.bin')
      await generate(input, size)
      try {
        await ctx.compare({
          name: `add ${sizeLabel(size)} (memory)`,
          what: 'peak RSS of the whole command (GNU time), and its MiB/s',
          input: `${sizeLabel(size)} of AES-CTR bytes, one file`,
          cairn: addCommand(join(ctx.work, 'repo-memory'), input, size)
        })
      } finally {
        await rm(input, { force: true })
      }
      return undefined
    }
  },
  {
    name: 'ledger',
    flag: '--no-ledger',
    run: async (ctx) => {
      const { benchLedger } = await import('./ledger.js')
      const result = await benchLedger(ctx.work, 20_000)
      return { result, lines: [`ledger: ${JSON.stringify(result)}`] }
    }
  },
  {
    name: 'cluster',
    flag: '--no-cluster',
    // PostgreSQL beside LevelDB: a throwaway server with its defaults, or CAIRN_BENCH_PG_URL
    run: async (ctx) => await (await import('./cluster.js')).clusterSection(ctx)
  },
  { name: 'pieceLoad', flag: '--no-piece-load', run: async (ctx) => await (await import('./piece-load.js')).benchPieceLoad(ctx) },
  { name: 'proofs', flag: '--no-proofs', run: async (ctx) => await (await import('./provider-proofs.js')).benchProviderProofs(ctx) },
  {
    name: 'routing',
    flag: '--no-routing',
    // lookups at an indexer holding 1 M multihashes; announcing a 1 GiB DAG's 4,100 blocks (docs/routing.md)
    run: async (ctx) => await (await import('./routing.js')).routingSection(ctx)
  },
  {
    name: 'ask',
    flag: '--no-ask',
    // GET /v1/ask and /metrics must stay flat as the ledger grows
    run: async (ctx) => {
      const { benchAsk, askLine } = await import('./ask.js')
      const result = []
      for (const deals of (ctx.opt('--ask-deals') ?? '10,1000,100000').split(',').map(Number)) {
        const r = await benchAsk(ctx.work, deals)
        ctx.log(`  ${askLine(r)}`)
        result.push(r)
      }
      return { result, lines: result.map(r => `ask: ${askLine(r)}`) }
    }
  }
]

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const opt = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined }
  const has = (flag: string): boolean => argv.includes(flag)
  const sizes = (opt('--sizes') ?? '256M,1G').split(',').filter(s => s !== '').map(parseSize)
  const pairs = Number(opt('--pairs') ?? '3')
  if (!Number.isSafeInteger(pairs) || pairs < 1) throw new TypeError(`--pairs must be a whole number ≥ 1, got ${opt('--pairs')}`)
  const out = resolve(opt('--out') ?? join(ROOT, 'bench', 'results.json'))
  // --only TEXT: of the per-size comparisons, those whose name holds TEXT ('pack', 'vs --against')
  const only = opt('--only')
  const log = (line: string): void => { process.stderr.write(line + '\n') }
  if (pairs < 3) log(`warning: --pairs ${pairs}: with fewer than 3 pairs a median and its range say little; quote only runs of 3 or more`)

  const started = new Date().toISOString()
  const comparisons: PairResult[] = []
  const records: SectionRecord[] = []
  const results: Record<string, unknown> = {}
  const lines: string[] = []
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const before = machineState()
    const t = performance.now()
    log(`${name} (load average ${before.loadAverage.join(' ')})`)
    try {
      return await work()
    } finally {
      records.push({ name, seconds: (performance.now() - t) / 1000, before, after: machineState() })
    }
  }
  const compare = async (pair: Parameters<typeof runPair>[0]): Promise<PairResult> => {
    const r = await runPair(pair, pair.pairs ?? pairs, log)
    comparisons.push(r)
    return r
  }

  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-'))
  try {
    for (const size of sizes) {
      const label = sizeLabel(size)
      const input = join(work, `input-${size}.bin`)
      await generate(input, size)
      const ctx = { work, input, size, label, skipSlowPeers: has('--skip-slow-peers'), opt }
      for (const group of groups) {
        if (has(group.skip)) continue
        await timed(`${group.name} ${label}`, async () => {
          const declared = await group.pairs(ctx)
          try {
            for (const pair of declared.pairs) if (only === undefined || pair.name.includes(only)) await compare(pair)
          } finally {
            await declared.close?.()
          }
        })
      }
      await rm(input, { force: true })
    }
    const sectionContext: SectionContext = { work, opt, has, pairs, log, compare }
    for (const section of sections) {
      if (section.optIn === true ? !has(section.flag) : has(section.flag)) continue
      const done = await timed(section.name, async () => await section.run(sectionContext))
      if (done === undefined) continue
      results[section.name] = done.result
      lines.push(...done.lines)
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }

  const host = machine()
  const text = [
    ...machineLines(host, records),
    ...(comparisons.length === 0
      ? []
      : [
          '',
          ...comparisonTable(comparisons),
          '',
          `Each comparison: alternating pairs (cairn, then the peer; ${pairs} unless the pairs column says otherwise); figures are medians with (min–max); the ratio is the median of the pair ratios.`
        ]),
    ...(lines.length === 0 ? [] : ['', ...lines])
  ]
  process.stdout.write(text.join('\n') + '\n')
  await writeFile(out, JSON.stringify({
    date: started,
    machine: host,
    settings: { pairs, sizes, argv },
    sections: records,
    comparisons,
    ...results
  }, null, 2) + '\n')
  log(`wrote ${out}`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main()
