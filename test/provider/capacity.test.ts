/**
 * The ask, the admin status and /metrics read the provider's totals from the
 * ledger's index (written in the same batch as each entry), never by reading
 * the log back: their cost does not grow with the number of deals.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startProviderNode } from '../../src/provider/node.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { Repo } from '../../src/repo/repo.js'
import { dealId } from '../ledger/helpers.js'
import { pieceOfSize, testTerms } from './fixtures.js'

test('ask, status and /metrics come from the totals index, not from the log', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-capacity-'))
  const repo = await Repo.init(join(dir, 'repo'))
  const node = await startProviderNode(repo, testTerms({ capacity: 1n << 30n }))
  t.teardown(async () => { await node.close(); await repo.close(); await rm(dir, { recursive: true, force: true }) })
  const client = identityFromSecret(generateSecretKey()).did
  const me = repo.identity.did
  for (let i = 0; i < 40; i++) {
    const piece = pieceOfSize(1n << 20n)
    const deal = dealId(i + 1)
    const fields = { deal, client, provider: me, nonce: BigInt(i + 1), pieceCid: piece.pieceCid, payloadCid: piece.pieceCid, pieceSize: piece.pieceSize, payloadSize: piece.payloadSize }
    await node.ledger.append('deal-accepted', fields)
    if (i % 4 !== 0) await node.ledger.append('deal-active', { deal })
  }
  const stats = await node.ledger.stats()
  const deals = Object.values(stats.deals).reduce((n, c) => n + (c ?? 0), 0)
  t.true(deals > 0)
  let reads = 0
  const log = node.ledger.log.bind(node.ledger)
  node.ledger.log = (options) => { reads++; return log(options) }
  const ask = await node.node.ask()
  const status = await node.node.admin().status()
  const metrics = await (await fetch(`${node.url}/metrics`)).text()
  t.is(reads, 0, 'nothing read the log back')
  t.is(ask.payload.freeCapacity, (1n << 30n) - stats.reserved - stats.used)
  t.is(status.capacity.used, Number(stats.reserved + stats.used))
  t.is(status.bytesStored, Number(stats.stored))
  t.regex(metrics, new RegExp(`cairn_deals\\{state="active"\\} ${stats.deals.active ?? 0}`))
})
