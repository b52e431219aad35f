/**
 * `cairn audit --data-set` (src/pdp/audit.ts, docs/json.md): a client
 * challenges a provider's PDP data set with a fresh seed and checks the proofs
 * itself; a provider that answers with a wrong leaf fails the audit, exit 3.
 */
import test from 'ava'
import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { auditDataSet } from '../../src/pdp/audit.js'
import type { DataSetProof } from '../../src/pdp/prove.js'
import { cairn } from '../helpers/cli.js'
import { dataSetProvider } from './fixtures.js'

test('a data set passes an audit from the command line; a wrong leaf fails it with the proof\'s code', async t => {
  const set = await dataSetProvider()
  const { node, dataSetId } = set
  // a provider in front of the real one that flips a bit of the first proven leaf
  const liar = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => {
      void (async () => {
        const real = await fetch(node.url + (req.url ?? ''), req.method === 'POST' ? { method: 'POST', headers: { 'Content-Type': 'application/json' }, body } : {})
        const text = await real.text()
        let out = text
        if ((req.url ?? '').endsWith('/prove') && real.status === 200) {
          const proof = JSON.parse(text) as DataSetProof
          const first = proof.proofs[0] as DataSetProof['proofs'][number]
          first.data = first.data.slice(0, -2) + (first.data.endsWith('00') ? '01' : '00')
          out = JSON.stringify(proof)
        }
        res.writeHead(real.status, { 'Content-Type': 'application/json' })
        res.end(out)
      })()
    })
  })
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve))
  // the client's repo, where each audit is recorded
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pdp-audit-'))
  const env = { CAIRN_REPO: join(dir, 'repo') }
  try {
    t.is((await cairn(['init'], { env })).code, 0)
    const run = await cairn(['audit', '--data-set', String(dataSetId), '--provider', node.url, '--challenges', '8', '--json'], { env })
    t.is(run.code, 0, run.stderr)
    const line = JSON.parse(run.stdout.trim()) as { dataSet: number, outcome: string, challenges: number, pieces: number, seed: string, providerId: string }
    t.deepEqual([line.dataSet, line.outcome, line.challenges, line.pieces], [dataSetId, 'passed', 8, 2])
    t.is(line.providerId, node.repo.identity.did)
    t.regex(line.seed, /^0x[0-9a-f]{64}$/)

    const lied = await auditDataSet(`http://127.0.0.1:${(liar.address() as AddressInfo).port}`, dataSetId, { challenges: 4, timeoutMs: 10_000 })
    t.is(lied.outcome, 'failed')
    t.is(lied.code, 'ERR_PROOF_ROOT_MISMATCH')
    const cli = await cairn(['audit', '--data-set', String(dataSetId), '--provider', `http://127.0.0.1:${(liar.address() as AddressInfo).port}`, '--json'], { env })
    t.is(cli.code, 3)

    const unknown = await cairn(['audit', '--data-set', '99', '--provider', node.url, '--json'], { env })
    t.is(unknown.code, 4)
    t.regex(unknown.stdout + unknown.stderr, /ERR_DATA_SET_NOT_FOUND/)
    const usage = await cairn(['audit', '--data-set', '1', '--json'], { env })
    t.is(usage.code, 2)
    // every audit is in the client's ledger: passed, failed (the liar), ended (unknown)
    const log = await cairn(['ledger', 'log', '--json'], { env })
    const outcomes = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string, outcome?: string, fields?: { outcome?: string } })
      .filter((e) => e.kind === 'data-set-audited').map((e) => e.outcome ?? e.fields?.outcome)
    t.deepEqual(outcomes, ['ended', 'failed', 'passed'])
  } finally {
    await rm(dir, { recursive: true, force: true })
    await new Promise((resolve) => liar.close(resolve))
    await set.close()
  }
})
