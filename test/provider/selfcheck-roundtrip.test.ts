/**
 * The self-check's synthetic round trip: a piece stored through the PDP ingest
 * path on the provider's own listener, fetched back through /piece and /ipfs,
 * proved, and removed; its figures in the round's report and /metrics; a
 * broken step reported with its code; nothing left in deals, ledger or the
 * park quota.
 */
import test from 'ava'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { Registry } from 'prom-client'
import { join } from 'node:path'
import { startProviderNode, selfCheckTarget, type ProviderNode, type ProviderNodeOptions } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { SelfCheck } from '../../src/provider/selfcheck.js'
import { TERMS } from '../audit/helpers.js'
import { rejectsCode } from '../helpers/errors.js'

function sample (text: string, name: string, labels = ''): number | undefined {
  const escaped = `${name}${labels}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)
  return m === null ? undefined : Number(m[1])
}

async function provider (t: { teardown: (fn: () => Promise<void>) => void }, options: ProviderNodeOptions = {}): Promise<ProviderNode> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-roundtrip-'))
  const repo = await Repo.init(join(dir, 'provider'))
  const node = await startProviderNode(repo, { endpoint: '', ...TERMS }, { lifecycle: false, ...options })
  t.teardown(async () => {
    await node.close()
    await repo.close()
    await rm(dir, { recursive: true, force: true })
  })
  return node
}

const PHASES = ['ingest', 'piece_first_byte', 'piece_last_byte', 'ipfs_first_byte', 'ipfs_last_byte', 'prove']

test('self-check round trip: stores a synthetic piece through /pdp/piece, reads it back through /piece and /ipfs, proves it, removes it; figures in the report and /metrics', async (t) => {
  const node = await provider(t)
  const ledgerBefore = node.ledger.head()?.seq
  const seen: string[] = []
  const check = new SelfCheck(node.node, node.service.metrics.registry, {
    intervalMs: 60_000,
    roundTrip: {
      ...selfCheckTarget(node.url, node.pdp),
      // while it is stored, it is served like any parked piece
      afterIngest: async (piece) => { seen.push(piece); t.true((await stat(node.pdp.pieces.store.path(piece))).size > 4096) }
    }
  })
  const report = await check.run()
  const trip = report.roundTrip
  t.true(report.ok)
  t.is(trip?.ok, true, JSON.stringify(trip))
  t.is(trip?.code, undefined)
  t.deepEqual(seen, [trip?.pieceCid])
  t.is(trip?.bytes, 4096)
  for (const figure of [trip?.ingestMs, trip?.ipfs?.firstByteMs, trip?.ipfs?.lastByteMs, trip?.piece?.firstByteMs, trip?.piece?.lastByteMs, trip?.proveMs]) {
    t.is(typeof figure, 'number')
    t.true((figure ?? -1) >= 0)
  }
  t.true((trip?.piece?.lastByteMs ?? -1) >= (trip?.piece?.firstByteMs ?? Infinity))

  const text = await (await fetch(`${node.url}/metrics`)).text()
  t.is(sample(text, 'cairn_selfcheck_roundtrip_total', '{result="ok"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_roundtrip_total', '{result="failed"}'), 0)
  t.is(sample(text, 'cairn_selfcheck_roundtrip_success_ratio'), 1)
  t.is(sample(text, 'cairn_selfcheck_runs_total', '{result="ok"}'), 1)
  for (const phase of PHASES) {
    t.is(sample(text, 'cairn_selfcheck_roundtrip_seconds_count', `{phase="${phase}"}`), 1, phase)
    t.not(sample(text, 'cairn_selfcheck_roundtrip_milliseconds', `{phase="${phase}"}`), undefined, phase)
  }
  t.is(sample(text, 'cairn_selfcheck_roundtrip_milliseconds', '{phase="ingest"}'), trip?.ingestMs)

  // gone: not served, not parked, no quota used, no deal, no ledger entry
  const piece = trip?.pieceCid ?? ''
  t.is((await fetch(`${node.url}/piece/${piece}`)).status, 404)
  t.is((await fetch(`${node.url}/ipfs/${trip?.cid ?? ''}?format=raw`)).status, 404)
  t.is(await node.pdp.pieces.record(piece), undefined)
  await rejectsCode(t, stat(node.pdp.pieces.store.path(piece)), 'ENOENT')
  t.is(node.pdp.pieces.quota.storedBy('ip:127.0.0.1'), 0n)
  t.deepEqual(await node.node.deals({}), [])
  t.is(sample(text, 'cairn_bytes_stored'), 0)
  t.is(node.ledger.head()?.seq, ledgerBefore)
})

test('self-check round trip: a /piece that serves other bytes fails the round at step "piece" with ERR_PIECE_CORRUPT, logged and counted; the piece is still removed', async (t) => {
  const node = await provider(t)
  const logged: Array<{ event: string, fields?: Record<string, unknown> }> = []
  const check = new SelfCheck(node.node, node.service.metrics.registry, {
    intervalMs: 60_000,
    log: (event, fields) => { logged.push({ event, fields }) },
    roundTrip: {
      ...selfCheckTarget(node.url, node.pdp),
      // the disk loses the piece's bytes past its first 64
      afterIngest: async (piece) => {
        const path = node.pdp.pieces.store.path(piece)
        const bytes = await readFile(path)
        await writeFile(path, Buffer.concat([bytes.subarray(0, 64), Buffer.alloc(bytes.length - 64, 0x5a)]))
      }
    }
  })
  const report = await check.run()
  t.false(report.ok)
  t.is(report.roundTrip?.ok, false)
  t.is(report.roundTrip?.step, 'piece')
  t.is(report.roundTrip?.code, 'ERR_PIECE_CORRUPT')
  t.is(report.roundTrip?.piece, undefined)
  t.deepEqual(logged.map(l => [l.event, l.fields?.step, l.fields?.code]), [['self-check-roundtrip-failed', 'piece', 'ERR_PIECE_CORRUPT']])
  const text = await node.service.metrics.registry.metrics()
  t.is(sample(text, 'cairn_selfcheck_roundtrip_total', '{result="failed"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_roundtrip_failures_total', '{step="piece"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_roundtrip_success_ratio'), 0)
  t.is(sample(text, 'cairn_selfcheck_runs_total', '{result="failed"}'), 1)
  t.is(sample(text, 'cairn_selfcheck_last_success_timestamp_seconds'), 0)
  t.is(await node.pdp.pieces.record(report.roundTrip?.pieceCid ?? ''), undefined)
})

test('self-check round trip: an ingest the provider refuses fails at step "ingest" with the code it answered (ERR_PARK_QUOTA); an unreachable listener with ERR_UNREACHABLE', async (t) => {
  const node = await provider(t, { pdp: { parkQuota: 1000n } })
  const check = new SelfCheck(node.node, node.service.metrics.registry, { intervalMs: 60_000, roundTrip: selfCheckTarget(node.url, node.pdp) })
  const refused = (await check.run()).roundTrip
  t.is(refused?.step, 'ingest')
  t.is(refused?.code, 'ERR_PARK_QUOTA')
  t.is(refused?.ingestMs, undefined)

  // a port nothing listens on any more
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  const gone = new SelfCheck(node.node, new Registry(), { intervalMs: 60_000, roundTrip: selfCheckTarget(`http://127.0.0.1:${port}`, node.pdp) })
  const unreachable = (await gone.run()).roundTrip
  t.is(unreachable?.step, 'ingest')
  t.is(unreachable?.code, 'ERR_UNREACHABLE')
})
