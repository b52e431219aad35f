/**
 * /metrics (prom-client): proof latency histograms and proofs by outcome,
 * capacity, retrieval bytes, the standard process metrics; a client that
 * hangs up mid-retrieval is counted as an aborted request, not ERR_INTERNAL.
 */
import test from 'ava'
import { request } from 'node:http'
import { auditDeal } from '../../src/client/audit.js'
import { world } from '../audit/helpers.js'

function sample (text: string, name: string, labels = ''): number | undefined {
  const escaped = `${name}${labels}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

test('metrics: proofs by outcome with a latency histogram, capacity, retrieval bytes and process metrics', async t => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const p = w.providers[0]!
  const deal = await w.deal(0, { bytes: 200_000 })
  const audit = await auditDeal(w.ctx, deal, { timeoutMs: 10_000, retries: 0, backoffMs: 10, challenges: 8 })
  t.is(audit.outcome, 'passed')
  // a refused challenge: a deal the provider does not have
  const refused = await fetch(`${p.url}/v1/deals/bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmlkmhzcqu/proofs`, { method: 'POST', body: JSON.stringify({ seed: { '/': { bytes: Buffer.alloc(32).toString('base64').replace(/=+$/, '') } }, count: 1 }), headers: { 'content-type': 'application/json' } })
  t.is(refused.status, 404)
  const car = await fetch(`${p.url}/ipfs/${deal.proposal.payloadCid.toString()}?dag-scope=all`, { headers: { accept: 'application/vnd.ipld.car' } })
  const carBytes = (await car.arrayBuffer()).byteLength
  t.true(carBytes > 200_000)

  const text = await (await fetch(`${p.url}/metrics`)).text()
  t.is(sample(text, 'cairn_proofs_total', '{outcome="answered"}'), 1)
  t.is(sample(text, 'cairn_proofs_total', '{outcome="refused"}'), 1)
  t.regex(text, /^# TYPE cairn_proof_duration_seconds histogram$/m)
  t.is(sample(text, 'cairn_proof_duration_seconds_count', '{outcome="answered"}'), 1)
  t.is(sample(text, 'cairn_proof_duration_seconds_bucket', '{le="+Inf",outcome="answered"}'), 1)
  t.true((sample(text, 'cairn_proof_duration_seconds_sum', '{outcome="answered"}') ?? -1) > 0)
  t.is(sample(text, 'cairn_capacity_bytes', '{kind="total"}'), Number(p.terms.capacity))
  const used = sample(text, 'cairn_capacity_bytes', '{kind="used"}') ?? 0
  t.true(used > 0)
  t.is(sample(text, 'cairn_capacity_bytes', '{kind="free"}'), Number(p.terms.capacity) - used)
  t.is(sample(text, 'cairn_retrieval_bytes_total', '{kind="car"}'), carBytes)
  t.true((sample(text, 'process_resident_memory_bytes') ?? 0) > 0)
  t.true((sample(text, 'process_cpu_seconds_total') ?? -1) >= 0)
  t.regex(text, /^nodejs_heap_size_used_bytes \d+/m)
  t.regex(text, /^cairn_event_loop_delay_max_seconds \S+$/m)
  t.is(p.service.metrics.recentProofs.length, 2)
  t.like(p.service.metrics.recentProofs[0], { outcome: 'answered', deal: deal.id.toString() })
})

test('a client that hangs up mid-retrieval is an aborted request, not ERR_INTERNAL', async t => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const p = w.providers[0]!
  const deal = await w.deal(0, { bytes: 24 << 20 })
  const url = new URL(`${p.url}/ipfs/${deal.proposal.payloadCid.toString()}?dag-scope=all`)
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const req = request(url, { headers: { accept: 'application/vnd.ipld.car' } }, (res) => {
        let got = 0
        res.on('data', (chunk: Buffer) => {
          got += chunk.length
          // the client reads the first bytes, then goes away
          if (got > 64 * 1024) { req.destroy(); resolve() }
        })
        res.on('end', resolve)
      })
      req.on('error', () => resolve())
      req.end()
    })
  }
  let text = ''
  for (let i = 0; i < 100; i++) {
    text = await (await fetch(`${p.url}/metrics`)).text()
    if ((sample(text, 'cairn_http_requests_aborted_total', '{route="/ipfs/:cid/*path"}') ?? 0) >= 3) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.is(sample(text, 'cairn_http_requests_aborted_total', '{route="/ipfs/:cid/*path"}'), 3)
  t.is(sample(text, 'cairn_errors_total', '{code="ERR_INTERNAL"}'), undefined)
})
