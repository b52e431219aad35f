/**
 * The client's data-set audits (src/client/data-set-watch.ts): each is a
 * `data-set-audited` entry naming the provider's did, counted in its
 * reputation; `watch` audits the recorded data sets once per period at their
 * drawn moment and stops at one the provider says ended.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditAndRecord, DataSetSchedule, recordedDataSets } from '../../src/client/data-set-watch.js'
import { watch } from '../../src/client/watch.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { Repo } from '../../src/repo/repo.js'
import { reputationsFromLedger } from '../../src/reputation/ledger.js'
import { dataSetProvider } from '../pdp/fixtures.js'

const HOUR = 3600

test('audits are recorded, feed reputation, and watch schedules them once per period until the data set ends', async t => {
  const set = await dataSetProvider()
  const dir = await mkdtemp(join(tmpdir(), 'cairn-ds-watch-'))
  const repo = await Repo.init(join(dir, 'repo'))
  try {
    const db = await repo.db()
    const ledger = await LevelLedger.open(db, repo.identity)
    const options = { challenges: 4, timeoutMs: 10_000, dataSetPeriod: HOUR }
    const t0 = 1_800_000_000
    const first = await auditAndRecord(ledger, set.url, set.dataSetId, { ...options, now: () => t0 })
    t.is(first.outcome, 'passed')
    t.is(first.provider, set.node.repo.identity.did)
    t.is(first.period, Math.floor(t0 / HOUR))
    const unknown = await auditAndRecord(ledger, set.url, 99, { ...options, now: () => t0 })
    t.is(unknown.outcome, 'ended')
    t.is(unknown.code, 'ERR_DATA_SET_NOT_FOUND')

    const rep = (await reputationsFromLedger(ledger)).get(set.node.repo.identity.did)
    t.deepEqual([rep?.passes, rep?.failures, rep?.misses], [1, 0, 0], 'the passed audit counts for the provider; the ended one for nothing')
    t.is((await recordedDataSets(ledger)).length, 2)

    const schedule = new DataSetSchedule(ledger, { ...options, random: () => 0.5, window: 0.8 })
    t.deepEqual(await schedule.tick(t0 * 1000), [], 'this period is audited already')
    const next = (Math.floor(t0 / HOUR) + 1) * HOUR * 1000
    t.deepEqual(await schedule.tick(next), [], 'not before its moment in the period')
    const moment = next + 0.5 * 0.8 * HOUR * 1000
    const due = await schedule.tick(moment)
    t.is(due.length, 1, 'the ended data set is not audited again')
    const [result] = due as Array<{ dataSet: number, outcome: string, period: number }>
    t.deepEqual([result?.dataSet, result?.outcome, result?.period], [set.dataSetId, 'passed', Math.floor(t0 / HOUR) + 1])
    t.deepEqual(await schedule.tick(moment + 1000), [], 'once per period')

    // watch runs the same schedule beside the deals: --once audits what this period has not
    const seen: unknown[] = []
    await watch({ ledger, db, signer: repo.identity }, { once: true, dataSets: { ...options, dataSetPeriod: 1 }, onDataSet: (r) => { seen.push(r) } })
    t.is(seen.length, 1)
    t.is((seen[0] as { outcome: string }).outcome, 'passed')
    const kinds: string[] = []
    for await (const entry of ledger.log({ kind: 'data-set-audited' })) kinds.push(String(entry.fields.outcome))
    t.deepEqual(kinds, ['passed', 'passed', 'ended', 'passed'])
  } finally {
    await repo.close()
    await rm(dir, { recursive: true, force: true })
    await set.close()
  }
})
