/**
 * Upload to a provider on loopback (the provider verifying every block and the
 * piece CID as the body streams) and `cairn get` of the same content (every
 * block verified, files written), beside plain HTTP moving the same bytes.
 * Targets (docs/performance.md): upload ≥ 100 MiB/s, get ≥ 300 MiB/s on 1 GiB. Beside the
 * deal upload, the same bytes go through the PDP API with synapse-core's
 * streaming upload (bench/pdp-upload.ts; docs/pdp.md).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { rm, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { measure, type Measure } from './measure.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'cairn.js')
const RAW = join(ROOT, 'dist', 'bench', 'raw-http.js')
const PDP = join(ROOT, 'dist', 'bench', 'pdp-upload.js')
/** The largest piece the PDP API takes (1 GiB padded). */
const MAX_PDP_PIECE = 1_065_353_216

/** Starts a long-running process that prints one JSON line naming its URL. */
async function serve (args: string[]): Promise<{ url: string, child: ChildProcess }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] })
  const lines = createInterface({ input: child.stdout! })
  for await (const line of lines) {
    const { url } = JSON.parse(line) as { url: string }
    return { url: url.replace(/\/$/, ''), child }
  }
  throw new Error(`${args.join(' ')} printed no URL`)
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await once(child, 'close')
}

async function cli (args: string[]): Promise<string> {
  const r = await measure(args.join(' '), 'cairn', 0, process.execPath, [BIN, ...args])
  return r.output
}

export async function benchTransfer (work: string, input: string, label: string): Promise<Measure[]> {
  const results: Measure[] = []
  const provider = join(work, 'transfer-provider')
  const client = join(work, 'transfer-client')
  const fetcher = join(work, 'transfer-fetcher')
  for (const repo of [provider, client, fetcher]) await cli(['--repo', repo, 'init'])
  const added = JSON.parse(await cli(['--repo', client, '--json', 'add', input])) as { root: string, piece: { payloadSize: number } }
  const root = added.root
  const carBytes = added.piece.payloadSize
  const node = await serve([BIN, '--repo', provider, '--json', 'provider', 'start', '--listen', '127.0.0.1:0', '--price', '1', '--max-piece-size', '64GiB', '--capacity', '1TiB'])
  try {
    // other requests are served during the upload: their latency, and the
    // provider's own event-loop delay, show whether verifying blocks it
    let probing = true
    let slowestHealthzMs = 0
    const probe = (async () => {
      while (probing) {
        const started = performance.now()
        await fetch(`${node.url}/healthz`).then(async r => await r.arrayBuffer())
        slowestHealthzMs = Math.max(slowestHealthzMs, performance.now() - started)
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
    const upload = await measure(`upload ${label}`, 'cairn deal (provider verifying)', carBytes, process.execPath,
      [BIN, '--repo', client, '--json', 'deal', root, '--provider', node.url, '--max-price', '1'])
    probing = false
    await probe
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) * 1000
    const loopMax = gauge('cairn_event_loop_delay_max_seconds')
    const loopP99 = gauge('cairn_event_loop_delay_p99_seconds')
    const round = (ms: number): number => Math.round(ms * 10) / 10
    upload.notes = { providerEventLoopDelayMaxMs: round(loopMax), providerEventLoopDelayP99Ms: round(loopP99), slowestHealthzDuringUploadMs: round(slowestHealthzMs) }
    process.stderr.write(`  during the upload: provider event-loop delay max ${loopMax.toFixed(1)} ms (p99 ${loopP99.toFixed(1)} ms), slowest /healthz ${slowestHealthzMs.toFixed(1)} ms\n`)
    results.push(upload)
    // the same bytes through the PDP API, as a Filecoin Onchain Cloud client sends them (at most the largest PDP piece)
    const pdpBytes = Math.min((await stat(input)).size, MAX_PDP_PIECE)
    const pdpCid = (await measure('pdp piece cid', 'cairn', 0, process.execPath, [PDP, 'cid', input, String(pdpBytes)])).output.trim()
    const pdp = await measure(`upload ${label}`, 'synapse-core → cairn PDP (streaming)', pdpBytes, process.execPath, [PDP, 'upload', node.url, input, String(pdpBytes), pdpCid])
    if ((JSON.parse(pdp.output) as { pieceCid: string }).pieceCid !== pdpCid) throw new Error('the PDP upload stored another piece')
    results.push(pdp)
    const out = join(work, 'transfer-out')
    results.push(await measure(`get ${label}`, 'cairn get (verified)', carBytes, process.execPath,
      [BIN, '--repo', fetcher, '--json', 'get', root, '--provider', node.url, '-o', out]))
    if ((await stat(out)).size !== (await stat(input)).size) throw new Error('cairn get wrote the wrong number of bytes')
    await rm(out, { force: true })
  } finally {
    await stop(node.child)
  }
  const raw = await serve([RAW, 'serve', input])
  try {
    const size = (await stat(input)).size
    results.push(await measure(`upload ${label}`, 'plain HTTP PUT (undici → node:http)', size, process.execPath, [RAW, 'put', raw.url, input]))
    const out = join(work, 'raw-out')
    results.push(await measure(`get ${label}`, 'plain HTTP GET (node:http → undici → file)', size, process.execPath, [RAW, 'get', raw.url, out]))
    await rm(out, { force: true })
  } finally {
    await stop(raw.child)
  }
  for (const repo of [provider, client, fetcher]) await rm(repo, { recursive: true, force: true })
  return results
}
