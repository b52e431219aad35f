/**
 * `provider start --self-check`: the provider proves and verifies a sample of
 * its own pieces; a piece file corrupted on disk is reported as corrupt, in
 * the round's report, the log and /metrics; the schedule runs rounds until
 * stopped; the flag is checked like every provider option.
 */
import test from 'ava'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { settingsFrom } from '../../src/provider/options.js'
import { SelfCheck } from '../../src/provider/selfcheck.js'
import { TERMS, world, type TestProvider } from '../audit/helpers.js'

function sample (text: string, name: string, labels = ''): number | undefined {
  const escaped = `${name}${labels}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

test('self-check: every sampled piece proves and verifies; a piece corrupted on disk is reported corrupt, logged and counted in /metrics', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const p = w.providers[0] as TestProvider
  const good = await w.deal(0, { bytes: 20_000 })
  const bad = await w.deal(0, { bytes: 20_000 })
  const logged: Array<{ event: string, fields?: Record<string, unknown> }> = []
  const check = new SelfCheck(p.node, p.service.metrics.registry, { intervalMs: 60_000, sample: 10, log: (event, fields) => { logged.push({ event, fields }) } })

  const first = await check.run()
  t.is(first.pieces, 2)
  t.deepEqual(first.checked.map(c => c.outcome), ['ok', 'ok'])
  t.true(first.ok)
  let text = await (await fetch(`${p.url}/metrics`)).text()
  t.is(sample(text, 'cairn_selfcheck_pieces_total', '{outcome="ok"}'), 2)
  t.is(sample(text, 'cairn_selfcheck_pieces_total', '{outcome="corrupt"}'), 0)
  t.is(sample(text, 'cairn_selfcheck_runs_total', '{result="ok"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_failing_pieces'), 0)
  const success = sample(text, 'cairn_selfcheck_last_success_timestamp_seconds') ?? 0
  t.true(success > 0)
  t.is(sample(text, 'cairn_selfcheck_duration_seconds_count', '{outcome="ok"}'), 2)

  // the disk loses the piece's bytes past its first 64
  const path = p.store.path(bad.proposal.pieceCid.toString())
  const bytes = await readFile(path)
  await writeFile(path, Buffer.concat([bytes.subarray(0, 64), Buffer.alloc(bytes.length - 64, 0x5a)]))

  const second = await check.run()
  t.false(second.ok)
  const failed = second.checked.filter(c => c.outcome !== 'ok')
  t.deepEqual(failed.map(c => [c.pieceCid, c.outcome, c.code]), [[bad.proposal.pieceCid.toString(), 'corrupt', 'ERR_PIECE_CORRUPT']])
  t.deepEqual(second.checked.filter(c => c.outcome === 'ok').map(c => c.pieceCid), [good.proposal.pieceCid.toString()])
  t.is(check.last, second)
  t.deepEqual(logged.map(l => [l.event, l.fields?.pieceCid, l.fields?.code]), [['self-check-failed', bad.proposal.pieceCid.toString(), 'ERR_PIECE_CORRUPT']])
  text = await (await fetch(`${p.url}/metrics`)).text()
  t.is(sample(text, 'cairn_selfcheck_pieces_total', '{outcome="corrupt"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_runs_total', '{result="failed"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_failing_pieces'), 1)
  // a failed round does not move the last success
  t.is(sample(text, 'cairn_selfcheck_last_success_timestamp_seconds'), success)
})

test('self-check: the sample bounds the work of a round; the schedule runs rounds until stopped', async (t) => {
  const w = await world(1)
  t.teardown(w.cleanup)
  const p = w.providers[0] as TestProvider
  for (let i = 0; i < 3; i++) await w.deal(0)
  const check = new SelfCheck(p.node, p.service.metrics.registry, { intervalMs: 20, sample: 2 })
  check.start()
  let rounds = 0
  for (let i = 0; i < 500 && rounds < 3; i++) {
    await new Promise(resolve => setTimeout(resolve, 10))
    const text = await p.service.metrics.registry.metrics()
    rounds = sample(text, 'cairn_selfcheck_runs_total', '{result="ok"}') ?? 0
  }
  await check.stop()
  t.true(rounds >= 3, `rounds: ${rounds}`)
  t.is(check.last?.pieces, 3)
  t.is(check.last?.checked.length, 2)
  t.is(new Set(check.last?.checked.map(c => c.pieceCid)).size, 2)
  const after = (await p.service.metrics.registry.getSingleMetricAsString('cairn_selfcheck_runs_total'))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.is(await p.service.metrics.registry.getSingleMetricAsString('cairn_selfcheck_runs_total'), after, 'no round after stop')
})

test('self-check: --self-check and --self-check-sample are checked (ERR_INVALID_ARGUMENT); 0 turns it off', (t) => {
  t.is(settingsFrom({}).settings.selfCheck, 0)
  t.is(settingsFrom({ selfCheck: '10m' }).settings.selfCheck, 600)
  t.is(settingsFrom({ selfCheck: '0' }).settings.selfCheck, 0)
  t.is(settingsFrom({}).settings.selfCheckSample, 4)
  for (const bad of [{ selfCheck: 'often' }, { selfCheck: '-1m' }, { selfCheckSample: '0' }, { selfCheckSample: 'all' }]) {
    t.is((t.throws(() => settingsFrom(bad)) as { code?: string }).code, 'ERR_INVALID_ARGUMENT', JSON.stringify(bad))
  }
})

test('self-check: a node started with it runs a round (with its round trip) at once and stops with the node', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-selfcheck-'))
  const repo = await Repo.init(join(dir, 'provider'))
  const node = await startProviderNode(repo, { endpoint: '', ...TERMS }, { selfCheck: { intervalMs: 3_600_000 } })
  try {
    t.not(node.selfCheck, undefined)
    let text = ''
    for (let i = 0; i < 200 && sample(text, 'cairn_selfcheck_runs_total', '{result="ok"}') !== 1; i++) {
      await new Promise(resolve => setTimeout(resolve, 10))
      text = await (await fetch(`${node.url}/metrics`)).text()
    }
    // no pieces yet: an empty round is a successful one
    t.is(sample(text, 'cairn_selfcheck_runs_total', '{result="ok"}'), 1)
    t.is(node.selfCheck?.last?.pieces, 0)
    // its round trip went through the node's own listener and left nothing behind
    t.is(node.selfCheck?.last?.roundTrip?.ok, true)
    t.is(await node.pdp.pieces.record(node.selfCheck?.last?.roundTrip?.pieceCid ?? ''), undefined)
  } finally {
    await node.close()
    await repo.close()
    await rm(dir, { recursive: true, force: true })
  }
})
