/**
 * Alerts end to end on loopback: a real provider whose piece is corrupted on
 * disk fails its proof; `watch`, wired as `cairn watch --alert-webhook`
 * wires it, posts exactly one 'open' alert to a receiver on 127.0.0.1; the
 * piece is put back, the next proof passes and exactly one 'resolved' alert
 * follows, with the same id. A watch started again on the same repo sends
 * nothing more. The body is the shape docs/monitoring.md documents.
 */
import test from 'ava'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { watch, type WatchOptions } from '../../src/client/watch.js'
import type { AuditResult } from '../../src/client/audit.js'
import { AlertMonitor } from '../../src/alerts/monitor.js'
import { webhookSink } from '../../src/alerts/sinks.js'
import type { Alert } from '../../src/alerts/interface.js'
import { world, type TestProvider } from '../audit/helpers.js'

const OPEN_FIELDS = ['at', 'deal', 'event', 'evidence', 'id', 'kind', 'piece', 'provider', 'source', 'startedAt', 'summary', 'version']

test('watch --alert-webhook: one open alert when a provider starts failing proofs, one resolved alert when it passes again, none after a restart', async (t) => {
  const received: Array<{ alert: Alert, header: string | undefined, type: string | undefined }> = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      received.push({ alert: JSON.parse(body) as Alert, header: req.headers['x-cairn-alert'] as string | undefined, type: req.headers['content-type'] })
      res.statusCode = 204
      res.end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const hook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`
  const w = await world(1)
  try {
    const deal = await w.deal(0)
    const path = (w.providers[0] as TestProvider).store.path(deal.proposal.pieceCid.toString())
    const original = await readFile(path)
    const monitorOptions = { sinks: [webhookSink(hook, { timeoutMs: 2000, backoffMs: 50 })], expiringMs: 3_600_000 }
    const base: WatchOptions = { tickMs: 50, window: 0.4, timeoutMs: 1500, retries: 0, until: Date.now() + 60_000 }

    const monitor = await AlertMonitor.open(w.client.db, w.client.ledger, monitorOptions)
    const outcomes: string[] = []
    const controller = new AbortController()
    let change = Promise.resolve()
    await watch(w.ctx, {
      ...base,
      signal: controller.signal,
      onDeals: (deals) => { monitor.deals(deals) },
      onResult: (r: AuditResult) => {
        outcomes.push(r.outcome)
        if (outcomes.length === 1 && r.outcome === 'passed') {
          // the provider starts losing bytes after its first proven period
          change = writeFile(path, Buffer.concat([original.subarray(0, 64), Buffer.alloc(original.length - 64, 0x5a)]))
        } else if (r.outcome === 'failed') {
          // and gets them back (say, from its own backup) before the next one
          change = change.then(async () => { await writeFile(path, original) })
        } else if (r.outcome === 'passed' && outcomes.includes('failed')) {
          controller.abort()
        }
      },
      afterResult: async (d, r) => { monitor.audit(d, r) }
    })
    await change
    await monitor.flush()
    t.deepEqual(outcomes, ['passed', 'failed', 'passed'])
    t.deepEqual(received.map(r => r.alert.event), ['open', 'resolved'])
    const [open, resolved] = received.map(r => r.alert) as [Alert, Alert]
    t.deepEqual(Object.keys(open).sort(), OPEN_FIELDS)
    t.deepEqual(Object.keys(resolved).sort(), [...OPEN_FIELDS, 'endedAt', 'resolution'].sort())
    t.is(open.version, 1)
    t.is(open.source, 'audit')
    t.is(open.kind, 'failed')
    t.is(open.deal, deal.id.toString())
    t.is(open.provider, deal.provider)
    t.is(open.piece, deal.proposal.pieceCid.toString())
    t.regex(open.id, /^[0-9a-f]{16}$/)
    t.is(resolved.id, open.id)
    t.is(typeof open.evidence.code, 'string')
    t.is(open.evidence.outcome, 'failed')
    t.regex(resolved.resolution ?? '', /passed its proof for period \d+/)
    t.true(Date.parse(resolved.endedAt ?? '') >= Date.parse(open.startedAt))
    t.deepEqual(received.map(r => r.header), [`${open.id} open`, `${open.id} resolved`])
    t.deepEqual(received.map(r => r.type), ['application/json', 'application/json'])
    t.deepEqual(monitor.counts, { opened: 1, resolved: 1, sent: 2, failed: 0 })

    // a watch started again on the same repo: the incident is over, nothing is sent again
    const again = await AlertMonitor.open(w.client.db, w.client.ledger, monitorOptions)
    await watch(w.ctx, { ...base, maxPeriods: 1, onDeals: (deals) => { again.deals(deals) }, afterResult: async (d, r) => { again.audit(d, r) } })
    await again.flush()
    t.is(received.length, 2)
  } finally {
    await w.cleanup()
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
})
