/**
 * Alert delivery: the command gets the alert on stdin and in CAIRN_ALERT_*,
 * a failing or hung command is ERR_ALERT_FAILED within its bound; the
 * webhook retries what a busy receiver answers and stops on a refusal.
 */
import test from 'ava'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Alert } from '../../src/alerts/interface.js'
import { execSink, parseWebhookUrl, webhookSink } from '../../src/alerts/sinks.js'

const ALERT: Alert = {
  version: 1,
  event: 'open',
  id: '0123456789abcdef',
  source: 'audit',
  kind: 'failed',
  provider: 'did:key:z6MkTest',
  deal: 'bafydeal',
  summary: 'deal bafydeal failed its proof for period 3',
  startedAt: '2026-01-01T00:00:00.000Z',
  at: '2026-01-01T00:00:00.000Z',
  evidence: { period: 3 }
}

test('exec: the alert as JSON on stdin and its fields in CAIRN_ALERT_*', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-alert-exec-'))
  try {
    const out = join(dir, 'got')
    await execSink(`cat > ${out}.json; printf '%s %s %s' "$CAIRN_ALERT_EVENT" "$CAIRN_ALERT_ID" "$CAIRN_ALERT_DEAL" > ${out}.env`).deliver(ALERT)
    t.deepEqual(JSON.parse(await readFile(`${out}.json`, 'utf8')), ALERT)
    t.is(await readFile(`${out}.env`, 'utf8'), 'open 0123456789abcdef bafydeal')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('exec: a non-zero exit is ERR_ALERT_FAILED with the end of its stderr', async (t) => {
  const err = await t.throwsAsync(execSink('echo no pager configured >&2; exit 7').deliver(ALERT))
  t.is((err as { code?: string }).code, 'ERR_ALERT_FAILED')
  t.regex(err?.message ?? '', /status 7: no pager configured/)
})

test('exec: a command still running at its bound is killed, with what it started', async (t) => {
  const err = await t.throwsAsync(execSink('sleep 30 & wait', 200).deliver(ALERT))
  t.is((err as { code?: string }).code, 'ERR_ALERT_FAILED')
  t.regex(err?.message ?? '', /still running after 200 ms/)
})

test('exec: a command that ignores stdin is delivered', async (t) => {
  await t.notThrowsAsync(execSink('true').deliver(ALERT))
})

test('exec: an empty command is refused', (t) => {
  t.is(t.throws(() => execSink('  '))?.message.includes('--alert-exec'), true)
  t.is((t.throws(() => execSink('')) as { code?: string }).code, 'ERR_INVALID_ARGUMENT')
})

async function receiver (answer: (n: number, req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ url: string, bodies: string[], close: () => Promise<void> }> {
  const bodies: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => { bodies.push(body); answer(bodies.length, req, res, body) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/hook`, bodies, close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) } }
}

test('webhook: a 503 is tried again, then the 2xx delivers; the header names the alert', async (t) => {
  const headers: string[] = []
  const r = await receiver((n, req, res) => { headers.push(String(req.headers['x-cairn-alert'])); res.statusCode = n < 3 ? 503 : 204; res.end() })
  try {
    await webhookSink(r.url, { backoffMs: 10, attempts: 3 }).deliver(ALERT)
    t.is(r.bodies.length, 3)
    t.deepEqual(JSON.parse(r.bodies[2] as string), ALERT)
    t.deepEqual(headers, Array(3).fill('0123456789abcdef open'))
  } finally {
    await r.close()
  }
})

test('webhook: a 400 is final, not retried: ERR_ALERT_FAILED', async (t) => {
  const r = await receiver((_n, _req, res) => { res.statusCode = 400; res.end() })
  try {
    const err = await t.throwsAsync(webhookSink(r.url, { backoffMs: 10, attempts: 5 }).deliver(ALERT))
    t.is((err as { code?: string }).code, 'ERR_ALERT_FAILED')
    t.regex(err?.message ?? '', /HTTP 400/)
    t.is(r.bodies.length, 1)
  } finally {
    await r.close()
  }
})

test('webhook: a receiver that never answers costs attempts × timeout, then ERR_ALERT_FAILED', async (t) => {
  // a timeout long enough for each attempt's body to reach the receiver on a loaded machine
  const r = await receiver(() => {})
  try {
    const err = await t.throwsAsync(webhookSink(r.url, { timeoutMs: 1000, backoffMs: 10, attempts: 2 }).deliver(ALERT))
    t.is((err as { code?: string }).code, 'ERR_ALERT_FAILED')
    t.regex(err?.message ?? '', /no answer within 1000 ms/)
    t.is(r.bodies.length, 2)
  } finally {
    await r.close()
  }
})

test('webhook: only http and https URLs', (t) => {
  for (const bad of ['ftp://example.org/x', 'not a url', 'file:///etc/passwd']) {
    t.is((t.throws(() => parseWebhookUrl(bad)) as { code?: string }).code, 'ERR_INVALID_ARGUMENT', bad)
  }
  t.is(parseWebhookUrl('https://alerts.example/cairn').host, 'alerts.example')
})
