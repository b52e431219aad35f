/**
 * Past its end a deal is neither challenged nor paid, by `audit` or `watch`:
 * it is recorded expired. Only the deal's whole proving periods are paid,
 * whatever period an audit is asked to answer for.
 */
import test from 'ava'
import { auditDeal } from '../../src/client/audit.js'
import { periodCount } from '../../src/client/accounting.js'
import { watch } from '../../src/client/watch.js'
import { cairn } from '../helpers/cli.js'
import { entries, world } from './helpers.js'

const fast = { timeoutMs: 5000, retries: 0 }

test('an audit past the end does not challenge, pays nothing and records the deal expired', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const deal = await w.deal(0, { duration: 86400, provingPeriod: 3600 })
  const before = (await entries(w.client.ledger, undefined, deal.id.toString())).length
  const err = await t.throwsAsync(auditDeal(w.ctx, deal, { ...fast, now: () => deal.proposal.end + 10 }))
  t.is((err as { code?: string }).code, 'ERR_DEAL_EXPIRED')
  const after = await entries(w.client.ledger, undefined, deal.id.toString())
  t.deepEqual(after.slice(before).map(e => e.kind), ['deal-expired'])
  t.is((await w.client.ledger.deal(deal.id))?.state, 'expired')
  t.deepEqual(await w.client.ledger.balance(), [])
})

test('only whole periods within the deal are paid: none before its start, none past its last period', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const deal = await w.deal(0, { duration: 86400, provingPeriod: 3600 })
  const last = periodCount(deal.proposal)
  for (const period of [-1, last, last + 5]) {
    const r = await auditDeal(w.ctx, deal, { ...fast, period })
    t.is(r.outcome, 'passed', r.message)
    t.false(r.counted, `period ${period}`)
    t.is(r.settlement, undefined)
  }
  t.deepEqual(await entries(w.client.ledger, 'payment-accrued'), [])
  const paid = await auditDeal(w.ctx, deal, { ...fast, period: last - 1 })
  t.true(paid.counted)
  t.is(paid.settlement?.kind, 'payment-accrued')
})

test('watch marks an ended deal expired once, without challenging it', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const deal = await w.deal(0, { duration: 2, provingPeriod: 2 })
  await new Promise(resolve => setTimeout(resolve, (deal.proposal.end + 1) * 1000 - Date.now()))
  const expired: string[] = []
  const summary = await watch(w.ctx, { ...fast, once: true, onExpired: (d) => expired.push(d) })
  t.deepEqual(expired, [deal.id.toString()])
  t.like(summary, { audits: 0, expired: 1 })
  t.deepEqual((await entries(w.client.ledger, 'challenge-issued')).length, 0)
})

test('`cairn audit <id>` after the end: exit 0, "expired", no challenge, no payment', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const deal = await w.deal(0, { duration: 2, provingPeriod: 2 })
  await new Promise(resolve => setTimeout(resolve, (deal.proposal.end + 1) * 1000 - Date.now()))
  const repo = w.client.repo.path
  await w.client.repo.close()
  const run = await cairn(['audit', deal.id.toString(), '--json', '--repo', repo])
  t.is(run.code, 0, run.stderr)
  t.like(JSON.parse(run.stdout.trim()), { deal: deal.id.toString(), outcome: 'expired' })
  const log = await cairn(['ledger', 'log', '--json', '--deal', deal.id.toString(), '--repo', repo])
  const kinds = log.stdout.trim().split('\n').map(l => (JSON.parse(l) as { kind: string }).kind)
  t.is(kinds[0], 'deal-expired')
  t.false(kinds.includes('challenge-issued'))
  t.false(kinds.includes('payment-accrued'))
  const again = await cairn(['audit', deal.id.toString(), '--repo', repo])
  t.is(again.code, 5, again.stderr)
  t.regex(again.stderr, /ERR_DEAL_STATE: .* is expired/)
})
