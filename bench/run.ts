/**
 * `npm run bench`: cairn beside its peers, on the same generated input, in one
 * run. Each measured command runs in its own process so its peak RSS is its
 * own. Prints a table and writes bench/results.json.
 *
 *   npm run bench                      # 256 MiB and 1 GiB
 *   npm run bench -- --sizes 64M       # a quick run
 *   npm run bench -- --skip-slow-peers # leave out data-segment (≈ 7 MB/s)
 *   flags: --memory-size 2G, --proof-size 1G, --no-ledger, --no-proofs, --no-transfer, --no-encrypt,
 *          --encrypt-pairs 3, --routing-multihashes 1M, --no-routing, --no-cluster,
 *          --ask-deals 10,1000,100000, --no-ask
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measure, generate, parseSize, MiB, type Measure } from './measure.js'
import { benchTransfer } from './transfer.js'
import { benchEncrypt, type EncryptBench } from './encrypt.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'cairn.js')
const PEERS = join(ROOT, 'dist', 'bench', 'peers.js')
const IPFS_CAR = join(ROOT, 'node_modules', 'ipfs-car', 'bin.js')

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const opt = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined }
  const sizes = (opt('--sizes') ?? '256M,1G').split(',').map(parseSize)
  const skipSlow = argv.includes('--skip-slow-peers')
  const memorySize = parseSize(opt('--memory-size') ?? '2G')
  let ledger: unknown
  let proofs: unknown
  const encrypt: EncryptBench[] = []
  let routing: unknown
  let cluster: unknown
  let ask: unknown[] | undefined
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-'))
  const results: Measure[] = []
  try {
    for (const size of sizes) {
      const input = join(work, `input-${size}.bin`)
      await generate(input, size)
      const label = size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`
      const repo = join(work, `repo-${size}`)
      await measure('init', 'cairn', 0, process.execPath, [BIN, '--repo', repo, 'init'])
      const run = async (m: Promise<Measure>): Promise<void> => {
        const r = await m
        results.push(r)
        process.stderr.write(`  ${r.name.padEnd(28)} ${label.padStart(8)}  ${r.mibPerSec.toFixed(1).padStart(8)} MiB/s  ${String(r.peakRssMiB ?? '?').padStart(5)} MiB RSS\n`)
      }
      await run(measure(`piece ${label}`, 'cairn piece', size, process.execPath, [BIN, '--json', 'piece', input]))
      await run(measure(`piece ${label}`, 'fr32-sha2-256-trunc254 (WASM)', size, process.execPath, [PEERS, 'fr32-wasm', input]))
      if (!skipSlow) await run(measure(`piece ${label}`, '@web3-storage/data-segment', size, process.execPath, [PEERS, 'data-segment', input]))
      const cids = new Set(results.filter(r => r.name === `piece ${label}`).map(r => JSON.parse(r.output).cid as string))
      if (cids.size !== 1) throw new Error(`piece CIDs disagree on ${label}: ${[...cids].join(' ')}`)
      await run(measure(`add ${label}`, 'cairn add', size, process.execPath, [BIN, '--repo', repo, '--json', 'add', input]))
      await run(measure(`add ${label}`, 'ipfs-car pack --no-wrap', size, process.execPath, [IPFS_CAR, 'pack', input, '--no-wrap', '-o', join(work, 'ipfs-car.car')]))
      await rm(join(work, 'ipfs-car.car'), { force: true })
      if (!argv.includes('--no-transfer')) for (const r of await benchTransfer(work, input, label)) await run(Promise.resolve(r))
      if (!argv.includes('--no-encrypt')) {
        const { rows, summary } = await benchEncrypt(work, input, size, label, Number(opt('--encrypt-pairs') ?? '3'))
        for (const r of rows) await run(Promise.resolve(r))
        encrypt.push(summary)
        process.stderr.write(`  add --encrypt ÷ add ${label}: median ${(summary.median * 100).toFixed(0)} % (${(summary.min * 100).toFixed(0)}–${(summary.max * 100).toFixed(0)} %) over ${summary.pairs} alternating pairs\n`)
      }
      await rm(repo, { recursive: true, force: true })
      await rm(input, { force: true })
    }
    if (memorySize > 0) {
      // docs/performance.md: add's peak RSS stays under 256 MiB, flat in the input size
      const input = join(work, 'memory.bin')
      await generate(input, memorySize)
      const repo = join(work, 'repo-memory')
      await measure('init', 'cairn', 0, process.execPath, [BIN, '--repo', repo, 'init'])
      const r = await measure(`add ${memorySize / 1024 / MiB} GiB (memory)`, 'cairn add', memorySize, process.execPath, [BIN, '--repo', repo, '--json', 'add', input])
      results.push(r)
      process.stderr.write(`  ${r.name.padEnd(28)}           ${r.mibPerSec.toFixed(1).padStart(8)} MiB/s  ${String(r.peakRssMiB ?? '?').padStart(5)} MiB RSS\n`)
      await rm(repo, { recursive: true, force: true })
      await rm(input, { force: true })
    }
    if (!argv.includes('--no-ledger')) {
      const { benchLedger } = await import('./ledger.js')
      ledger = await benchLedger(work, 20_000)
    }
    if (!argv.includes('--no-cluster')) {
      // PostgreSQL beside LevelDB: a throwaway server with its defaults, or CAIRN_BENCH_PG_URL
      const { benchCluster } = await import('./cluster.js')
      cluster = await benchCluster(work, 20_000)
    }
    if (!argv.includes('--no-proofs')) {
      const { benchProofs } = await import('./proofs.js')
      proofs = await benchProofs(parseSize(opt('--proof-size') ?? '1G'), { dir: work, rounds: 30 })
    }
    if (!argv.includes('--no-ask')) {
      // GET /v1/ask and /metrics must stay flat as the ledger grows
      const { benchAsk, askLine } = await import('./ask.js')
      ask = []
      for (const deals of (opt('--ask-deals') ?? '10,1000,100000').split(',').map(Number)) {
        const r = await benchAsk(work, deals)
        process.stderr.write(`  ${askLine(r)}\n`)
        ask.push(r)
      }
    }
    if (!argv.includes('--no-routing')) {
      // lookups at an indexer holding 1 M multihashes; announcing a 1 GiB DAG's 4,100 blocks (docs/routing.md)
      const { benchRouting, parseCount } = await import('./routing.js')
      routing = await benchRouting(work, { multihashes: parseCount(opt('--routing-multihashes') ?? '1M') })
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  report(results)
  if (ledger !== undefined) process.stdout.write(`\nledger: ${JSON.stringify(ledger)}\n`)
  if (proofs !== undefined) process.stdout.write(`\nproofs: ${JSON.stringify(proofs)}\n`)
  for (const e of encrypt) process.stdout.write(`\nadd --encrypt ÷ add, ${e.label}: median ${(e.median * 100).toFixed(1)} % (range ${(e.min * 100).toFixed(1)}–${(e.max * 100).toFixed(1)} %, ${e.pairs} alternating pairs)\n`)
  if (routing !== undefined) process.stdout.write(`\nrouting: ${JSON.stringify(routing)}\n`)
  if (cluster !== undefined) process.stdout.write(`\ncluster: ${JSON.stringify(cluster)}\n`)
  if (ask !== undefined) process.stdout.write(`\nask: ${JSON.stringify(ask)}\n`)
  await mkdir(join(ROOT, 'bench'), { recursive: true })
  await writeFile(join(ROOT, 'bench', 'results.json'), JSON.stringify({
    date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, results, ledger, proofs, encrypt, routing, cluster, ask
  }, null, 2) + '\n')
}

/** One row per measure: cairn's figure, each peer's on the same input, and the ratio. */
function report (results: Measure[]): void {
  const rows: string[] = ['| measure | tool | MiB/s | peak RSS MiB | cairn ÷ tool |', '|---|---|---:|---:|---:|']
  for (const name of [...new Set(results.map(r => r.name))]) {
    const group = results.filter(r => r.name === name)
    const ours = group.find(r => r.tool.startsWith('cairn'))
    for (const r of group) {
      const ratio = ours !== undefined && r !== ours ? `${(ours.mibPerSec / r.mibPerSec).toFixed(2)}×` : ''
      rows.push(`| ${name} | ${r.tool} | ${r.mibPerSec.toFixed(1)} | ${r.peakRssMiB ?? '?'} | ${ratio} |`)
    }
  }
  process.stdout.write(rows.join('\n') + '\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main()
