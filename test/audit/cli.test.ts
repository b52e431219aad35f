/**
 * `cairn audit`, `cairn watch --once` and `cairn ledger verify|balance` as a
 * user runs them: the real binary against a provider on loopback.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { periodPayment } from '../../src/protocol/rules.js'
import { cairn } from '../helpers/cli.js'
import { world, type TestProvider } from './helpers.js'

test('cli: audit passes (exit 0, one JSON object per deal), fails after corruption (exit 3); ledger verify and balance agree; watch --once skips an audited period', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { provingPeriod: 600 })
    const repo = w.client.repo.path
    await w.client.repo.close()
    const usage = await cairn(['audit', '--repo', repo])
    t.is(usage.code, 2, usage.stderr)
    t.is((await cairn(['audit', '--all', '--challenges', '0', '--repo', repo])).code, 2)

    const ok = await cairn(['audit', '--all', '--json', '--timeout', '5s', '--repo', repo])
    t.is(ok.code, 0, ok.stderr)
    const lines = ok.stdout.trim().split('\n').map(l => JSON.parse(l) as { deal: string, outcome: string, settlement?: { amount: string } })
    t.is(lines.length, 1)
    t.is(lines[0]?.deal, deal.id.toString())
    t.is(lines[0]?.outcome, 'passed')
    t.is(lines[0]?.settlement?.amount, periodPayment(deal.proposal).toString())

    const path = (w.providers[0] as TestProvider).store.path(deal.proposal.pieceCid.toString())
    const bytes = await readFile(path)
    bytes[100] ^= 1
    await writeFile(path, bytes)
    const bad = await cairn(['audit', deal.id.toString(), '--json', '--timeout', '5s', '--repo', repo])
    t.is(bad.code, 3, bad.stderr)
    t.like(JSON.parse(bad.stdout.trim().split('\n')[0] as string), { outcome: 'failed', code: 'ERR_PROOF_REFUSED' })
    t.regex(bad.stderr, /ERR_AUDIT_FAILED/)

    const verified = await cairn(['ledger', 'verify', '--repo', repo])
    t.is(verified.code, 0, verified.stderr)
    const balance = await cairn(['ledger', 'balance', '--json', '--repo', repo])
    t.like(JSON.parse(balance.stdout)[0], { counterparty: deal.provider, paid: periodPayment(deal.proposal).toString() })

    const once = await cairn(['watch', '--once', '--json', '--repo', repo])
    t.is(once.code, 0, once.stderr)
    // nothing audited (the period already was), and the summary says so as the last line
    t.deepEqual(JSON.parse(once.stdout.trim()), { summary: { audits: 0, passed: 0, failed: 0, missed: 0, expired: 0, dealsFailed: 0, unrepaired: 0, alerts: { opened: 0, resolved: 0, delivered: 0, failed: 0 } } })
  } finally {
    await w.cleanup()
  }
})
