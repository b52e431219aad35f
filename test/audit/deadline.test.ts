/**
 * `--deadline auto` (src/client/deadline.ts): the deadline grows with the
 * piece, the challenges and the round trip, the round trip counts only up to
 * its cap, and an audit with it records the deadline it gave; a provider
 * slower than that deadline is missed (ERR_PROOF_MISSED) while one within it
 * passes. The slow provider is a listener that never answers, far beyond the
 * deadline, so no wall-clock value is asserted.
 */
import test from 'ava'
import { auditOptions } from '../../src/cli/audit.js'
import { createServer, type Socket } from 'node:net'
import { auditDeal } from '../../src/client/audit.js'
import { autoDeadlineMs, MAX_RTT_MS, measureRtt, provingMs } from '../../src/client/deadline.js'
import { world } from './helpers.js'

const GiB = 1n << 30n

test('the automatic deadline grows with piece size, challenges and round trip; a round trip past the cap buys nothing', t => {
  t.true(autoDeadlineMs(64n * GiB, 16, 1) > autoDeadlineMs(2n * GiB, 16, 1))
  t.true(autoDeadlineMs(2n * GiB, 64, 1) > autoDeadlineMs(2n * GiB, 16, 1))
  t.true(autoDeadlineMs(2n * GiB, 16, 50) > autoDeadlineMs(2n * GiB, 16, 1))
  t.is(autoDeadlineMs(2n * GiB, 16, MAX_RTT_MS * 10), autoDeadlineMs(2n * GiB, 16, MAX_RTT_MS))
  // the modelled proving time is part of it, not all of it
  t.true(autoDeadlineMs(2n * GiB, 16, 0) > provingMs(2n * GiB, 16))
  t.throws(() => autoDeadlineMs(GiB, 16, -1), { instanceOf: RangeError })
  t.throws(() => autoDeadlineMs(GiB, 16, Number.NaN), { instanceOf: RangeError })
})

test('--deadline auto, a duration (as --timeout) or anything else (ERR_INVALID_ARGUMENT)', t => {
  t.is(auditOptions({ deadline: 'auto' }).deadline, 'auto')
  t.is(auditOptions({ deadline: 'AUTO', timeout: '2s' }).timeoutMs, 2000)
  t.is(auditOptions({ deadline: '750ms' }).timeoutMs, 750)
  t.is(auditOptions({ deadline: '750ms' }).deadline, undefined)
  const err = t.throws(() => auditOptions({ deadline: 'soon' }))
  t.is((err as { code?: string }).code, 'ERR_INVALID_ARGUMENT')
  t.regex(err?.message ?? '', /--deadline/)
})

test('an audit with --deadline auto records the deadline and round trip; slower than it is ERR_PROOF_MISSED, within it passes', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const deal = await w.deal(0, { challenges: 16 })
  const rtt = await measureRtt(w.providers[0].url)
  t.true(rtt !== undefined && rtt >= 0)

  const fair = await auditDeal(w.ctx, deal, { deadline: 'auto', retries: 0, period: 0 })
  t.is(fair.outcome, 'passed', fair.message)
  t.is(fair.deadline?.auto, true)
  t.is(fair.deadline?.ms, autoDeadlineMs(deal.proposal.pieceSize, 16, fair.deadline?.rttMs ?? Number.NaN))

  // a provider that answers only after fetching from elsewhere: here, one that takes the request and never answers
  // (the audit gives up at its deadline; the silent listener is closed when the test ends)
  const held: Socket[] = []
  const silent = createServer(socket => { held.push(socket) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const socket of held) socket.destroy(); silent.close() })
  const { port } = silent.address() as { port: number }
  const late = await auditDeal(w.ctx, { ...deal, endpoint: `http://127.0.0.1:${port}` }, {
    deadline: 'auto',
    retries: 0,
    period: 1,
    rtt: async () => 0
  })
  t.is(late.outcome, 'missed')
  t.is(late.code, 'ERR_PROOF_MISSED')
  t.regex(late.message ?? '', /--deadline auto/)
  t.is(late.deadline?.ms, autoDeadlineMs(deal.proposal.pieceSize, 16, 0))

  // an unreachable provider keeps the fixed deadline: no round trip to derive one from
  const unreachable = await auditDeal(w.ctx, { ...deal, endpoint: 'http://127.0.0.1:9' }, { deadline: 'auto', retries: 0, period: 2, timeoutMs: 1500 })
  t.is(unreachable.outcome, 'missed')
  t.deepEqual(unreachable.deadline, { auto: true, ms: 1500 })
})
