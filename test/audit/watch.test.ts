/**
 * `watch` over a few two-second proving periods against real providers: an
 * honest one is paid every period; one whose piece is corrupted mid-way fails,
 * is slashed up to its collateral and its deal fails after three faults; the
 * balances are exact sums. A restart never audits a period twice, and deals
 * expire at their end.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { auditDeal, verifyProofEntry } from '../../src/client/audit.js'
import { stateOp } from '../../src/client/accounting.js'
import { watch } from '../../src/client/watch.js'
import type { AuditResult } from '../../src/client/audit.js'
import { faultFee, periodPayment } from '../../src/protocol/rules.js'
import { entries, world, type TestProvider } from './helpers.js'

test('watch: the honest provider passes and is paid each period; the corrupted one fails three times, is slashed, and its deal fails', async (t) => {
  const w = await world(2)
  try {
    const honest = await w.deal(0)
    const bad = await w.deal(1)
    const badPath = (w.providers[1] as TestProvider).store.path(bad.proposal.pieceCid.toString())
    const results: AuditResult[] = []
    const summary = await watch(w.ctx, {
      maxPeriods: 4,
      tickMs: 50,
      window: 0.4,
      timeoutMs: 1500,
      retries: 0,
      until: Date.now() + 30_000,
      onResult: (r) => {
        results.push(r)
        if (r.deal === bad.id.toString() && r.outcome === 'passed') {
          // the bad provider loses a byte after its first proven period
          void readFile(badPath).then(async (b) => { b[b.length >> 1] ^= 0xff; await writeFile(badPath, b) })
        }
      }
    })
    const of = (deal: typeof honest): AuditResult[] => results.filter(r => r.deal === deal.id.toString())
    t.deepEqual(of(honest).map(r => r.outcome), ['passed', 'passed', 'passed', 'passed'])
    // consecutive periods (the first may be 1 when making the deals took a whole period)
    const periods = of(honest).map(r => r.period)
    t.deepEqual(periods, periods.map((_p, i) => (periods[0] as number) + i))
    t.deepEqual(of(bad).map(r => r.outcome), ['passed', 'failed', 'failed', 'failed'])
    t.deepEqual(summary, { audits: 8, passed: 5, failed: 3, missed: 0, expired: 0, dealsFailed: 1 })
    t.is((await w.client.ledger.deal(honest.id))?.state, 'active')
    t.is((await w.client.ledger.deal(bad.id))?.state, 'failed')

    const balances = new Map((await w.client.ledger.balance()).map(b => [b.counterparty, b]))
    const h = balances.get(honest.provider)
    t.is(h?.paid, 4n * periodPayment(honest.proposal))
    t.is(h?.slashedToUs, 0n)
    const b = balances.get(bad.provider)
    const fee = faultFee(bad.proposal)
    const collateral = bad.proposal.providerCollateral
    t.is(b?.paid, periodPayment(bad.proposal))
    t.is(b?.slashedToUs, fee + fee + (collateral - 2n * fee))
    t.is(b?.outstanding, collateral - periodPayment(bad.proposal))
    // the balances are the sums of the money entries
    let paid = 0n
    let slashed = 0n
    for (const e of await entries(w.client.ledger)) {
      if (e.kind === 'payment-accrued') paid += BigInt(e.fields.amount as bigint)
      if (e.kind === 'collateral-slashed') slashed += BigInt(e.fields.amount as bigint)
    }
    t.is(paid, (h?.paid ?? 0n) + (b?.paid ?? 0n))
    t.is(slashed, (h?.slashedToUs ?? 0n) + (b?.slashedToUs ?? 0n))
    await w.client.ledger.verify({ verifyEntry: verifyProofEntry })
  } finally {
    await w.cleanup()
  }
})

test('watch after a restart does not audit or pay a period already audited', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { provingPeriod: 600 })
    const first = await auditDeal(w.ctx, deal, { timeoutMs: 5000 })
    t.is(first.period, 0)
    t.is(first.settlement?.kind, 'payment-accrued')
    const again = await watch(w.ctx, { once: true, timeoutMs: 5000 })
    t.is(again.audits, 0)
    t.is((await entries(w.client.ledger, 'payment-accrued')).length, 1)
  } finally {
    await w.cleanup()
  }
})

test('a proof result an older version recorded without its settlement is settled on the next run, once', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { provingPeriod: 600 })
    // what a version that settled in a second step left when it stopped between the two
    await w.client.ledger.append('proof-passed', { deal: deal.id, provider: deal.provider, period: 0, code: 'TEST' }, [stateOp(deal.id, { audited: 0, settled: -1, outcome: 'passed', slashed: 0n })])
    t.is((await entries(w.client.ledger, 'payment-accrued')).length, 0)
    const run = await watch(w.ctx, { once: true, timeoutMs: 5000 })
    t.is(run.audits, 0)
    await watch(w.ctx, { once: true, timeoutMs: 5000 })
    const paid = await entries(w.client.ledger, 'payment-accrued')
    t.is(paid.length, 1)
    t.is(BigInt(paid[0]?.fields.amount as bigint), periodPayment(deal.proposal))
  } finally {
    await w.cleanup()
  }
})

test('watch expires a deal at its end, after auditing its only period', async (t) => {
  const w = await world(1)
  try {
    const deal = await w.deal(0, { duration: 5, provingPeriod: 4 })
    const expired: string[] = []
    const summary = await watch(w.ctx, { tickMs: 50, timeoutMs: 1000, random: () => 0, until: (deal.proposal.end + 2) * 1000, maxPeriods: 5, onExpired: (d) => expired.push(d) })
    t.deepEqual(expired, [deal.id.toString()])
    t.is(summary.audits, 1)
    t.is(summary.expired, 1)
    t.is((await w.client.ledger.deal(deal.id))?.state, 'expired')
  } finally {
    await w.cleanup()
  }
})
