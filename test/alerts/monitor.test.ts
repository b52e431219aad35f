/**
 * Incidents and their alerts without a network: exactly one 'open' and one
 * 'resolved' per incident, also across a restart on the same database, for
 * each source (audits, anomalies, forecasts, expiring pieces, repairs).
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import type { AuditDeal, AuditResult } from '../../src/client/audit.js'
import type { Alert, AlertSink } from '../../src/alerts/interface.js'
import { AlertMonitor, type MonitorOptions } from '../../src/alerts/monitor.js'
import type { Proposal } from '../../src/protocol/interface.js'
import type { Database } from '../../src/repo/repo.js'
import { CairnError } from '../../src/errors.js'

const PROVIDER = 'did:key:z6MkProviderUnderTest'
const noLedger = { log: async function * () {} }

async function cid (text: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text)))
}

async function fakeDeal (name: string, endSec: number, piece = name): Promise<AuditDeal> {
  const proposal = { pieceCid: await cid(`piece ${piece}`), end: endSec, start: 0, provingPeriod: 60 } as unknown as Proposal
  return { id: await cid(`deal ${name}`), provider: PROVIDER, endpoint: 'http://127.0.0.1:1', proposal, state: 'active' }
}

function result (deal: AuditDeal, outcome: AuditResult['outcome'], period: number, ms = 100): AuditResult {
  return { deal: deal.id.toString(), provider: deal.provider, endpoint: deal.endpoint, period, outcome, count: 8, attempts: [], ms, counted: true, ...(outcome === 'passed' ? {} : { code: outcome === 'failed' ? 'ERR_PROOF_INVALID' : 'ERR_TIMEOUT' }) }
}

function collector (): { sink: AlertSink, alerts: Alert[] } {
  const alerts: Alert[] = []
  return { alerts, sink: { name: 'test', deliver: async (a) => { alerts.push(a) } } }
}

async function withDb (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ reopen: () => Promise<Database> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-alerts-'))
  let db: Database | undefined
  t.teardown(async () => { await db?.close(); await rm(dir, { recursive: true, force: true }) })
  return {
    reopen: async () => {
      await db?.close()
      db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
      await db.open()
      return db
    }
  }
}

const QUIET: Partial<MonitorOptions> = { expiringMs: 0, forecastBelow: -Infinity }

test('a failing deal opens one incident, later faults add evidence, its pass resolves it', async (t) => {
  const { reopen } = await withDb(t)
  const { sink, alerts } = collector()
  const m = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [sink] })
  const deal = await fakeDeal('a', 2e9)
  m.audit(deal, result(deal, 'passed', 0))
  m.audit(deal, result(deal, 'failed', 1))
  m.audit(deal, result(deal, 'missed', 2))
  m.audit(deal, result(deal, 'passed', 3))
  m.audit(deal, result(deal, 'passed', 4))
  await m.flush()
  t.deepEqual(alerts.map(a => `${a.event} ${a.source}/${a.kind}`), ['open audit/failed', 'resolved audit/failed'])
  const [open, resolved] = alerts as [Alert, Alert]
  t.is(open.id, resolved.id)
  t.is(open.deal, deal.id.toString())
  t.is(open.provider, PROVIDER)
  t.is(open.evidence.code, 'ERR_PROOF_INVALID')
  t.is(resolved.evidence.faults, 2)
  t.is(resolved.resolution, 'passed its proof for period 3')
  t.is(typeof resolved.endedAt, 'string')
  t.is(m.counts.sent, 2)
})

test('restart-safe: a new monitor on the same repo neither re-opens nor forgets to resolve', async (t) => {
  const { reopen } = await withDb(t)
  const first = collector()
  const deal = await fakeDeal('b', 2e9)
  const m1 = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [first.sink] })
  m1.audit(deal, result(deal, 'failed', 1))
  await m1.flush()
  t.is(first.alerts.length, 1)

  const second = collector()
  const m2 = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [second.sink] })
  m2.audit(deal, result(deal, 'failed', 2))
  m2.audit(deal, result(deal, 'passed', 3))
  await m2.flush()
  t.deepEqual(second.alerts.map(a => a.event), ['resolved'])
  t.is(second.alerts[0]?.id, first.alerts[0]?.id)
  t.is(second.alerts[0]?.evidence.faults, 2)

  const third = collector()
  const m3 = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [third.sink] })
  m3.audit(deal, result(deal, 'passed', 4))
  await m3.flush()
  t.deepEqual(third.alerts, [])
})

test('a delivery that fails is counted and logged, and the incident is still remembered', async (t) => {
  const { reopen } = await withDb(t)
  const logged: string[] = []
  const broken: AlertSink = { name: 'broken', deliver: async () => { throw new CairnError('ERR_ALERT_FAILED', 'receiver down') } }
  const good = collector()
  const m = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [broken, good.sink], log: (level, msg) => { if (level === 'warn') logged.push(msg) } })
  const deal = await fakeDeal('c', 2e9)
  m.audit(deal, result(deal, 'missed', 1))
  m.audit(deal, result(deal, 'missed', 2))
  await m.flush()
  t.deepEqual(m.counts, { opened: 1, resolved: 0, sent: 1, failed: 1 })
  t.is(good.alerts.length, 1)
  t.is(logged.length, 1)
  t.regex(logged[0] as string, /not delivered to broken: ERR_ALERT_FAILED receiver down/)
})

test('a deal no longer audited resolves its incidents', async (t) => {
  const { reopen } = await withDb(t)
  const { sink, alerts } = collector()
  const m = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [sink] })
  const deal = await fakeDeal('d', 2e9)
  const other = await fakeDeal('e', 2e9)
  m.audit(deal, result(deal, 'failed', 1))
  m.unrepaired(deal, new CairnError('ERR_NO_REPAIR_TARGET', 'no provider qualifies'))
  m.deals([deal, other])
  await m.flush()
  t.deepEqual(alerts.map(a => `${a.event} ${a.source}`), ['open audit', 'open repair'])
  t.is(alerts[1]?.evidence.code, 'ERR_NO_REPAIR_TARGET')
  m.deals([other])
  await m.flush()
  t.deepEqual(alerts.map(a => `${a.event} ${a.source}`), ['open audit', 'open repair', 'resolved audit', 'resolved repair'])
  t.regex(alerts[2]?.resolution ?? '', /no longer audited/)
})

test('a repair resolves the replaced deal\'s incidents', async (t) => {
  const { reopen } = await withDb(t)
  const { sink, alerts } = collector()
  const m = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [sink] })
  const deal = await fakeDeal('f', 2e9)
  m.audit(deal, result(deal, 'failed', 1))
  m.repaired(deal.id.toString(), 'bafynew', 'http://127.0.0.1:2')
  await m.flush()
  t.deepEqual(alerts.map(a => a.event), ['open', 'resolved'])
  t.is(alerts[1]?.resolution, 'replaced by deal bafynew at http://127.0.0.1:2')
})

test('expiry: a piece whose last deal ends within the window opens once; a later deal resolves it', async (t) => {
  const { reopen } = await withDb(t)
  const { sink, alerts } = collector()
  const now = 1_800_000_000_000
  const m = await AlertMonitor.open(await reopen(), noLedger, { sinks: [sink], forecastBelow: -Infinity, expiringMs: 86_400_000, now: () => now })
  const soon = await fakeDeal('g', now / 1000 + 3600, 'p1')
  const safe = await fakeDeal('h', now / 1000 + 30 * 86400, 'p2')
  m.deals([soon, safe])
  await m.flush()
  m.deals([soon, safe])
  await m.flush()
  t.deepEqual(alerts.map(a => `${a.event} ${a.source}/${a.kind}`), ['open expiry/expiring'])
  t.is(alerts[0]?.piece, soon.proposal.pieceCid.toString())
  t.is(alerts[0]?.evidence.replicas, 1)
  const renewed = await fakeDeal('i', now / 1000 + 60 * 86400, 'p1')
  m.deals([soon, renewed, safe])
  await m.flush()
  t.deepEqual(alerts.map(a => a.event), ['open', 'resolved'])
  t.regex(alerts[1]?.resolution ?? '', new RegExp(`deal ${renewed.id.toString()} holds it`))
})

test('forecast: a provider predicted below the threshold opens once and resolves above it with a margin', async (t) => {
  const { reopen } = await withDb(t)
  const { sink, alerts } = collector()
  let now = 1_800_000_000_000
  const m = await AlertMonitor.open(await reopen(), noLedger, { sinks: [sink], expiringMs: 0, forecastBelow: 0.7, forecastMinAudits: 5, now: () => now })
  // one deal per audit: the forecast is the provider's, not a deal's
  const outcomes: Array<AuditResult['outcome']> = [...Array(10).fill('passed'), ...Array(6).fill('missed'), ...Array(40).fill('passed')]
  for (const [i, o] of outcomes.entries()) {
    const d = await fakeDeal(`f${i}`, 2e9)
    now += 86_400_000
    m.audit(d, result(d, o, i))
  }
  await m.flush()
  const forecasts = alerts.filter(a => a.source === 'forecast')
  t.deepEqual(forecasts.map(a => a.event), ['open', 'resolved'])
  t.true((forecasts[0]?.evidence.predicted as number) < 0.7)
  t.true((forecasts[1]?.evidence.predicted as number) < 0.7, 'the resolved alert carries the evidence it opened with')
  t.regex(forecasts[1]?.resolution ?? '', /predicted to pass with probability 0\.(7[5-9]|[89])/)
})

test('anomaly: the detector\'s incident is alerted with its own id, and its state survives a restart', async (t) => {
  const { reopen } = await withDb(t)
  const first = collector()
  let now = 1_800_000_000_000
  const detector = { warmup: 5, rateWarmup: 5 }
  const m1 = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [first.sink], detector, now: () => now })
  const d = await fakeDeal('lat', 2e9)
  let period = 0
  const audit = (m: AlertMonitor, ms: number): void => { now += 60_000; m.audit(d, result(d, 'passed', period++, ms)) }
  for (let i = 0; i < 20; i++) audit(m1, 100 + (i % 3))
  for (let i = 0; i < 3; i++) audit(m1, 5000)
  await m1.flush()
  const opened = first.alerts.filter(a => a.source === 'anomaly')
  t.deepEqual(opened.map(a => `${a.event} ${a.kind}`), ['open spike'])
  t.is(opened[0]?.evidence.series, 'latency')
  t.regex(opened[0]?.id ?? '', /^[0-9a-f]{16}$/)

  const second = collector()
  const m2 = await AlertMonitor.open(await reopen(), noLedger, { ...QUIET, sinks: [second.sink], detector, now: () => now })
  for (let i = 0; i < 10; i++) audit(m2, 100)
  await m2.flush()
  t.deepEqual(second.alerts.map(a => `${a.event} ${a.source} ${a.id}`), [`resolved anomaly ${opened[0]?.id ?? ''}`])
})
