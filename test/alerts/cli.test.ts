/**
 * `cairn watch --alert-*` as a user runs it: bad flags are usage errors
 * before anything is audited; the real binary runs the alert command once
 * for a failed audit; a second run does not alert it again, only the repair
 * it could not make.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn } from '../helpers/cli.js'
import { world, type TestProvider } from '../audit/helpers.js'
import type { Alert } from '../../src/alerts/interface.js'

test('cli: watch --alert-* flags are checked (exit 2, ERR_INVALID_ARGUMENT)', async (t) => {
  for (const flags of [['--alert-webhook', 'ftp://alerts.example/x'], ['--alert-exec', ' '], ['--alert-below', '1.5'], ['--alert-below', 'x'], ['--alert-expiring', 'soon'], ['--alert-timeout', '0s']]) {
    const r = await cairn(['watch', '--once', '--repo', '/nonexistent-cairn-repo', ...flags])
    t.is(r.code, 2, `${flags.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /ERR_INVALID_ARGUMENT/, flags.join(' '))
  }
})

test('cli: watch --once --alert-exec runs the command once for a failed audit, not again when it fails again, and once for the repair it cannot make', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { provingPeriod: 2 })
    const repo = w.client.repo.path
    await w.client.repo.close()
    const path = (w.providers[0] as TestProvider).store.path(deal.proposal.pieceCid.toString())
    const bytes = await readFile(path)
    bytes[100] ^= 1
    await writeFile(path, bytes)
    const log = join(w.dir, 'alerts.ndjson')
    const args = ['watch', '--once', '--json', '--timeout', '5s', '--retries', '0', '--alert-expiring', '1h', '--alert-exec', `cat >> '${log}'`, '--repo', repo]
    const first = await cairn(args)
    t.is(first.code, 0, first.stderr)
    const alerts = (await readFile(log, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as Alert)
    t.deepEqual(alerts.map(a => `${a.event} ${a.source}/${a.kind} ${a.deal ?? ''}`), [`open audit/failed ${deal.id.toString()}`])
    // the --json summary counts what was sent
    const summaryOf = (stdout: string): unknown => (JSON.parse(stdout.trim().split('\n').filter(l => l.includes('"summary"')).at(-1) ?? '{}') as { summary?: { alerts?: unknown } }).summary?.alerts
    t.deepEqual(summaryOf(first.stdout), { opened: 1, resolved: 0, delivered: 1, failed: 0 })
    // the next period: the deal fails again (its incident is open already, no new alert), needs a
    // repair and, with no other provider, cannot have one: that is a new incident (exit 4)
    await new Promise(resolve => setTimeout(resolve, 2100))
    const second = await cairn(args)
    t.is(second.code, 4, second.stderr)
    t.regex(second.stdout, /"outcome":"failed"/)
    const after = (await readFile(log, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as Alert)
    t.deepEqual(after.map(a => `${a.event} ${a.source}/${a.kind}`), ['open audit/failed', 'open repair/unrepaired'])
    t.is(after[1]?.evidence.code, 'ERR_NO_REPAIR_TARGET')
    t.deepEqual(summaryOf(second.stdout), { opened: 1, resolved: 0, delivered: 1, failed: 0 })
  } finally {
    await w.cleanup()
  }
})
