/**
 * Upload to a provider on loopback (the provider verifying every block and the
 * piece CID as the body streams) and `cairn get` of the same content (every
 * block verified; files written, or the CAR to stdout), beside plain HTTP
 * moving the same bytes. Beside the deal upload, the same bytes go through the
 * PDP API with synapse-core's streaming upload (bench/pdp-upload.ts;
 * docs/pdp.md).
 *
 * Each deal upload goes to a provider started just before it (unmeasured), so
 * that the provider's event-loop gauges, which cover the time since its start,
 * describe that upload alone; a prober asks for `/healthz` every 20 ms during
 * the upload, as other clients would.
 */
import { join } from 'node:path'
import { rm, stat } from 'node:fs/promises'
import { measure, type Measure } from './measure.js'
import type { Pair } from './pairs.js'
import { BIN, RAW_HTTP, ROOT, type SizeContext } from './plan.js'
import { eventLoop, serve, startProvider, stop, type Served } from './processes.js'

const PDP = join(ROOT, 'dist', 'bench', 'pdp-upload.js')
/** The largest piece the PDP API takes (1 GiB padded). */
const MAX_PDP_PIECE = 1_065_353_216
/** The provider's payee, which a PDP client signs into its CreateDataSet. */
const PAYEE = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a'

async function cli (args: string[]): Promise<string> {
  return (await measure(args.join(' '), 'cairn', 0, process.execPath, [BIN, ...args])).output
}

/** Asks for `/healthz` every 20 ms until stopped; the slowest answer, ms. */
function probe (url: string): { stop: () => Promise<number> } {
  let probing = true
  let slowest = 0
  const loop = (async () => {
    while (probing) {
      const started = performance.now()
      await fetch(`${url}/healthz`).then(async r => await r.arrayBuffer())
      slowest = Math.max(slowest, performance.now() - started)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  })()
  return { stop: async () => { probing = false; await loop; return slowest } }
}

const round = (ms: number): number => Math.round(ms * 10) / 10

export async function transferPairs (ctx: SizeContext): Promise<{ pairs: Pair[], close: () => Promise<void> }> {
  const { work, input, size, label } = ctx
  const providerRepo = join(work, 'transfer-provider')
  const client = join(work, 'transfer-client')
  const fetcher = join(work, 'transfer-fetcher')
  for (const repo of [providerRepo, client, fetcher]) await cli(['--repo', repo, 'init'])
  const added = JSON.parse(await cli(['--repo', client, '--json', 'add', input])) as { root: string, payloadSize: number }
  const root = added.root
  const carBytes = added.payloadSize
  const pdpBytes = Math.min(size, MAX_PDP_PIECE)
  const pdpCid = (await measure('pdp piece cid', 'cairn', 0, process.execPath, [PDP, 'cid', input, String(pdpBytes)])).output.trim()
  const raw = await serve([RAW_HTTP, 'serve', input])

  let provider: Served | undefined
  const restart = async (): Promise<Served> => {
    if (provider !== undefined) await stop(provider.child)
    provider = await startProvider(providerRepo, ['--payee', PAYEE])
    return provider
  }
  const running = async (): Promise<Served> => provider ?? await restart()
  const url = (): string => {
    if (provider === undefined) throw new Error('the provider is not running')
    return provider.url
  }
  let prober: ReturnType<typeof probe> | undefined

  const what = 'wall time of the whole command in its own process; MiB/s of the bytes sent'
  const given = `${label} of AES-CTR bytes: its CAR (${carBytes} bytes) for cairn, the file for plain HTTP`
  const plainPut = { tool: 'plain HTTP PUT (undici → node:http)', cmd: process.execPath, args: [RAW_HTTP, 'put', raw.url, input], bytes: size }
  const out = join(work, 'transfer-out')
  const rawOut = join(work, 'raw-out')
  const pairs: Pair[] = [
    {
      name: `upload ${label}`,
      what: `${what}; the provider verifies every block, the DAG and CommP while the body streams, and stores the piece`,
      input: given,
      cairn: {
        tool: 'cairn deal (provider verifying)',
        cmd: process.execPath,
        args: () => [BIN, '--repo', client, '--json', 'deal', root, '--provider', url(), '--max-price', '1'],
        bytes: carBytes,
        before: async () => { prober = probe((await restart()).url) },
        after: async () => {
          const slowest = await prober?.stop() ?? NaN
          const loop = await eventLoop(url())
          // stopped, so that the peer's run does not share the machine with an idle provider
          await stop((provider as Served).child)
          provider = undefined
          return { providerEventLoopDelayMaxMs: round(loop.maxMs), providerEventLoopDelayP99Ms: round(loop.p99Ms), slowestHealthzDuringUploadMs: round(slowest) }
        }
      },
      peer: plainPut,
      noteLabels: {
        providerEventLoopDelayMaxMs: 'provider event-loop delay during the upload: max, ms',
        providerEventLoopDelayP99Ms: 'p99, ms',
        slowestHealthzDuringUploadMs: 'slowest /healthz, ms'
      }
    },
    {
      // the same bytes through the PDP API, as a Filecoin Onchain Cloud client sends them (at most the largest PDP piece)
      name: `upload ${label}`,
      what: `${what}; synapse-core streams at most ${MAX_PDP_PIECE} bytes, the provider computes CommP and stores the raw piece`,
      input: `the first ${pdpBytes} bytes of the file for the PDP upload, the whole file for plain HTTP`,
      cairn: {
        tool: 'synapse-core → cairn PDP (streaming)',
        cmd: process.execPath,
        args: () => [PDP, 'upload', url(), input, String(pdpBytes), pdpCid],
        bytes: pdpBytes,
        before: async () => { await running() },
        after: async (run: Measure) => {
          if ((JSON.parse(run.output) as { pieceCid: string }).pieceCid !== pdpCid) throw new Error('the PDP upload stored another piece')
          // the uploaded piece into a data set (create, add pieces, each confirmed), then its first proof
          const dataSet = await measure(`pdp data set ${label}`, 'synapse-core createDataSet + addPieces, first proof', 0, process.execPath, [PDP, 'data-set', url(), PAYEE, pdpCid])
          const { createMs, addPiecesMs, firstProofMs } = JSON.parse(dataSet.output) as Record<string, number>
          return { dataSetCreateMs: createMs, dataSetAddPiecesMs: addPiecesMs, dataSetFirstProofMs: firstProofMs }
        }
      },
      peer: plainPut,
      noteLabels: {
        dataSetCreateMs: 'then createDataSet, confirmed: ms',
        dataSetAddPiecesMs: 'addPieces of that piece, confirmed: ms',
        dataSetFirstProofMs: 'first proof of 16 challenges: ms'
      }
    },
    {
      name: `get ${label}`,
      what: `${what}; cairn verifies every block and writes the file, plain HTTP writes the body to a file`,
      input: given,
      cairn: {
        tool: 'cairn get (verified)',
        cmd: process.execPath,
        args: () => [BIN, '--repo', fetcher, '--json', 'get', root, '--provider', url(), '-o', out],
        bytes: carBytes,
        before: async () => { await running() },
        after: async (run: Measure) => {
          // a get answered from the fetcher's own repo would measure no transfer
          if ((JSON.parse(run.output) as { source: { kind: string } }).source.kind !== 'provider') throw new Error('cairn get did not fetch from the provider')
          if ((await stat(out)).size !== size) throw new Error('cairn get wrote the wrong number of bytes')
          await rm(out, { force: true })
        }
      },
      peer: {
        tool: 'plain HTTP GET (node:http → undici → file)',
        cmd: process.execPath,
        args: [RAW_HTTP, 'get', raw.url, rawOut],
        bytes: size,
        after: async () => { await rm(rawOut, { force: true }) }
      }
    },
    {
      name: `get --car - ${label}`,
      what: `${what}; cairn verifies every block and writes the CAR to stdout, plain HTTP writes the body to stdout (both a pipe the bench drains)`,
      input: given,
      cairn: {
        tool: 'cairn get --car - (verified)',
        cmd: process.execPath,
        args: () => [BIN, '--repo', fetcher, '--quiet', 'get', root, '--provider', url(), '--car', '-'],
        bytes: carBytes,
        stdout: 'count',
        before: async () => { await running() },
        after: async (run: Measure) => {
          if (run.stdoutBytes !== carBytes) throw new Error(`cairn get --car - wrote ${run.stdoutBytes} bytes, the CAR has ${carBytes}`)
        }
      },
      peer: {
        tool: 'plain HTTP GET (node:http → undici → stdout)',
        cmd: process.execPath,
        args: [RAW_HTTP, 'get', raw.url, '-'],
        bytes: size,
        stdout: 'count',
        after: async (run: Measure) => {
          if (run.stdoutBytes !== size) throw new Error(`plain GET wrote ${run.stdoutBytes} bytes of ${size}`)
        }
      }
    }
  ]
  return {
    pairs,
    close: async () => {
      await prober?.stop()
      if (provider !== undefined) await stop(provider.child)
      await stop(raw.child)
      for (const repo of [providerRepo, client, fetcher]) await rm(repo, { recursive: true, force: true })
    }
  }
}
