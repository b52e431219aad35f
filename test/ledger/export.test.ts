import test from 'ava'
import * as dagJson from '@ipld/dag-json'
import { verifyExport } from '../../src/ledger/verify-export.js'
import { dealId, openLedger, other, provider } from './helpers.js'

async function exported (): Promise<{ lines: string[], did: string, cleanup: () => Promise<void> }> {
  const f = await openLedger()
  const me = f.signer.did
  await f.ledger.append('deal-proposed', { deal: dealId(1), provider, label: 'holiday photos ✓' })
  await f.ledger.append('deal-accepted', { deal: dealId(1) })
  await f.ledger.append('payment-accrued', { deal: dealId(1), from: me, to: provider, amount: (1n << 64n) - 1n })
  await f.ledger.append('proof-passed', { deal: dealId(1), provider, proof: { leaves: [Uint8Array.of(1, 2, 3)] } })
  const lines: string[] = []
  for await (const line of f.ledger.export()) lines.push(line)
  return { lines, did: me, cleanup: f.cleanup }
}

test('export lines verify on their own, without the ledger', async t => {
  const { lines, did, cleanup } = await exported()
  t.teardown(cleanup)
  t.is(lines.length, 4)
  for (const line of lines) t.false(line.includes('\n'))
  const report = await verifyExport(lines, did)
  t.is(report.entries, 4)
  t.is(report.signer, did)
  t.is(report.head!.seq, 4)
  t.is((await verifyExport(lines)).signer, did)
})

test('a tampered, dropped or re-signed export line is caught', async t => {
  const { lines, did, cleanup } = await exported()
  t.teardown(cleanup)
  const broken = async (altered: string[], seq: number, expectedSigner: string = did): Promise<void> => {
    const err = await t.throwsAsync(verifyExport(altered, expectedSigner))
    t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
    t.is((err as { details?: { seq?: number } }).details?.seq, seq, err?.message)
  }
  // the readable copy says something the signed bytes do not
  const line = dagJson.decode(new TextEncoder().encode(lines[2])) as { entry: { amount: bigint } }
  line.entry.amount = 1n
  await broken([lines[0], lines[1], new TextDecoder().decode(dagJson.encode(line)), lines[3]], 3)
  // one byte of a record
  const record = dagJson.decode(new TextEncoder().encode(lines[1])) as { record: Uint8Array, cid: unknown }
  record.record[record.record.length - 1] ^= 1
  await broken([lines[0], new TextDecoder().decode(dagJson.encode(record)), lines[2], lines[3]], 2)
  await broken([lines[0], lines[2], lines[3]], 2)
  await broken(lines, 1, other)
})
