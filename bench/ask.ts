/**
 * `GET /v1/ask` and `GET /metrics` latency as a provider's ledger grows: both
 * read the provider's totals from an index kept in the same batch as each
 * ledger entry, so they must stay flat from 10 to 100,000 deals (p99 ≤ 10 ms).
 *
 * The deals are made directly through the ledger, as the deal service records
 * them — a client-signed proposal in each `deal-accepted`, then `deal-active`
 * for nine in ten — without uploading pieces (the ask and the metrics read no
 * piece). Requests are sent one at a time over one keep-alive connection.
 *
 *   node dist/bench/ask.js [10,1000,100000]
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { CID } from 'multiformats/cid'
import { pieceCidV2 } from '../proofs/index.js'
import { signProposal } from '../src/protocol/proposal.js'
import { dealIdOf } from '../src/protocol/proposal.js'
import { createSigner } from '../src/protocol/signing.js'
import type { AppendItem } from '../src/ledger/interface.js'
import { providerTerms } from '../src/provider/terms.js'
import { startProviderNode } from '../src/provider/node.js'
import { Repo } from '../src/repo/repo.js'

export interface AskBench {
  deals: number
  /** seconds spent making the deals (not measured against anything) */
  fillSeconds: number
  ask: { p50Ms: number, p99Ms: number, maxMs: number }
  metrics: { p50Ms: number, p99Ms: number, maxMs: number }
}

const PAYLOAD = CID.parse('bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

async function latencies (url: string, dispatcher: Agent, count: number): Promise<AskBench['ask']> {
  const times: number[] = []
  for (let i = 0; i < count + 20; i++) {
    const started = performance.now()
    const res = await request(url, { dispatcher })
    await res.body.arrayBuffer()
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`)
    if (i >= 20) times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)
  const round = (n: number): number => Math.round(n * 1000) / 1000
  return { p50Ms: round(percentile(times, 0.5)), p99Ms: round(percentile(times, 0.99)), maxMs: round(times.at(-1) as number) }
}

export async function benchAsk (dir: string, deals: number, requests = 1000): Promise<AskBench> {
  const repo = await Repo.init(join(dir, `ask-${deals}`))
  try {
    const ledger = (await import('../src/ledger/level.js')).LevelLedger
    const db = await repo.db()
    const providerLedger = await ledger.open(db, repo.identity)
    const client = createSigner(randomBytes(32))
    const now = Math.floor(Date.now() / 1000)
    const started = performance.now()
    let unit: AppendItem[] = []
    const pending: Array<Promise<unknown>> = []
    for (let i = 0; i < deals; i++) {
      const pieceSize = 1n << 20n
      const proposal = {
        pieceCid: pieceCidV2(new Uint8Array(randomBytes(32)), 15, 0n),
        pieceSize,
        payloadCid: PAYLOAD,
        payloadSize: pieceSize / 128n * 127n,
        client: client.did,
        provider: repo.identity.did,
        label: `deal ${i}`,
        start: now + 600,
        end: now + 600 + 180 * 86400,
        pricePerGiBDay: 40n,
        providerCollateral: 0n,
        clientCollateral: 0n,
        provingPeriod: 86400,
        challenges: 16,
        nonce: BigInt(i + 1),
        head: null
      }
      const signed = signProposal(client, proposal)
      const deal = dealIdOf(signed)
      const p = signed.payload
      unit.push({
        kind: 'deal-accepted',
        // the fields ProviderDeals records on acceptance (src/provider/deals.ts)
        fields: { deal, client: p.client, provider: p.provider, nonce: p.nonce, pieceCid: p.pieceCid, payloadCid: p.payloadCid, pieceSize: p.pieceSize, payloadSize: p.payloadSize, start: p.start, end: p.end, uploadBy: p.start, challenges: p.challenges, proposal: { payload: p, signer: signed.signer, signature: signed.signature } }
      })
      if (i % 10 !== 0) {
        unit.push({ kind: 'deal-active', fields: { deal, pieceCid: p.pieceCid, payloadCid: p.payloadCid, payloadSize: p.payloadSize, blocks: 5 } })
      }
      if (unit.length >= 400 || i === deals - 1) {
        pending.push(providerLedger.appendAll(unit))
        unit = []
        if (pending.length >= 4) await pending.shift()
      }
    }
    await Promise.all(pending)
    await providerLedger.flush()
    const fillSeconds = (performance.now() - started) / 1000
    const node = await startProviderNode(repo, providerTerms({ maxPieceSize: 1n << 35n, capacity: 1n << 50n }))
    const dispatcher = new Agent({ connections: 1 })
    // let the collector finish with what filling the ledger left before measuring
    await new Promise(resolve => setTimeout(resolve, 1000))
    try {
      const ask = await latencies(`${node.url}/v1/ask`, dispatcher, requests)
      const metrics = await latencies(`${node.url}/metrics`, dispatcher, requests)
      const stats = await node.ledger.stats()
      const held = Object.values(stats.deals).reduce((n, c) => n + (c ?? 0), 0)
      if (held !== deals) throw new Error(`the provider counts ${held} deals, ${deals} were made`)
      return { deals, fillSeconds: Math.round(fillSeconds * 10) / 10, ask, metrics }
    } finally {
      await dispatcher.close()
      await node.close()
    }
  } finally {
    await repo.close()
    await rm(join(dir, `ask-${deals}`), { recursive: true, force: true })
  }
}

export function askLine (r: AskBench): string {
  return `ask ${String(r.deals).padStart(7)} deals: GET /v1/ask p50 ${r.ask.p50Ms} ms p99 ${r.ask.p99Ms} ms; GET /metrics p50 ${r.metrics.p50Ms} ms p99 ${r.metrics.p99Ms} ms (target p99 ≤ 10 ms, flat; ${r.fillSeconds} s to make the deals)`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const counts = (process.argv[2] ?? '10,1000,100000').split(',').map(Number)
  const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-ask-'))
  try {
    for (const n of counts) console.log(askLine(await benchAsk(dir, n)))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
