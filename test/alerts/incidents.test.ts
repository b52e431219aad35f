/**
 * The incident book forgets the ids of resolved incidents past its
 * retention — by age, then the oldest beyond the count — on load and while it
 * runs, and keeps the rest (so a replay still cannot reopen them).
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { alertId, IncidentBook } from '../../src/alerts/incidents.js'
import type { Alert } from '../../src/alerts/interface.js'
import type { Database } from '../../src/repo/repo.js'

const DAY = 86_400_000

async function database (t: { teardown: (fn: () => Promise<void>) => void }): Promise<Database> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-incidents-'))
  const db: Database = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  t.teardown(async () => { await db.close(); await rm(dir, { recursive: true, force: true }) })
  return db
}

function alert (subject: string, at: number): Alert {
  return { version: 1, event: 'open', id: alertId(subject, at), source: 'audit', kind: 'failed', summary: subject, startedAt: new Date(at).toISOString(), at: new Date(at).toISOString(), evidence: {} }
}

async function doneKeys (db: Database): Promise<number> {
  let n = 0
  for await (const _ of db.keys({ gte: 'alerts!done!', lt: 'alerts!done!\uffff' })) n++
  return n
}

test('incidents: resolved ids older than the retention are pruned on load; younger ones still count as resolved', async (t) => {
  const db = await database(t)
  let now = Date.UTC(2026, 0, 1)
  const book = await IncidentBook.load(db, { now: () => now })
  const ids: string[] = []
  // one resolution a day for 40 days
  for (let day = 0; day < 40; day++) {
    const a = alert(`audit|deal-${day}`, now)
    await book.opened(`audit|deal-${day}`, a)
    await book.closed(`audit|deal-${day}`, a.id)
    ids.push(a.id)
    now += DAY
  }
  t.is(await doneKeys(db), 40)
  // reopened 40 days after the first: the first 10 (resolved more than 30 days ago) go
  const later = await IncidentBook.load(db, { now: () => now })
  t.is(await doneKeys(db), 30)
  for (const [i, id] of ids.entries()) t.is(await later.resolved(id), i >= 10, `day ${i}`)
  t.is(await later.prune(), 0, 'a second prune finds nothing more')
})

test('incidents: beyond the count, the oldest resolved ids go first; a running book prunes every 256 resolutions', async (t) => {
  const db = await database(t)
  let now = Date.UTC(2026, 0, 1)
  const book = await IncidentBook.load(db, { now: () => now, retainMax: 100 })
  const ids: string[] = []
  for (let i = 0; i < 255; i++) {
    const a = alert(`audit|deal-${i}`, now)
    await book.opened(`audit|deal-${i}`, a)
    await book.closed(`audit|deal-${i}`, a.id)
    ids.push(a.id)
    now += 1000
  }
  t.is(await doneKeys(db), 255, 'no prune before the 256th resolution')
  const last = alert('audit|deal-255', now)
  await book.opened('audit|deal-255', last)
  await book.closed('audit|deal-255', last.id)
  ids.push(last.id)
  t.is(await doneKeys(db), 100)
  for (const [i, id] of ids.entries()) t.is(await book.resolved(id), i >= 156, `resolution ${i}`)
})

test('incidents: a resolved id whose time cannot be read is pruned', async (t) => {
  const db = await database(t)
  await db.put('alerts!done!0123456789abcdef', new TextEncoder().encode('not a time'))
  await db.put('alerts!done!fedcba9876543210', new TextEncoder().encode(new Date().toISOString()))
  const book = await IncidentBook.load(db)
  t.false(await book.resolved('0123456789abcdef'))
  t.true(await book.resolved('fedcba9876543210'))
})
